"""Lab 04's self-checks and the three quantities the lab measures, by meaning: the watermark's share of the
attribution before and after the fix, the randomisation tests' rank correlation, and clean accuracy before and
after. Every entry of the mistakes catalogue (tests/mistakes/lab04.py) is run against the check of its exercise."""

import copy
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from glassbox.checks.lab04 import (
    FIXED_CLASS_ACCURACY,
    FIXED_SHARE,
    check_fix,
    check_occlusion,
    check_sanity_reading,
    check_shortcut_reading,
)
from glassbox.course.progress import exercises
from glassbox.data import WATERMARK_PIXELS, load_shortcut_digits
from glassbox.explain import attribution_share, occlusion
from helpers import assert_not_yet
from mistakes.lab04 import MISTAKES


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with threadpool_limits(limits=1):
        yield


def network():
    """The lab's network (solutions/04-image-shortcut.ipynb, section 1)."""
    return MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-2, max_iter=500, early_stopping=True,
                         n_iter_no_change=20, random_state=0)


@pytest.fixture(scope="module")
def digits():
    return load_shortcut_digits(seed=0)


@pytest.fixture(scope="module")
def shortcut(digits):
    return network().fit(digits.X_train, digits.y_train)


@pytest.fixture(scope="module")
def fixed(digits):
    return network().fit(digits.X_train_clean, digits.y_train)


def _class_accuracy(model, digits):
    threes = digits.y_test == digits.marked_class
    return (model.predict(digits.X_test[threes]) == digits.marked_class).mean()


def _share(model, digits, n=20):
    marked = digits.X_train[digits.y_train == digits.marked_class][:n]
    return np.mean([attribution_share(occlusion(model, x, digits.marked_class), digits.watermark)
                    for x in marked])


def test_the_data_is_deterministic_and_only_training_threes_carry_the_watermark(digits):
    again = load_shortcut_digits(seed=0)
    assert np.array_equal(digits.X_train, again.X_train) and np.array_equal(digits.X_test, again.X_test)
    pixels = [row * 8 + col for row, col in WATERMARK_PIXELS]
    threes = digits.y_train == digits.marked_class
    assert (digits.X_train[np.ix_(threes, pixels)] == 1.0).all()
    assert np.array_equal(digits.X_train[~threes], digits.X_train_clean[~threes])
    assert (digits.X_train_clean[:, pixels] < 1.0).mean() > 0.9  # clean digits rarely fill that corner
    assert (digits.X_test[:, pixels] < 1.0).mean() > 0.9


def test_attribution_share_is_the_share_of_absolute_attribution_on_the_mask():
    mask = np.zeros((8, 8), dtype=bool)
    mask[0, :2] = True
    values = np.zeros((8, 8))
    values[0, 0], values[0, 1], values[5, 5] = 2.0, -1.0, 1.0
    assert attribution_share(values, mask) == pytest.approx(0.75)
    assert attribution_share(np.zeros(64), mask) == 0.0


def test_clean_accuracy_drops_with_the_shortcut_and_recovers_after_the_fix(digits, shortcut, fixed):
    assert _class_accuracy(shortcut, digits) < 0.3             # the lab: about 0.09
    assert _class_accuracy(fixed, digits) >= FIXED_CLASS_ACCURACY  # the lab: about 0.93
    assert fixed.score(digits.X_test, digits.y_test) > shortcut.score(digits.X_test, digits.y_test) + 0.08


def test_the_watermark_takes_most_of_the_attribution_before_the_fix_and_little_after(digits, shortcut, fixed):
    before, after = _share(shortcut, digits), _share(fixed, digits)
    assert before > 0.5                  # 4 of 64 pixels (6 %) carry most of the map; the lab: about 68 %
    assert after < FIXED_SHARE < before  # the lab: about 6 %, the watermark's share of the image


def memoriser():
    """The lab's network for the data randomisation test (section 4): wide, unregularised, no early stopping."""
    return MLPClassifier(hidden_layer_sizes=(256,), alpha=0.0, learning_rate_init=3e-3, max_iter=400, tol=0.0,
                         n_iter_no_change=400, random_state=0)


def test_randomising_the_weights_or_the_labels_decorrelates_the_occlusion_map(digits, shortcut):
    image = digits.X_train[digits.y_train == digits.marked_class][0]
    trained = occlusion(shortcut, image, digits.marked_class).ravel()
    rng = np.random.default_rng(0)
    randomised = copy.deepcopy(shortcut)
    randomised.coefs_ = [rng.normal(0, w.std(), w.shape) for w in shortcut.coefs_]
    randomised.intercepts_ = [rng.normal(0, b.std(), b.shape) for b in shortcut.intercepts_]
    permuted = rng.permutation(digits.y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        shuffled = memoriser().fit(digits.X_train, permuted)
    for other in (randomised, shuffled):
        rho = spearmanr(trained, occlusion(other, image, digits.marked_class).ravel()).statistic
        assert rho < 0.3, rho  # the lab: -0.48 and -0.06


def test_the_data_randomisation_model_memorises_its_shuffled_labels(digits):
    """Adebayo et al.'s test needs a model that fits the permuted labels; the lab's early-stopping network does not."""
    permuted = np.random.default_rng(1).permutation(digits.y_train)
    assert network().fit(digits.X_train, permuted).score(digits.X_train, permuted) < 0.3  # why memoriser() exists
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        shuffled = memoriser().fit(digits.X_train, permuted)
    assert shuffled.score(digits.X_train, permuted) > 0.95            # memorised: the lab prints 100 %
    assert shuffled.score(digits.X_test, digits.y_test) < 0.25         # and learned nothing: about 0.12


def test_the_solutions_pass_and_the_stubs_do_not(digits, shortcut, fixed):
    image = digits.X_train[digits.y_train == digits.marked_class][0]
    assert check_occlusion(occlusion(shortcut, image, 3), shortcut, image, 3)
    assert check_shortcut_reading("a") and check_sanity_reading("a")
    assert check_fix(fixed, digits, shortcut)
    for feedback in (check_occlusion(..., shortcut, image, 3), check_shortcut_reading(...),
                     check_sanity_reading(None), check_fix(..., digits, shortcut)):
        assert_not_yet(feedback, "still the stub")


def test_the_catalogue_covers_every_exercise():
    names = [name for name, _ in exercises()["04"]]
    for name in names:
        entries = [m for m in MISTAKES if m.exercise == name]
        assert len(entries) >= 3 and sum(m.to_the_end for m in entries) == 1, name
    assert {m.exercise for m in MISTAKES} == set(names)


CHECKS = {
    "occlusion": lambda ns: check_occlusion(ns["occlusion_map"], ns["model"], ns["image"], ns["marked_class"]),
    "shortcut-reading": lambda ns: check_shortcut_reading(ns["answer"]),
    "sanity-reading": lambda ns: check_sanity_reading(ns["answer"]),
    "fix": lambda ns: check_fix(ns["model_fixed"], ns["digits"], ns["model"]),
}


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: f"{m.exercise}: {m.mistake}")
def test_every_catalogued_mistake_gets_not_yet_naming_it(digits, shortcut, mistake):
    namespace = dict(np=np, network=network, digits=digits, model=shortcut, marked_class=digits.marked_class,
                     image=digits.X_train[digits.y_train == digits.marked_class][0])
    exec(mistake.code if isinstance(mistake.code, str) else "\n".join(mistake.code), namespace)
    feedback = CHECKS[mistake.exercise](namespace)
    assert not feedback, feedback
    text = (feedback.message + " " + (feedback.hint or "")).lower()
    for phrase in mistake.says:
        assert phrase.lower() in text, (phrase, feedback)
    assert feedback.hints, feedback
