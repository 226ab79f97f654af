"""Lab 04's catalogue of realistic mistakes: what a struggling learner types in each exercise cell."""

from mistakes import Mistake

_OCCLUSION = (
    "picture = image.reshape(8, 8)\n"
    "intact = model.predict_proba(image.reshape(1, -1))[0, {label}]\n"
    "occlusion_map = np.zeros((8, 8))\n"
    "for row in range(0, 8, 2):\n"
    "    for col in range(0, 8, 2):\n"
    "        hidden = picture.copy()\n"
    "        hidden[row:row + 2, col:col + 2] = {fill}\n"
    "        occlusion_map[row:row + 2, col:col + 2] = {value}"
)
_FALL = "intact - model.predict_proba(hidden.reshape(1, -1))[0, {label}]"


def _occlusion(label="marked_class", fill="0", value=_FALL):
    return _OCCLUSION.format(label=label, fill=fill, value=value.format(label=label))


MISTAKES = [
    # ---- Exercise 1: an occlusion map ----------------------------------------------------------------------
    Mistake("occlusion", "the sign the wrong way round",
            _occlusion(value="model.predict_proba(hidden.reshape(1, -1))[0, {label}] - intact"),
            ("sign is the wrong way round",), to_the_end=True),
    Mistake("occlusion", "patches filled with white",
            _occlusion(fill="1"), ("filled with white", "black (0)")),
    Mistake("occlusion", "the occluded probability, not its fall",
            _occlusion(value="model.predict_proba(hidden.reshape(1, -1))[0, {label}]"),
            ("not the fall",)),
    Mistake("occlusion", "the probability of class 0",
            _occlusion(label="0"), ("class 0", "marked_class")),
    Mistake("occlusion", "a flat vector of 16 patch values",
            "occlusion_map = np.zeros(16)", ("one value per pixel (64)",)),
    # ---- Exercise 2: what the model learned a 3 is ---------------------------------------------------------
    Mistake("shortcut-reading", "bad luck in the split", 'answer = "b"', ("random split",), to_the_end=True),
    Mistake("shortcut-reading", "the network needs more training", 'answer = "c"', ("learned well",)),
    Mistake("shortcut-reading", "the test labels are wrong", 'answer = "d"', ("scikit-learn's own labels",)),
    # ---- Exercise 3: the randomisation tests ---------------------------------------------------------------
    Mistake("sanity-reading", "a changing map read as unreliable", 'answer = "b"', ("what the test asks for",),
            to_the_end=True),
    Mistake("sanity-reading", "the tests read as comparing accuracy", 'answer = "c"', ("compares explanations",)),
    Mistake("sanity-reading", "the map read as an edge detector", 'answer = "d"', ("near 1, not near 0",)),
    # ---- Exercise 4: remove the shortcut and retrain -------------------------------------------------------
    Mistake("fix", "retrained on the watermarked images",
            "model_fixed = network().fit(digits.X_train, digits.y_train)",
            ("still leans on the watermark", "watermarked images"), to_the_end=True),
    Mistake("fix", "trained on the test images",
            "model_fixed = network().fit(digits.X_test, digits.y_test)", ("all of `digits.X_train_clean`",)),
    Mistake("fix", "dropped the 3s instead of the watermark",
            "keep = digits.y_train != marked_class\n"
            "model_fixed = network().fit(digits.X_train[keep], digits.y_train[keep])",
            ("never saw a 3",)),
    Mistake("fix", "kept the model, not a new one", "model_fixed = model", ("shortcut model itself",)),
]
