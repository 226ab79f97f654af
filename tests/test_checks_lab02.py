"""Lab 02's self-checks pass on the solution's values, fail helpfully on the stubs, and catch the usual mistakes:
permutation importance on training data, a single repeat, no seed; every entry of the mistakes catalogue
(tests/mistakes/lab02.py) is run against the check of its exercise. Accumulated local effects beat partial
dependence on the correlated pair, measured against the ground truth, as the lab says."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import partial_dependence, permutation_importance
from threadpoolctl import threadpool_limits

from glassbox.checks.lab02 import (
    SHAPE_THRESHOLD,
    check_correlated_pair,
    check_noise_like,
    check_permutation_importance,
    check_read_interaction,
    check_recovered_shape,
    check_unreliable_pd,
)
from glassbox.data import load_credit, train_test
from helpers import assert_not_yet
from mistakes.lab02 import MISTAKES

TREES = 40  # smaller than the lab's forest: every check recomputes permutation importance


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Small data: OpenMP threads only add overhead, and they stall badly on a busy machine.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))


@pytest.fixture(scope="module")
def data():
    return load_credit(n_samples=4000, seed=0)


@pytest.fixture(scope="module")
def split(data):
    X_train, X_test, y_train, y_test = train_test(data, test_size=0.25, seed=0)
    return X_train.drop(columns=data.leaky_feature), X_test.drop(columns=data.leaky_feature), y_train, y_test


@pytest.fixture(scope="module")
def forest(split):
    X_train, _, y_train, _ = split
    return RandomForestClassifier(n_estimators=TREES, random_state=0).fit(X_train, y_train)


def permutation(model, X, y, **kwargs):
    options = dict(n_repeats=10, random_state=0, scoring="roc_auc") | kwargs
    return permutation_importance(model, X, y, **options)


@pytest.fixture(scope="module")
def result(forest, split):
    return permutation(forest, split[1], split[3])


def assert_fails(feedback, *phrases):
    assert not feedback, repr(feedback)
    for phrase in phrases:
        assert phrase in feedback.message, repr(feedback)
    assert feedback.hint, "every failure should say how to fix it"


# ---- Exercise 1: permutation importance on held-out data ------------------------------------------------------
def test_permutation_importance_passes_on_the_solution(forest, split, result):
    X_train, X_test, y_train, y_test = split
    feedback = check_permutation_importance(result, forest, X_test, y_test, X_train, y_train)
    assert feedback and "debt_to_income" in feedback.message


def test_solution_ranks_true_factors_above_noise_and_clears_the_stated_threshold(data, split, result):
    recovered = pd.Series(result.importances_mean, index=split[1].columns)
    truth = data.truth
    assert recovered[truth.important].min() > recovered[truth.noise].max()
    assert truth.noise_separation(recovered) == 1.0
    assert truth.rank_agreement(recovered) >= 0.8  # the threshold the lab states


def test_permutation_stub_fails(forest, split):
    X_train, X_test, y_train, y_test = split
    assert_fails(check_permutation_importance(..., forest, X_test, y_test, X_train, y_train), "still the stub")
    assert_fails(check_permutation_importance(np.zeros(3), forest, X_test, y_test), "should be what")


def test_training_data_is_caught(forest, split):
    X_train, X_test, y_train, y_test = split
    on_train = permutation(forest, X_train, y_train)
    feedback = check_permutation_importance(on_train, forest, X_test, y_test, X_train, y_train)
    assert_fails(feedback, "training data")
    assert "X_test" in feedback.hint


def test_training_data_without_a_seed_is_still_recognised(forest, split):
    X_train, X_test, y_train, y_test = split
    on_train = permutation(forest, X_train, y_train, random_state=None)
    assert_fails(check_permutation_importance(on_train, forest, X_test, y_test, X_train, y_train), "training data")


def test_single_repeat_is_caught(forest, split):
    X_train, X_test, y_train, y_test = split
    once = permutation(forest, X_test, y_test, n_repeats=1)
    feedback = check_permutation_importance(once, forest, X_test, y_test, X_train, y_train)
    assert_fails(feedback, "only 1 repeat", "spread")
    assert "n_repeats" in feedback.hint


def test_missing_seed_is_caught(forest, split):
    X_train, X_test, y_train, y_test = split
    np.random.seed(12345)  # random_state=None draws from numpy's global generator
    unseeded = permutation(forest, X_test, y_test, random_state=None)
    feedback = check_permutation_importance(unseeded, forest, X_test, y_test, X_train, y_train)
    assert_fails(feedback, "does not reproduce")
    assert "random_state=0" in feedback.hint


def test_default_accuracy_scoring_is_explained(forest, split):
    X_train, X_test, y_train, y_test = split
    accuracy = permutation(forest, X_test, y_test, scoring=None)
    assert_fails(check_permutation_importance(accuracy, forest, X_test, y_test, X_train, y_train), "accuracy")


# ---- Exercise 2: features that cannot be told from noise -------------------------------------------------------
def noise_like_of(result, names):
    return [f for f, m, s in zip(names, result.importances_mean, result.importances_std) if m - 2 * s <= 0]


def test_noise_like_passes_on_the_solution(data, split, result):
    answer = noise_like_of(result, split[1].columns)
    feedback = check_noise_like(answer, result, split[1].columns)
    assert feedback
    assert set(data.truth.noise) <= set(answer) and not set(data.truth.important) & set(answer)


def test_noise_like_stub_and_mistakes_fail(split, result):
    names = split[1].columns
    answer = noise_like_of(result, names)
    assert_fails(check_noise_like(..., result, names), "still the stub")
    assert_fails(check_noise_like("branch_id", result, names), "list of feature names")
    assert_fails(check_noise_like([f for f in answer if f != "branch_id"], result, names), "['branch_id']")
    assert_fails(check_noise_like(answer + ["age"], result, names), "['age'] should not be")
    assert_fails(check_noise_like(answer + ["shoe_size"], result, names), "not features")


# ---- Exercise 3: the correlated pair ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def without(data, split):
    X_train, X_test, y_train, y_test = split
    proxy = data.truth.correlated_pair[1]
    model = RandomForestClassifier(n_estimators=TREES, random_state=0).fit(X_train.drop(columns=proxy), y_train)
    return model, permutation(model, X_test.drop(columns=proxy), y_test)


def test_correlated_pair_passes_on_the_solution(data, split, result, without):
    X_train, X_test, y_train, y_test = split
    model, result_without = without
    feedback = check_correlated_pair(result_without, model, X_test, y_test, result, data.truth.correlated_pair,
                                     X_train, y_train)
    assert feedback and "credit_utilization" in feedback.message


def test_correlated_pair_stub_and_wrong_models_fail(data, split, forest, result, without):
    X_train, X_test, y_train, y_test = split
    pair = data.truth.correlated_pair
    assert_fails(check_correlated_pair(..., ..., X_test, y_test, result, pair), "still the stub")
    assert_fails(check_correlated_pair(result, forest, X_test, y_test, result, pair), "still sees revolving_balance")
    wrong = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train.drop(columns=list(pair)), y_train)
    assert_fails(check_correlated_pair(..., wrong, X_test, y_test, result, pair), "must keep credit_utilization")
    model, _ = without
    assert_fails(check_correlated_pair(..., model, X_test, y_test, result, pair), "`result_without` is still")
    assert_fails(check_correlated_pair(without[1], model, X_test, y_test, ..., pair), "from Exercise 1")


def test_correlated_pair_catches_training_data_and_missing_seed(data, split, result, without):
    X_train, X_test, y_train, y_test = split
    pair = data.truth.correlated_pair
    model, _ = without
    on_train = permutation(model, X_train.drop(columns=pair[1]), y_train)
    assert_fails(check_correlated_pair(on_train, model, X_test, y_test, result, pair, X_train, y_train),
                 "training data")
    np.random.seed(7)
    unseeded = permutation(model, X_test.drop(columns=pair[1]), y_test, random_state=None)
    assert_fails(check_correlated_pair(unseeded, model, X_test, y_test, result, pair, X_train, y_train),
                 "does not reproduce")


# ---- Exercise 4: the recovered shape ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boosting(split):
    X_train, _, y_train, _ = split
    return HistGradientBoostingClassifier(max_depth=2, max_iter=200, random_state=0).fit(X_train, y_train)


def age_pd(model, X, feature="age", kind="average", method="brute"):
    return partial_dependence(model, X, [feature], grid_resolution=30, percentiles=(0.01, 0.99),
                              response_method="decision_function", kind=kind, method=method)


def test_shape_passes_on_the_solution_above_the_stated_threshold(data, split, boosting):
    result = age_pd(boosting, split[1])
    grid, curve = result["grid_values"][0], result["average"][0]
    feedback = check_recovered_shape(grid, curve, data.truth, boosting, split[1])
    assert feedback and f"threshold {SHAPE_THRESHOLD}" in feedback.message
    assert data.truth.shape_agreement("age", grid, curve) >= SHAPE_THRESHOLD


def test_shape_accepts_the_average_computed_by_hand(data, split, boosting):
    """The definition, written out: every held-out applicant gets each age, and their log-odds are averaged."""
    X_test = split[1]
    grid = age_pd(boosting, X_test)["grid_values"][0]
    curve = [boosting.decision_function(X_test.assign(age=value)).mean() for value in grid]
    assert check_recovered_shape(grid, curve, data.truth, boosting, X_test)


def test_shape_names_the_recursion_default_and_its_shift(data, split, boosting):
    """For boosting, partial_dependence's default is method="recursion": the training data's node weights, and
    no starting value (the baseline log-odds), so the curve is the held-out one shifted by about minus it."""
    X_test = split[1]
    default = partial_dependence(boosting, X_test, ["age"], grid_resolution=30, percentiles=(0.01, 0.99))
    held_out = age_pd(boosting, X_test)["average"][0]
    shift = float(np.mean(default["average"][0] - held_out))
    assert shift == pytest.approx(-float(np.ravel(boosting._baseline_prediction)[0]), abs=0.05)
    feedback = check_recovered_shape(default["grid_values"][0], default["average"][0], data.truth, boosting, X_test)
    assert_not_yet(feedback, 'method="recursion"', "training data", f"{shift:+.2f} log-odds")
    assert 'method="brute"' in feedback.hints[-1]
    # The shape alone would have passed: only the comparison with the held-out average catches it.
    assert check_recovered_shape(default["grid_values"][0], default["average"][0], data.truth)


def test_shape_refuses_a_curve_averaged_over_the_training_rows(data, split, boosting):
    X_train, X_test = split[0], split[1]
    grid = age_pd(boosting, X_test)["grid_values"][0]
    on_train = partial_dependence(boosting, X_train, ["age"], custom_values={"age": grid}, method="brute",
                                  response_method="decision_function")["average"][0]
    assert_not_yet(check_recovered_shape(grid, on_train, data.truth, boosting, X_test), "held-out rows")


def test_shape_stub_and_mistakes_fail(data, split, boosting):
    truth = data.truth
    result = age_pd(boosting, split[1])
    grid, curve = result["grid_values"][0], result["average"][0]
    assert_fails(check_recovered_shape(..., ..., truth), "still the stub")
    ice = age_pd(boosting, split[1], kind="individual")["individual"][0]
    assert_fails(check_recovered_shape(grid, ice, truth), "one curve per row")
    assert_fails(check_recovered_shape(grid[::-1], curve, truth), "increasing")
    assert_fails(check_recovered_shape(grid, curve[:10], truth), "30 points")
    other = age_pd(boosting, split[1], feature="debt_to_income")
    feedback = check_recovered_shape(other["grid_values"][0], other["average"][0], truth)
    assert_fails(feedback, "agrees with the true effect of age by only")


def test_shape_on_the_probability_scale_is_named(data, split, boosting):
    result = partial_dependence(boosting, split[1], ["age"], grid_resolution=30, percentiles=(0.01, 0.99),
                                response_method="predict_proba", method="brute")
    feedback = check_recovered_shape(result["grid_values"][0], result["average"][0], data.truth)
    assert_not_yet(feedback, "probability scale", "response_method")


# ---- Exercises 5 and 6: reading the plots -------------------------------------------------------------------
def test_reading_exercises_pass_on_the_right_letter_and_explain_why():
    feedback = check_read_interaction("a")
    assert feedback and "short employment" in feedback.message
    feedback = check_unreliable_pd(" B ")
    assert feedback and "do not exist" in feedback.message


@pytest.mark.parametrize("check", [check_read_interaction, check_unreliable_pd])
def test_reading_exercises_stub_fails_with_the_exercise_hint(check):
    feedback = check(...)
    assert_not_yet(feedback, "`answer` is still the stub")
    assert feedback.hints == check.hints and len(feedback.hints) == 2


# ---- The mistakes catalogue, each wrong answer run against its check -----------------------------------------
def test_the_catalogue_has_three_mistakes_per_exercise_and_one_to_the_end():
    from glassbox.course.progress import exercises

    names = [name for name, _ in exercises()["02"]]
    for name in names:
        entries = [m for m in MISTAKES if m.exercise == name]
        assert len(entries) >= 3, name
        assert sum(m.to_the_end for m in entries) == 1, name
    assert {m.exercise for m in MISTAKES} == set(names)


@pytest.fixture(scope="module")
def lab_state(data, split, forest, result, boosting):
    """The names the lab's exercise cells see, with a smaller forest (the checks use whatever model they get)."""
    X_train, X_test, y_train, y_test = split

    def small_forest(**settings):
        return RandomForestClassifier(**{**settings, "n_estimators": TREES})

    keep, proxy = data.truth.correlated_pair
    return dict(np=np, pd=pd, permutation_importance=permutation_importance, partial_dependence=partial_dependence,
                RandomForestClassifier=small_forest, forest=forest, boosting=boosting, result=result,
                X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test, keep=keep, proxy=proxy,
                truth=data.truth)


CHECKS = {
    "permutation-importance": lambda ns: check_permutation_importance(
        ns["result"], ns["forest"], ns["X_test"], ns["y_test"], ns["X_train"], ns["y_train"]),
    "noise-like": lambda ns: check_noise_like(ns["noise_like"], ns["result"], ns["X_test"].columns),
    "correlated-pair": lambda ns: check_correlated_pair(
        ns["result_without"], ns["model_without"], ns["X_test"], ns["y_test"], ns["result"],
        ns["truth"].correlated_pair, ns["X_train"], ns["y_train"]),
    "recovered-shape": lambda ns: check_recovered_shape(ns["grid"], ns["curve"], ns["truth"], ns["boosting"],
                                                        ns["X_test"]),
    "read-interaction": lambda ns: check_read_interaction(ns["answer"]),
    "unreliable-pd": lambda ns: check_unreliable_pd(ns["answer"]),
}


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: f"{m.exercise}: {m.mistake}")
def test_every_catalogued_mistake_gets_not_yet_naming_it(lab_state, mistake):
    namespace = dict(lab_state)
    code = mistake.code if isinstance(mistake.code, str) else "\n".join(mistake.code)
    if mistake.exercise == "permutation-importance":
        np.random.seed(12345)  # random_state=None draws from numpy's global generator
    exec(code, namespace)
    feedback = CHECKS[mistake.exercise](namespace)
    assert not feedback, feedback
    assert "could not read your answer" not in feedback.message, feedback
    text = (feedback.message + " " + (feedback.hint or "")).lower()
    for phrase in mistake.says:
        assert phrase.lower() in text, (phrase, feedback)
    assert feedback.hints, feedback


def test_no_stub_comment_or_first_hint_holds_a_solution_line():
    import nbformat

    from glassbox.checks import lab02

    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "solutions" / "02-global-explanations.ipynb", 4)
    solution_lines, stubs = [], []
    for cell in notebook.cells:
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("# BEGIN SOLUTION"):
                inside = True
            elif stripped.startswith("# END SOLUTION"):
                inside = False
            elif inside and stripped.startswith("# STUB:"):
                stubs.append(stripped)
            elif inside and len(stripped) > 12:
                solution_lines.append("".join(stripped.split()))
    first_hints = [item.hints[0] for item in vars(lab02).values() if getattr(item, "exercise", None) and item.hints]
    assert len(first_hints) == 6
    for text in stubs + first_hints:
        squeezed = "".join(text.split())
        assert not [line for line in solution_lines if line in squeezed], text


# ---- Section 6: partial dependence against accumulated local effects on the correlated pair ---------------------
def pd_and_ale_errors(model, X_test, truth):
    from glassbox.explain import accumulated_local_effects, effect_error

    errors = {}
    for feature in truth.correlated_pair:
        edges, ale = accumulated_local_effects(model, X_test, feature, bins=20, response_method="decision_function")
        pd_curve = partial_dependence(model, X_test, [feature], custom_values={feature: edges},
                                      response_method="decision_function", method="brute")["average"][0]
        errors[feature] = (effect_error(truth, feature, edges, pd_curve), effect_error(truth, feature, edges, ale))
    return errors


def test_ale_is_closer_to_the_truth_than_partial_dependence_on_the_correlated_pair(data, split, boosting):
    """The numbers section 6 of the lab shows (log-odds RMSE of centred curves against the true effect)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    X_train, X_test, y_train, _ = split
    quadratic = make_pipeline(StandardScaler(), PolynomialFeatures(degree=2), LogisticRegression(max_iter=1000))
    errors = pd_and_ale_errors(quadratic.fit(X_train, y_train), X_test, data.truth)
    (pd_u, ale_u), (pd_b, ale_b) = errors["credit_utilization"], errors["revolving_balance"]
    assert pd_u == pytest.approx(0.881, abs=0.01) and ale_u == pytest.approx(0.503, abs=0.01)
    assert ale_u < 0.6 * pd_u  # the causal feature: ALE much closer
    assert np.hypot(ale_u, ale_b) < np.hypot(pd_u, pd_b)  # and over the pair taken together
    assert ale_b == pytest.approx(0.371, abs=0.01) and pd_b == pytest.approx(0.126, abs=0.01)  # the proxy: not
    # Trees predict flat off the data: on the boosting model the two methods nearly agree.
    for pd_error, ale_error in pd_and_ale_errors(boosting, X_test, data.truth).values():
        assert abs(pd_error - ale_error) < 0.05
