"""Lab 02's self-checks pass on the solution's values, fail helpfully on the stubs, and catch the usual mistakes:
permutation importance on training data, a single repeat, no seed."""

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
    check_recovered_shape,
)
from glassbox.data import load_credit, train_test

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


def age_pd(model, X, feature="age", kind="average"):
    return partial_dependence(model, X, [feature], grid_resolution=30, percentiles=(0.01, 0.99),
                              response_method="decision_function", kind=kind)


def test_shape_passes_on_the_solution_above_the_stated_threshold(data, split, boosting):
    result = age_pd(boosting, split[1])
    grid, curve = result["grid_values"][0], result["average"][0]
    feedback = check_recovered_shape(grid, curve, data.truth)
    assert feedback and f"threshold {SHAPE_THRESHOLD}" in feedback.message
    assert data.truth.shape_agreement("age", grid, curve) >= SHAPE_THRESHOLD


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
