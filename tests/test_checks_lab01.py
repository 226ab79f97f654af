"""Lab 01's self-checks pass on the solution's values and explain each common mistake."""

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, export_text

from glassbox.checks.lab01 import (
    check_held_out_scores,
    check_leak,
    check_shallow_tree,
    check_standardised_coefficients,
)
from glassbox.data import load_credit, train_test


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))


@pytest.fixture(scope="module")
def split():
    return train_test(load_credit(n_samples=4000, seed=0), test_size=0.25, seed=0)


@pytest.fixture(scope="module")
def logreg(split):
    X_train, _, y_train, _ = split
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)


@pytest.fixture(scope="module")
def tree(split):
    X_train, _, y_train, _ = split
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_train, y_train)


@pytest.fixture(scope="module")
def models(split, logreg, tree):
    X_train, _, y_train, _ = split
    return {
        "logistic regression": logreg,
        "decision tree (depth 3)": tree,
        "random forest": RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, y_train),
        "gradient boosting": HistGradientBoostingClassifier(max_depth=2, max_iter=50, random_state=0).fit(
            X_train, y_train),
    }


def held_out_scores(models, X, y, auc_from_labels=False):
    rows = {}
    for name, model in models.items():
        score = model.predict(X) if auc_from_labels else model.predict_proba(X)[:, 1]
        rows[name] = {"accuracy": accuracy_score(y, model.predict(X)), "roc_auc": roc_auc_score(y, score)}
    return pd.DataFrame(rows).T


def assert_fails(feedback, *phrases):
    assert not feedback, repr(feedback)
    for phrase in phrases:
        assert phrase in feedback.message, repr(feedback)
    assert feedback.hint, "every failure should say how to fix it"


# ---- Exercise 1: standardised coefficients --------------------------------------------------------------------
def test_coefficients_pass_on_the_solution(split, logreg):
    X_train, _, y_train, _ = split
    feedback = check_standardised_coefficients(pd.Series(logreg[-1].coef_[0], index=X_train.columns),
                                               X_train, y_train)
    assert feedback and "days_in_collections" in feedback.message


def test_coefficients_stub_fails(split):
    X_train, _, y_train, _ = split
    assert_fails(check_standardised_coefficients(..., X_train, y_train), "still the stub")


def test_coefficients_on_raw_scales_are_caught(split):
    X_train, _, y_train, _ = split
    raw = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    feedback = check_standardised_coefficients(pd.Series(raw.coef_[0], index=X_train.columns), X_train, y_train)
    assert_fails(feedback, "per raw unit")
    assert "StandardScaler" in feedback.hint


def test_coefficients_as_a_bare_array_or_of_the_wrong_columns_fail(split, logreg):
    X_train, _, y_train, _ = split
    assert_fails(check_standardised_coefficients(logreg[-1].coef_[0], X_train, y_train), "pandas Series")
    partial = pd.Series(logreg[-1].coef_[0], index=X_train.columns).drop("age")
    assert_fails(check_standardised_coefficients(partial, X_train, y_train), "missing: ['age']")


# ---- Exercise 2: a shallow tree ---------------------------------------------------------------------------------
def test_tree_passes_on_the_solution(split, tree):
    X_train = split[0]
    feedback = check_shallow_tree(tree, export_text(tree, feature_names=list(X_train.columns)), X_train)
    assert feedback and "days_in_collections" in feedback.message


def test_tree_stub_and_unfitted_tree_fail(split, tree):
    X_train = split[0]
    assert_fails(check_shallow_tree(..., ..., X_train), "still the stub")
    assert_fails(check_shallow_tree(DecisionTreeClassifier(max_depth=3), ..., X_train), "not been fitted")
    assert_fails(check_shallow_tree(tree, ..., X_train), "`rules` is still the stub")


def test_deep_tree_and_unnamed_or_foreign_rules_fail(split, tree):
    X_train, _, y_train, _ = split
    deep = DecisionTreeClassifier(random_state=0).fit(X_train, y_train)
    assert_fails(check_shallow_tree(deep, export_text(deep), X_train), "levels deep")
    assert_fails(check_shallow_tree(tree, export_text(tree), X_train), "feature_0")
    other = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X_train, y_train)
    assert_fails(check_shallow_tree(tree, export_text(other, feature_names=list(X_train.columns)), X_train),
                 "does not describe")


# ---- Exercise 3: held-out scores -------------------------------------------------------------------------------
def test_scores_pass_on_the_solution(split, models):
    X_train, X_test, y_train, y_test = split
    feedback = check_held_out_scores(held_out_scores(models, X_test, y_test), models, X_test, y_test,
                                     X_train, y_train)
    assert feedback and "best held-out ROC AUC" in feedback.message


def test_scores_stub_fails(split, models):
    X_train, X_test, y_train, y_test = split
    assert_fails(check_held_out_scores(None, models, X_test, y_test, X_train, y_train), "stub")


def test_auc_from_predicted_labels_is_caught(split, models):
    X_train, X_test, y_train, y_test = split
    scores = held_out_scores(models, X_test, y_test, auc_from_labels=True)
    assert_fails(check_held_out_scores(scores, models, X_test, y_test, X_train, y_train), "predicted labels")


def test_training_scores_are_caught(split, models):
    X_train, X_test, y_train, y_test = split
    scores = held_out_scores(models, X_train, y_train)
    assert_fails(check_held_out_scores(scores, models, X_test, y_test, X_train, y_train), "training data")


def test_transposed_table_is_explained(split, models):
    X_train, X_test, y_train, y_test = split
    scores = held_out_scores(models, X_test, y_test).T
    feedback = check_held_out_scores(scores, models, X_test, y_test, X_train, y_train)
    assert_fails(feedback, "columns 'accuracy' and 'roc_auc'")
    assert "transpose" in feedback.hint


# ---- Exercise 4: the leak --------------------------------------------------------------------------------------
def single_auc(X, y):
    return pd.Series({f: roc_auc_score(y, X[f]) for f in X.columns})


def test_leak_passes_on_the_solution(split):
    _, X_test, _, y_test = split
    auc = single_auc(X_test, y_test)
    feedback = check_leak(auc.idxmax(), auc, X_test, y_test)
    assert feedback and "days_in_collections" in feedback.message
    flipped = auc.where(auc >= 0.5, 1 - auc)  # flipping protective features is fine too
    assert check_leak("days_in_collections", flipped, X_test, y_test)


def test_leak_stub_and_wrong_suspect_fail(split):
    _, X_test, _, y_test = split
    auc = single_auc(X_test, y_test)
    assert_fails(check_leak(..., ..., X_test, y_test), "still the stub")
    assert_fails(check_leak(..., auc, X_test, y_test), "`suspect` is still the stub")
    assert_fails(check_leak("debt_to_income", auc, X_test, y_test), "genuine risk factor")


def test_leak_scores_on_training_data_are_caught(split):
    X_train, X_test, y_train, y_test = split
    feedback = check_leak("days_in_collections", single_auc(X_train, y_train), X_test, y_test)
    assert_fails(feedback, "should be")
