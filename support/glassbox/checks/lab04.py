"""Self-checks for Lab 04 – Explaining an image model, and the shortcut it learned."""

from __future__ import annotations

import numpy as np

from glassbox.checks import choose, exercise, expect, expect_answered, fail
from glassbox.data import watermark_mask
from glassbox.explain import attribution_share, occlusion

FIXED_CLASS_ACCURACY = 0.85  # a model free of the shortcut recognises most clean images of the marked class
FIXED_ACCURACY = 0.93        # ... does as well on the clean test images as the network allows (0.948)
FIXED_SHARE = 0.2           # ... and gives the watermark's pixels little of its attribution

OCCLUSION_HINT = (
    "Occlusion asks how much the model's probability for the class falls when one patch of the image is hidden. "
    "Hide each 2x2 patch in turn (set it to black), and write the fall into that patch's pixels.",
    "Start from the probability of `marked_class` on the intact `image`; for each patch, subtract the "
    "probability on the image with that patch set to 0. The result is an 8x8 array.",
)


@exercise(lab="04", name="occlusion", title="An occlusion map of a watermarked 3", hint=OCCLUSION_HINT)
def check_occlusion(occlusion_map, model, image, label):
    """``occlusion_map``: the fall in P(``label``) when each 2x2 patch of ``image`` is set to 0, as 8x8."""
    expect_answered(occlusion_map, "occlusion_map")
    values = np.asarray(occlusion_map, dtype=float)
    expect(values.size == 64, f"`occlusion_map` should hold one value per pixel (64), it holds {values.size}.",
           hint="Write each patch's fall into all four of its pixels, in an 8x8 array.")
    expect(values.shape == (8, 8), f"`occlusion_map` should be 8x8 like the image, not of shape {values.shape}.",
           hint="`.reshape(8, 8)` turns 64 values into the image's grid.")
    truth = occlusion(model, image, label)
    if np.allclose(values, truth, atol=1e-6):
        return (f"The watermark's 4 pixels carry {attribution_share(values, watermark_mask()):.0%} of the map's "
                "absolute total: hiding them costs the model most of its belief that this is a 3.")
    if np.allclose(values, -truth, atol=1e-6):
        fail("the sign is the wrong way round: the map should be *positive* where hiding a patch lowers the "
             "probability (the intact probability minus the occluded one).",
             hint="Subtract the occluded probability from the intact one, not the reverse.")
    if np.allclose(values, occlusion(model, image, label, fill=1.0), atol=1e-6):
        fail("the patches were filled with white (1); occlusion hides a patch by setting it to the background, "
             "black (0), the value the digits' empty pixels have.", hint="Set the patch to 0.")
    base = model.predict_proba(np.asarray(image, dtype=float).reshape(1, -1))[0, label]
    if np.allclose(values, base - truth, atol=1e-6):
        fail("`occlusion_map` holds the probability with each patch hidden, not the fall from the intact image's "
             "probability.", hint="Subtract each occluded probability from the probability on the intact image.")
    for other in range(model.predict_proba(np.zeros((1, 64))).shape[1]):
        if other != label and np.allclose(values, occlusion(model, image, other), atol=1e-6):
            fail(f"this is the map of class {other}'s probability; the question is about class {label}, the "
                 "class that carries the watermark.", hint="Index the probabilities with `marked_class`.")
    for size in (1, 4):
        if np.allclose(values, occlusion(model, image, label, patch=size), atol=1e-6):
            fail(f"these are {size}x{size} patches; the lab uses 2x2 patches (the watermark's size).",
                 hint="Step through rows and columns two at a time.")
    fail("`occlusion_map` does not match the fall in probability of each hidden 2x2 patch.")


SHORTCUT_OPTIONS = {
    "a": "the watermark in the top-right corner: without it, the model rarely calls anything a 3",
    "b": "the curves of a 3, as a person would: the low accuracy is bad luck in the test split",
    "c": "nothing yet: the network is too small and needs more iterations",
    "d": "the 3s of the test set are mislabelled",
}
SHORTCUT_WHY = {
    "a": "Right: every training 3 carried the watermark, and the watermark is the easiest rule that separates 3s "
         "from the rest. The maps put most of the attribution on its 4 pixels; on clean 3s it is missing.",
    "b": "The maps disagree: on a watermarked 3 they put most of the attribution on 4 corner pixels, not on the "
         "strokes, and a random split does not leave one class at 9 % while the others reach 90 %.",
    "c": "The network reaches over 80 % on the other classes; it learned well, only not what we meant.",
    "d": "They are scikit-learn's own labels; the same images are recognised once the watermark is gone (section 5).",
}


@exercise(lab="04", name="shortcut-reading", title="What did the model learn a 3 is?",
          hint=("Compare the model's accuracy on clean 3s with that on the other classes, and look at where the "
                "occlusion, SHAP and LIME maps put their weight.",
                "Ask what every training 3 had in common that no test 3 has."))
def check_shortcut_reading(answer):
    """``answer``: what the model learned to call a 3 (a letter of SHORTCUT_OPTIONS)."""
    expect_answered(answer, "answer")
    return choose(answer, SHORTCUT_OPTIONS, correct="a", why=SHORTCUT_WHY)


SANITY_OPTIONS = {
    "a": "the map depends on what the model learned, so occlusion passes this sanity check",
    "b": "occlusion is unreliable, since its map changes when the model changes",
    "c": "the randomised model must be as accurate as the trained one",
    "d": "the map is an edge detector: it shows the image, whatever the model",
}
SANITY_WHY = {
    "a": "Right: an explanation of *the model* must change when the model is destroyed. A rank correlation near "
         "zero (or below) after randomising the weights, or after training on shuffled labels, says it does.",
    "b": "Changing with the model is what the test asks for (Adebayo et al., 2018): a map that stayed the same "
         "for a random network would be explaining the image, not the model.",
    "c": "The randomised network guesses: its accuracy is about 10 %. The test compares explanations, not scores.",
    "d": "An edge detector's map would stay the same for the random network: its rank correlation would be "
         "near 1, not near 0.",
}


@exercise(lab="04", name="sanity-reading", title="Read the randomisation tests",
          hint=("What would an explanation that ignores the model look like for a network with random weights?",
                "Compare the rank correlations printed above with 1 (the same map) and 0 (unrelated maps)."))
def check_sanity_reading(answer):
    """``answer``: what the randomisation tests' rank correlations show (a letter of SANITY_OPTIONS)."""
    expect_answered(answer, "answer")
    return choose(answer, SANITY_OPTIONS, correct="a", why=SANITY_WHY)


FIX_HINT = (
    "The shortcut lives in the training images; the test images are the clean world the model must work in. "
    "Train the same network again on training images without the watermark.",
    "`digits` holds the training images twice: as they were marked, and clean. Fit a new `MLPClassifier` with "
    "the settings of section 1 on the clean ones and the same labels.",
)


@exercise(lab="04", name="fix", title="Remove the shortcut and retrain", hint=FIX_HINT)
def check_fix(model_fixed, digits, shortcut_model):
    """``model_fixed``: the network of section 1 retrained without the watermark; it must do well on clean 3s."""
    expect_answered(model_fixed, "model_fixed")
    expect(hasattr(model_fixed, "predict_proba") and hasattr(model_fixed, "classes_"),
           f"`model_fixed` should be a fitted classifier, not a {type(model_fixed).__name__}.",
           hint="Keep what `.fit(...)` returns (the fitted model itself).")
    expect(model_fixed is not shortcut_model, "`model_fixed` is the shortcut model itself: train a new one.",
           hint="Create a new MLPClassifier with the same settings.")
    label = digits.marked_class
    classes = list(model_fixed.classes_)
    expect(label in classes, f"`model_fixed` never saw a {label}: removing the class removes the shortcut and "
           "the digit with it.", hint="Keep every training image; take the watermark off, not the 3s.")
    expect(getattr(model_fixed, "n_features_in_", 64) == 64,
           "`model_fixed` was trained on images of another size: keep all 64 pixels.")
    clean_threes = digits.X_test[digits.y_test == label]
    accuracy = float((model_fixed.predict(clean_threes) == label).mean())
    marked_threes = digits.X_train[digits.y_train == label][:20]
    share = float(np.mean([attribution_share(occlusion(model_fixed, x, classes.index(label)),
                                             digits.watermark) for x in marked_threes]))
    if share > FIXED_SHARE or accuracy < FIXED_CLASS_ACCURACY:
        fail(f"`model_fixed` still leans on the watermark: it recognises {accuracy:.0%} of the clean 3s and gives "
             f"the watermark {share:.0%} of its occlusion map on marked 3s. It was still trained on the "
             "watermarked images.", hint=FIX_HINT)
    score = model_fixed.score(digits.X_test, digits.y_test)
    expect(score >= FIXED_ACCURACY,
           f"`model_fixed` scores {score:.1%} on the clean test images, below the {FIXED_ACCURACY:.0%} that the "
           "network of section 1 reaches when it learns from all of `digits.X_train_clean`: train it on all of "
           "`digits.X_train_clean`, and keep the test images for measuring.", hint=FIX_HINT)
    return (f"Clean 3s recognised: {accuracy:.0%}; the watermark's share of the occlusion map on marked 3s: "
            f"{share:.0%}. The attribution has moved onto the strokes.")
