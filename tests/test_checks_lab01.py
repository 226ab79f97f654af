"""Lab 01's self-checks pass on the solution's values, explain each catalogued mistake, and hold the lab's numbers.

The models are the notebook's: the identifier `branch_id` dropped, continuous features standardised and the 0/1
features passed through, a depth-3 tree, a 50-tree forest, gradient boosting, a majority-class baseline and a
splines + logistic-regression glass box; cross-validation on five seeded stratified folds of the training rows.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier, export_text

from glassbox.checks.lab01 import (
    check_baseline_prediction,
    check_cv_reading,
    check_held_out_scores,
    check_leak,
    check_shallow_tree,
    check_standardised_coefficients,
    check_unreadable_weights,
    paired_auc_difference_se,
)
from glassbox.data import load_credit, train_test
from helpers import assert_not_yet

BINARY = ["gender", "newsletter_opt_in"]


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))


@pytest.fixture(scope="module")
def split():
    X_train, X_test, y_train, y_test = train_test(load_credit(n_samples=4000, seed=0), test_size=0.25, seed=0)
    return X_train.drop(columns="branch_id"), X_test.drop(columns="branch_id"), y_train, y_test


def scale_continuous(columns):
    return ColumnTransformer([("scaled", StandardScaler(), [c for c in columns if c not in BINARY]),
                              ("binary", "passthrough", [c for c in columns if c in BINARY])],
                             verbose_feature_names_out=False).set_output(transform="pandas")


def fit_logreg(X, y):
    return make_pipeline(scale_continuous(X.columns), LogisticRegression(max_iter=1000)).fit(X, y)


@pytest.fixture(scope="module")
def logreg(split):
    X_train, _, y_train, _ = split
    return fit_logreg(X_train, y_train)


@pytest.fixture(scope="module")
def tree(split):
    X_train, _, y_train, _ = split
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_train, y_train)


def black_boxes():
    return {"random forest": RandomForestClassifier(n_estimators=50, min_samples_leaf=10, random_state=0),
            "gradient boosting": HistGradientBoostingClassifier(max_depth=2, max_iter=200, random_state=0)}


@pytest.fixture(scope="module")
def models(split, logreg, tree):
    X_train, _, y_train, _ = split
    return {"logistic regression": logreg, "decision tree (depth 3)": tree,
            **{name: model.fit(X_train, y_train) for name, model in black_boxes().items()}}


@pytest.fixture(scope="module")
def clean(split):
    """The section-7 models fitted without the leak, and their cross-validation results."""
    X_train, X_test, y_train, y_test = (part.drop(columns="days_in_collections") if part.ndim == 2 else part
                                        for part in split)
    continuous = [c for c in X_train.columns if c not in BINARY]
    clean_models = {
        "majority class (dummy)": DummyClassifier(strategy="most_frequent"),
        "logistic regression": make_pipeline(scale_continuous(X_train.columns), LogisticRegression(max_iter=1000)),
        "logistic regression + splines": make_pipeline(
            ColumnTransformer([("splines", SplineTransformer(), continuous), ("binary", "passthrough", BINARY)]),
            LogisticRegression(max_iter=1000)),
        "decision tree (depth 3)": DecisionTreeClassifier(max_depth=3, random_state=0),
        **black_boxes(),
    }
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    cv = {name: cross_validate(model, X_train, y_train, cv=folds, scoring=["roc_auc", "accuracy"])
          for name, model in clean_models.items()}
    for model in clean_models.values():
        model.fit(X_train, y_train)
    return clean_models, cv, X_test, y_test


def coefficient_series(model, index=None):
    return pd.Series(model[-1].coef_[0], index=model[-1].feature_names_in_ if index is None else index)


# ---- Exercise 1: standardised coefficients --------------------------------------------------------------------
def test_coefficients_pass_on_the_solution_and_mention_the_penalty(split, logreg):
    X_train, X_test, y_train, y_test = split
    feedback = check_standardised_coefficients(coefficient_series(logreg), X_train, y_train, X_test, y_test)
    assert feedback and "days_in_collections" in feedback.message and "C=1.0" in feedback.message


def test_the_binary_features_are_passed_through_and_the_identifier_is_gone(split, logreg):
    X_train = split[0]
    assert "branch_id" not in X_train.columns
    assert list(logreg[-1].feature_names_in_[-2:]) == BINARY   # the ColumnTransformer puts them last
    scaled = logreg[0].transform(X_train)
    assert scaled[BINARY].isin([0, 1]).all().all()
    assert np.allclose(scaled.drop(columns=BINARY).std(ddof=0), 1)


def test_coefficients_stub_fails_with_the_exercise_hint(split):
    X_train, _, y_train, _ = split
    feedback = check_standardised_coefficients(..., X_train, y_train)
    assert_not_yet(feedback, "still the stub")
    assert len(feedback.hints) == 2


def test_coefficients_on_raw_scales_are_caught(split):
    X_train, X_test, y_train, y_test = split
    raw = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    feedback = check_standardised_coefficients(pd.Series(raw.coef_[0], index=X_train.columns), X_train, y_train,
                                               X_test, y_test)
    assert_not_yet(feedback, "per raw unit", "scale_continuous")


def test_coefficients_fitted_on_the_test_rows_are_named_as_such(split):
    X_train, X_test, y_train, y_test = split
    feedback = check_standardised_coefficients(coefficient_series(fit_logreg(X_test, y_test)), X_train, y_train,
                                               X_test, y_test)
    assert_not_yet(feedback, "fitted on the test data")
    assert "StandardScaler" not in feedback.message + feedback.hint


def test_standardised_binaries_are_caught(split):
    X_train, X_test, y_train, y_test = split
    everything = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
    feedback = check_standardised_coefficients(coefficient_series(everything, X_train.columns), X_train, y_train,
                                               X_test, y_test)
    assert_not_yet(feedback, "0/1 columns", "standardised too")


def test_weights_labelled_in_the_wrong_order_are_caught(split, logreg):
    X_train, X_test, y_train, y_test = split
    feedback = check_standardised_coefficients(coefficient_series(logreg, X_train.columns), X_train, y_train,
                                               X_test, y_test)
    assert_not_yet(feedback, "wrong labels", "feature_names_in_")


def test_coefficients_as_a_bare_array_or_of_the_wrong_columns_fail(split, logreg):
    X_train, _, y_train, _ = split
    assert_not_yet(check_standardised_coefficients(logreg[-1].coef_[0], X_train, y_train), "pandas Series",
                   "ndarray")
    partial = coefficient_series(logreg).drop("age")
    assert_not_yet(check_standardised_coefficients(partial, X_train, y_train), "missing: ['age']")


# ---- Exercise 2: a shallow tree ---------------------------------------------------------------------------------
def test_tree_passes_on_the_solution(split, tree):
    X_train, X_test = split[:2]
    feedback = check_shallow_tree(tree, export_text(tree, feature_names=list(X_train.columns)), X_train, X_test)
    assert feedback and "days_in_collections" in feedback.message


def test_tree_stub_and_unfitted_tree_fail(split, tree):
    X_train = split[0]
    assert_not_yet(check_shallow_tree(..., ..., X_train), "still the stub")
    assert_not_yet(check_shallow_tree(DecisionTreeClassifier(max_depth=3), ..., X_train), "not been fitted")
    assert_not_yet(check_shallow_tree(tree, ..., X_train), "`rules` is still the stub")


def test_deep_tree_test_fitted_tree_and_unnamed_or_foreign_rules_fail(split, tree):
    X_train, X_test, y_train, y_test = split
    names = list(X_train.columns)
    deep = DecisionTreeClassifier(random_state=0).fit(X_train, y_train)
    assert_not_yet(check_shallow_tree(deep, export_text(deep), X_train, X_test), "levels deep", "max_depth")
    on_test = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_test, y_test)
    assert_not_yet(check_shallow_tree(on_test, export_text(on_test, feature_names=names), X_train, X_test),
                   "fitted on the test data")
    assert_not_yet(check_shallow_tree(tree, export_text(tree), X_train, X_test), "feature_0")
    other = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X_train, y_train)
    assert_not_yet(check_shallow_tree(tree, export_text(other, feature_names=names), X_train), "does not describe")


# ---- Exercise 3: held-out scores, and ties reported as ties ---------------------------------------------------
def held_out_scores(models, X, y, score=lambda model, X: model.predict_proba(X)[:, 1]):
    rows = {name: {"accuracy": accuracy_score(y, model.predict(X)), "roc_auc": roc_auc_score(y, score(model, X))}
            for name, model in models.items()}
    return pd.DataFrame(rows).T


def test_scores_pass_and_the_tie_at_the_top_is_reported_as_a_tie(split, models):
    X_train, X_test, y_train, y_test = split
    scores = held_out_scores(models, X_test, y_test)
    assert scores["roc_auc"].round(3).to_dict() == {"logistic regression": 0.986, "decision tree (depth 3)": 0.972,
                                                    "random forest": 0.985, "gradient boosting": 0.988}
    feedback = check_held_out_scores(scores, models, X_test, y_test, X_train, y_train)
    assert feedback, feedback
    assert "gradient boosting's (0.988)" in feedback.message and "tie" in feedback.message
    assert "logistic regression (0.986)" in feedback.message and "random forest (0.985)" in feedback.message
    assert "decision tree" not in feedback.message    # 0.972 is well outside one standard error


def test_ties_are_judged_on_the_paired_difference(split, models):
    _, X_test, _, y_test = split
    risk = {name: model.predict_proba(X_test)[:, 1] for name, model in models.items()}
    boosting = risk["gradient boosting"]
    # the same rows score both models, so the difference is far steadier than either AUC (about 0.005 each)
    forest = paired_auc_difference_se(y_test, boosting, risk["random forest"])
    tree = paired_auc_difference_se(y_test, boosting, risk["decision tree (depth 3)"])
    assert 0.001 < forest < 0.003 and tree > 2 * forest
    assert paired_auc_difference_se(y_test, boosting, boosting) == 0.0
    assert paired_auc_difference_se(y_test, boosting, risk["random forest"]) == forest   # seeded


def test_a_clear_winner_is_named_alone(split, models):
    X_train, X_test, y_train, y_test = split
    two = {name: models[name] for name in ("decision tree (depth 3)", "gradient boosting")}
    feedback = check_held_out_scores(held_out_scores(two, X_test, y_test), two, X_test, y_test)
    assert feedback and "best held-out ROC AUC: gradient boosting" in feedback.message


def test_scores_stub_fails(split, models):
    X_train, X_test, y_train, y_test = split
    assert_not_yet(check_held_out_scores(None, models, X_test, y_test, X_train, y_train), "stub")


@pytest.mark.parametrize("score, says", [
    (lambda model, X: model.predict(X), ("predicted labels (0/1)", "predict_proba")),
    (lambda model, X: model.predict_proba(X)[:, 0], ("1 minus", "column 0")),
])
def test_auc_from_labels_or_the_wrong_class_is_caught(split, models, score, says):
    X_train, X_test, y_train, y_test = split
    scores = held_out_scores(models, X_test, y_test, score)
    assert_not_yet(check_held_out_scores(scores, models, X_test, y_test, X_train, y_train), *says)


def test_training_scores_transposed_tables_and_dicts_are_caught(split, models):
    X_train, X_test, y_train, y_test = split
    assert_not_yet(check_held_out_scores(held_out_scores(models, X_train, y_train), models, X_test, y_test,
                                         X_train, y_train), "training data")
    scores = held_out_scores(models, X_test, y_test)
    assert_not_yet(check_held_out_scores(scores.T, models, X_test, y_test), "columns 'accuracy' and 'roc_auc'",
                   "transpose")
    assert_not_yet(check_held_out_scores(scores.T.to_dict(), models, X_test, y_test), "DataFrame, not dict")


# ---- Exercise 4: the leak --------------------------------------------------------------------------------------
def single_auc(X, y):
    return pd.Series({f: roc_auc_score(y, X[f]) for f in X.columns})


def test_leak_passes_on_the_solution(split):
    _, X_test, _, y_test = split
    auc = single_auc(X_test, y_test)
    feedback = check_leak(auc.idxmax(), auc, X_test, y_test)
    assert feedback and "days_in_collections" in feedback.message and "0.942" in feedback.message
    flipped = auc.where(auc >= 0.5, 1 - auc)  # flipping protective features is fine too
    assert check_leak("days_in_collections", flipped, X_test, y_test)


def test_leak_stub_and_wrong_suspects_fail(split):
    _, X_test, _, y_test = split
    auc = single_auc(X_test, y_test)
    assert_not_yet(check_leak(..., ..., X_test, y_test), "still the stub")
    assert_not_yet(check_leak(..., auc, X_test, y_test), "`suspect` is still the stub")
    assert_not_yet(check_leak("debt_to_income", auc, X_test, y_test), "genuine risk factor", "data dictionary")
    assert_not_yet(check_leak(auc.max(), auc, X_test, y_test), "the feature's name", "not the value")
    assert_not_yet(check_leak("days in collections", auc, X_test, y_test), "not a column of X_test", "underscores")


def test_leak_scores_on_training_data_are_named_as_such(split):
    X_train, X_test, y_train, y_test = split
    feedback = check_leak("days_in_collections", single_auc(X_train, y_train), X_test, y_test, X_train, y_train)
    assert_not_yet(feedback, "training data", "held-out rows")


# ---- Section 7: the numbers the text states ---------------------------------------------------------------------
def test_the_tree_is_29_points_above_the_majority_class(clean):
    clean_models, _, X_test, y_test = clean
    baseline = accuracy_score(y_test, clean_models["majority class (dummy)"].predict(X_test))
    tree = accuracy_score(y_test, clean_models["decision tree (depth 3)"].predict(X_test))
    assert baseline == pytest.approx(0.709, abs=5e-4) == pytest.approx(1 - y_test.mean(), abs=5e-4)
    assert tree == pytest.approx(0.738, abs=5e-4)
    assert roc_auc_score(y_test, clean_models["majority class (dummy)"].predict_proba(X_test)[:, 1]) == 0.5


def test_cross_validated_means_and_spreads(clean):
    _, cv, _, _ = clean
    auc = {name: (r["test_roc_auc"].mean(), r["test_roc_auc"].std()) for name, r in cv.items()}
    expected = {"majority class (dummy)": (0.500, 0.000), "logistic regression": (0.805, 0.015),
                "logistic regression + splines": (0.854, 0.015), "decision tree (depth 3)": (0.739, 0.016),
                "random forest": (0.849, 0.013), "gradient boosting": (0.869, 0.013)}
    for name, (mean, sd) in expected.items():
        assert auc[name][0] == pytest.approx(mean, abs=1e-3), name
        assert auc[name][1] == pytest.approx(sd, abs=1e-3), name


def test_the_splines_beat_the_straight_line_in_every_fold_and_tie_the_forest(clean):
    clean_models, cv, X_test, y_test = clean
    bend = cv["logistic regression + splines"]["test_roc_auc"]
    straight, forest = cv["logistic regression"]["test_roc_auc"], cv["random forest"]["test_roc_auc"]
    assert (bend - straight).mean() == pytest.approx(0.049, abs=1e-3) and (bend > straight).all()
    assert abs(bend.mean() - forest.mean()) < min(bend.std(), forest.std())          # a tie
    boosting = cv["gradient boosting"]["test_roc_auc"]
    assert (boosting - bend).mean() == pytest.approx(0.014, abs=1e-3) and (boosting > bend).all()
    # ... while on the one test split the splines model edges out boosting
    held_out = {name: roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) for name, model in
                clean_models.items()}
    assert round(held_out["logistic regression + splines"], 3) == 0.858
    assert round(held_out["gradient boosting"], 3) == 0.857


# ---- Exercise 5: the prediction ---------------------------------------------------------------------------------
def test_baseline_prediction_passes_on_b_and_explains_each_wrong_bin(clean):
    clean_models, _, X_test, y_test = clean
    tree, dummy = clean_models["decision tree (depth 3)"], clean_models["majority class (dummy)"]
    feedback = check_baseline_prediction("b", tree, dummy, X_test, y_test)
    assert feedback and "0.738" in feedback.message and "0.709" in feedback.message and "2.9 points" in feedback.message
    assert_not_yet(check_baseline_prediction(..., tree, dummy, X_test, y_test), "still the stub")
    for letter, says in [("a", "does beat"), ("c", "little room"), ("d", "more than even the black boxes")]:
        assert_not_yet(check_baseline_prediction(letter, tree, dummy, X_test, y_test), "2.9 points", says)
    assert_not_yet(check_baseline_prediction("e", tree, dummy, X_test, y_test), "not one of the options")


# ---- Exercise 6: reading the cross-validation ------------------------------------------------------------------
def test_cv_reading_passes_on_c_and_explains_each_wrong_reading(clean):
    _, cv, _, _ = clean
    feedback = check_cv_reading("c", cv)
    assert feedback and "leads by 0.019" in feedback.message and "wins 5 of 5 folds" in feedback.message
    for letter, says in [("a", "Size is not noise"), ("b", "needs the noise"), ("d", "Overlapping ranges")]:
        assert_not_yet(check_cv_reading(letter, cv), says)
    assert_not_yet(check_cv_reading(..., cv), "still the stub")


def test_cv_reading_calls_a_difference_inside_the_spread_a_tie():
    noisy = {"random forest": {"test_roc_auc": np.array([0.84, 0.86, 0.83, 0.87, 0.85])},
             "gradient boosting": {"test_roc_auc": np.array([0.85, 0.85, 0.84, 0.86, 0.855])}}
    assert check_cv_reading("d", noisy)
    assert_not_yet(check_cv_reading("c", noisy), "not quite")


# ---- Exercise 7: which weight cannot be read --------------------------------------------------------------------
def test_unreadable_weights_pass_on_age_and_explain_the_others(clean):
    clean_models = clean[0]
    straight = coefficient_series(clean_models["logistic regression"])
    assert straight["age"] < 0 and straight["income"] < 0    # the straight line says: older is safer
    assert straight["newsletter_opt_in"] == pytest.approx(0.14, abs=0.01)   # pure noise, the text says
    feedback = check_unreadable_weights("b")
    assert feedback and "U shape" in feedback.message
    for letter, says in [("a", "close to its straight line"), ("c", "direction right"), ("d", "rises steadily")]:
        assert_not_yet(check_unreadable_weights(letter), says)
    assert_not_yet(check_unreadable_weights(...), "still the stub")


def test_the_spline_curve_of_age_is_a_u(clean):
    clean_models, _, X_test, _ = clean
    splines = clean_models["logistic regression + splines"]
    rows = pd.DataFrame([X_test.median()] * 3).assign(age=[20, 44, 70])
    young, middle, old = splines.decision_function(rows)
    assert young - middle > 1.5 and old - middle > 1.5


# ---- Issue 10's crash: exercises 1 and 2 skipped, exercise 3 solved -------------------------------------------
def test_skipping_exercises_1_and_2_then_solving_3_runs_to_the_end():
    import asyncio

    import labruns

    notebook = labruns.solution("01")
    cells = labruns.exercise_cells(notebook, "01")
    sources = labruns.code_sources(notebook)
    for name in ("standardised-coefficients", "shallow-tree"):
        sources[labruns.code_index(notebook, cells[name])] = [labruns.stub_of(notebook.cells[cells[name]].source)]
    run = asyncio.run(labruns.execute("01", "skip 1 and 2", sources))
    assert run.crash is None and labruns.errors(run.cells) == []
    scores = labruns.feedback_texts(run.cells[labruns.code_index(notebook, cells["held-out-scores"])], "01",
                                    "Accuracy and ROC AUC on held-out data")
    assert scores and scores[-1].startswith("[PASSED]") and "random forest (0.985)" in scores[-1]
    assert "Finish Exercise 1 to see the coefficients." in "".join(
        output.get("text", "") for cell in run.cells for output in cell.get("outputs", []))


# ---- the notebook's options are the checks' options ------------------------------------------------------------
def test_every_choice_in_the_notebook_is_the_checks_option():
    import re
    from pathlib import Path

    import nbformat

    from glassbox.checks.lab01 import BASELINE_OPTIONS, CV_OPTIONS, WEIGHT_OPTIONS

    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "solutions" / "01-models-and-tradeoffs.ipynb",
                             as_version=4)
    shown = [dict(re.findall(r"^- `'([a-z])'` (.+)$", cell.source, flags=re.MULTILINE))
             for cell in notebook.cells if cell.cell_type == "markdown"]
    shown = [{letter: text.replace("`", "").strip() for letter, text in options.items()} for options in shown if options]
    expected = [{letter: text.replace("`", "") for letter, text in options.items()}
                for options in (BASELINE_OPTIONS, CV_OPTIONS, WEIGHT_OPTIONS)]
    assert shown == expected


# ---- hints and feedback on the wrong suspects ------------------------------------------------------------------
def test_the_coefficient_hints_never_paste_the_answer():
    hints = " ".join(check_standardised_coefficients.hints)
    assert "coef_[0]" not in hints and "feature_names_in_" not in hints


@pytest.mark.parametrize("suspect, says", [
    ("age", "genuine risk factor"),
    ("gender", "the sensitive attribute"),
    ("newsletter_opt_in", "no real effect"),
    ("revolving_balance", "no real effect"),
])
def test_each_wrong_suspect_is_named_by_what_it_really_is(split, suspect, says):
    _, X_test, _, y_test = split
    feedback = check_leak(suspect, single_auc(X_test, y_test), X_test, y_test)
    assert_not_yet(feedback, says, "not near-perfect")
    if says != "genuine risk factor":
        assert "genuine risk factor" not in feedback.message


def test_cv_reading_judges_the_lead_paired_fold_by_fold():
    forest = np.array([0.83, 0.85, 0.87, 0.84, 0.86])
    # a lead smaller than either model's spread, but the same in every fold: beyond noise
    steady = {"random forest": {"test_roc_auc": forest},
              "gradient boosting": {"test_roc_auc": forest + np.array([0.010, 0.012, 0.009, 0.011, 0.010])}}
    assert check_cv_reading("c", steady)
    assert_not_yet(check_cv_reading("d", steady), "Overlapping ranges")
    # a lead larger than either model's spread, yet every fold agrees only by luck of the sign
    erratic = {"random forest": {"test_roc_auc": np.array([0.850, 0.851, 0.852, 0.849, 0.850])},
               "gradient boosting": {"test_roc_auc": np.array([0.851, 0.853, 0.900, 0.850, 0.852])}}
    assert check_cv_reading("d", erratic)
