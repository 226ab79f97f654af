"""The course data: deterministic, documented, and the lessons it is built for really show."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from glassbox.data import load_credit, load_reference, train_test


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Small data: OpenMP threads only add overhead, and they stall badly on a busy machine.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def data():
    return load_credit(n_samples=4000, seed=0)


@pytest.fixture(scope="module")
def split(data):
    return train_test(data, test_size=0.25, seed=0)


@pytest.fixture(scope="module")
def no_leak(data, split):
    X_train, X_test, y_train, y_test = split
    cols = [c for c in data.feature_names if c != data.leaky_feature]
    return X_train[cols], X_test[cols], y_train, y_test


@pytest.fixture(scope="module")
def forest(no_leak):
    X_train, _, y_train, _ = no_leak
    return RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=2).fit(X_train, y_train)


@pytest.fixture(scope="module")
def boosting(no_leak):
    X_train, _, y_train, _ = no_leak
    return HistGradientBoostingClassifier(random_state=0).fit(X_train, y_train)


# ---- shape and determinism ------------------------------------------------------------------------------
def test_same_seed_same_rows_and_other_seed_other_rows(data):
    again = load_credit(n_samples=4000, seed=0)
    pd.testing.assert_frame_equal(data.frame, again.frame)
    other = load_credit(n_samples=4000, seed=1)
    assert not data.frame[data.feature_names].equals(other.frame[data.feature_names])
    assert load_credit(n_samples=500, seed=3).frame.shape[0] == 500


def test_columns_and_roles(data):
    assert data.y.name == "default" and set(data.y.unique()) == {0, 1}
    assert list(data.X.columns) == data.feature_names
    assert data.personal_columns == ["name", "email"]
    assert not set(data.personal_columns) & set(data.X.columns)
    assert {*data.personal_columns, "default", *data.feature_names} == set(data.frame.columns)
    assert data.leaky_feature in data.X.columns and data.sensitive_attribute in data.X.columns
    assert all(pd.api.types.is_float_dtype(t) for t in data.X.dtypes), "partial dependence needs float columns"
    assert 0.2 < data.y.mean() < 0.4


def test_personal_columns_look_real_but_are_fake(data):
    emails = data.frame["email"]
    assert emails.str.fullmatch(r"[a-z]+\.[a-z]+\d+@(mail\.)?example\.(com|org|net)").all()
    assert data.frame["name"].str.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+").all()
    assert emails.nunique() > 0.9 * len(emails)


def test_train_test_is_stratified_and_without_personal_columns(data, split):
    X_train, X_test, y_train, y_test = split
    assert len(X_test) == 1000 and len(X_train) == 3000
    assert abs(y_train.mean() - y_test.mean()) < 0.005
    assert "email" not in X_train.columns
    assert X_train.index.intersection(X_test.index).empty


# ---- the ground truth as data -----------------------------------------------------------------------------
def test_ground_truth_roles(data):
    truth = data.truth
    c = truth.contribution
    assert set(c) == set(data.feature_names)
    assert truth.important == sorted(truth.important, key=lambda f: -c[f])
    assert truth.important[:3] == ["debt_to_income", "age", "income"]
    for f in [*truth.noise, truth.correlated_pair[1], truth.sensitive_attribute, truth.leaky_feature]:
        assert c[f] == 0.0 and f not in truth.important
    assert truth.high_cardinality_noise == truth.noise[0] == "branch_id"
    assert data.X["branch_id"].nunique() > 900 and data.X["newsletter_opt_in"].nunique() == 2
    assert truth.nonlinear_feature in truth.important and truth.correlated_pair[0] in truth.important
    assert set(truth.interaction_pair) <= set(truth.important)


def test_noise_is_independent_and_the_pair_is_correlated(data):
    for f in data.truth.noise:
        assert abs(np.corrcoef(data.X[f], data.y)[0, 1]) < 0.05
    a, b = data.truth.correlated_pair
    assert data.X[a].corr(data.X[b]) > 0.9


def test_true_log_odds_explain_the_default_rate(data):
    p = 1 / (1 + np.exp(-data.truth.log_odds(data.X)))
    assert abs(p.mean() - data.y.mean()) < 0.02
    assert roc_auc_score(data.y, p) > 0.85


def test_sensitive_attribute_acts_only_through_income(data):
    g = data.sensitive_attribute
    by_group = data.frame.groupby(g)
    assert by_group["income"].median().diff().iloc[-1] < 0  # lower income in group 1 ...
    assert by_group["default"].mean().diff().iloc[-1] > 0  # ... hence more defaults, with no direct term
    assert data.truth.contribution[g] == 0.0


def test_true_shape_is_u_shaped_and_centred(data):
    grid = np.linspace(20, 75, 56)
    effect = data.truth.effect("age", grid)
    assert abs(effect.mean()) < 1e-12
    assert effect[0] > effect[grid.tolist().index(45)] < effect[-1]
    assert np.allclose(data.truth.effect("branch_id", grid), 0)
    with pytest.raises(KeyError):
        data.truth.effect("name", grid)


def test_scoring_helpers_on_known_answers(data):
    truth = data.truth
    true = pd.Series(truth.contribution)
    assert truth.rank_agreement(true) == pytest.approx(1.0)
    assert truth.rank_agreement(-true) == pytest.approx(-1.0)
    assert truth.rank_agreement(true.to_dict(), method="kendall") == pytest.approx(1.0)
    assert truth.noise_separation(true + 1e-9 * np.arange(len(true))) == 1.0
    with pytest.raises(KeyError, match="missing"):
        truth.rank_agreement(true.drop("age"))
    grid = np.linspace(20, 75, 30)
    assert truth.shape_agreement("age", grid, 3 * truth.effect("age", grid) + 7) == pytest.approx(1.0)
    assert truth.shape_agreement("age", grid, np.ones(30)) == 0.0


# ---- the lessons show for real -----------------------------------------------------------------------------
def test_leaky_feature_is_suspiciously_strong(data, split, no_leak):
    X_train, X_test, y_train, y_test = split
    assert roc_auc_score(y_test, X_test[data.leaky_feature]) > 0.9
    with_leak = HistGradientBoostingClassifier(random_state=0).fit(X_train, y_train)
    assert roc_auc_score(y_test, with_leak.predict_proba(X_test)[:, 1]) > 0.97
    Xtr, Xte, ytr, yte = no_leak
    without = HistGradientBoostingClassifier(random_state=0).fit(Xtr, ytr)
    assert 0.75 < roc_auc_score(yte, without.predict_proba(Xte)[:, 1]) < 0.9


def test_impurity_favours_high_cardinality_noise_but_held_out_permutation_does_not(data, forest, no_leak):
    truth = data.truth
    _, X_test, _, y_test = no_leak
    impurity = pd.Series(forest.feature_importances_, X_test.columns)
    # the noise feature with ~1000 values outranks a truly important feature and dwarfs the binary noise
    assert impurity["branch_id"] > impurity[truth.important].min()
    assert impurity["branch_id"] > 4 * impurity["newsletter_opt_in"]
    assert truth.noise_separation(impurity) < 1.0
    result = permutation_importance(forest, X_test, y_test, n_repeats=10, random_state=0, scoring="roc_auc")
    perm = pd.Series(result.importances_mean, X_test.columns)
    assert truth.noise_separation(perm) == 1.0
    assert abs(perm["branch_id"]) < 2 * result.importances_std[list(X_test.columns).index("branch_id")] + 1e-3
    assert truth.rank_agreement(perm) > 0.8 > truth.rank_agreement(impurity)


def test_correlated_pair_shares_importance(data, forest, no_leak):
    X_train, X_test, y_train, y_test = no_leak
    a, b = data.truth.correlated_pair
    impurity = pd.Series(forest.feature_importances_, X_test.columns)
    assert impurity[b] > 0.5 * impurity[a]  # the proxy takes a large share although its true effect is 0

    def held_out(model, X):
        r = permutation_importance(model, X, y_test, n_repeats=10, random_state=0, scoring="roc_auc")
        return pd.Series(r.importances_mean, X.columns)

    shared = held_out(forest, X_test)[a]
    alone = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=2).fit(X_train.drop(columns=b), y_train)
    assert held_out(alone, X_test.drop(columns=b))[a] > 1.25 * shared  # without its partner it gets the credit


def test_partial_dependence_recovers_the_shape_and_the_interaction(data, boosting, no_leak):
    truth = data.truth
    _, X_test, _, _ = no_leak
    pd_age = partial_dependence(boosting, X_test, ["age"], grid_resolution=30)
    assert truth.shape_agreement("age", pd_age["grid_values"][0], pd_age["average"][0]) > 0.9

    def non_additivity(pair):
        both = partial_dependence(boosting, X_test, pair, grid_resolution=12, response_method="decision_function")
        surface = both["average"][0]
        additive = surface.mean(axis=1, keepdims=True) + surface.mean(axis=0, keepdims=True) - surface.mean()
        return np.var(surface - additive) / np.var(surface), both

    h_pair, both = non_additivity(list(truth.interaction_pair))
    h_other, _ = non_additivity(["debt_to_income", "income"])
    assert h_pair > 0.1 and h_pair > 5 * h_other
    true = truth.joint_effect(*both["grid_values"])
    assert np.corrcoef(true.ravel(), both["average"][0].ravel())[0, 1] > 0.8


def test_reference_dataset_ships_with_scikit_learn():
    ref = load_reference()
    assert ref.X.shape == (569, 30) and len(ref.feature_names) == 30
    assert ref.y.name == "malignant" and int(ref.y.sum()) == 212
    assert ref.truth is None and ref.personal_columns == []
    assert "malignant" in ref.frame.columns
