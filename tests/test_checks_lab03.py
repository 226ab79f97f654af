"""Lab 03's self-checks pass on the solution's values and explain the stub and each common mistake."""

from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import shap
from lime.lime_tabular import LimeTabularExplainer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from glassbox.checks.lab03 import (check_additivity, check_group_attributions, check_leak_removed,
                                   check_lime_explanation, check_waterfall_input)
from glassbox.data import load_credit, train_test

matplotlib.use("Agg")

PARAMS = dict(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, early_stopping=False, random_state=0)
ROW = 3


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))


@pytest.fixture(scope="module")
def lab():
    """The lab's state up to the exercises: data, the leaky model, its SHAP values, a prediction function."""
    data = load_credit(n_samples=4000, seed=0)
    X_train, X_test, y_train, y_test = train_test(data, test_size=0.25, seed=0)
    features = data.feature_names
    model = HistGradientBoostingClassifier(**PARAMS).fit(X_train, y_train)

    def predict_proba(rows):
        return model.predict_proba(pd.DataFrame(rows, columns=features))

    return SimpleNamespace(data=data, X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test,
                           features=features, model=model, predict_proba=predict_proba,
                           shap_values=shap.TreeExplainer(model)(X_test))


def _failed(feedback, *phrases):
    text = (feedback.message + " " + (feedback.hint or "")).lower()
    return not feedback and feedback.hint and all(p.lower() in text for p in phrases)


# ---- Exercise 1: seeded LIME --------------------------------------------------------------------------------
def _lime(lab, **kwargs):
    return LimeTabularExplainer(lab.X_train.to_numpy(), feature_names=lab.features,
                                class_names=["repaid", "default"], mode="classification", **kwargs)


def _explain(lab, explainer, **kwargs):
    kwargs = {"num_features": 6, "num_samples": 500, **kwargs}
    return explainer.explain_instance(lab.X_test.to_numpy()[ROW], lab.predict_proba, **kwargs)


def test_lime_solution_passes(lab):
    explainer = _lime(lab, random_state=0)
    feedback = check_lime_explanation(explainer, _explain(lab, explainer), lab.features)
    assert feedback and "seeded" in feedback.message and lab.data.leaky_feature in feedback.message


def test_lime_stub_fails_with_a_hint(lab):
    assert _failed(check_lime_explanation(..., ..., lab.features), "still the stub", "random_state")
    explainer = _lime(lab, random_state=0)
    assert _failed(check_lime_explanation(explainer, ..., lab.features), "`lime_exp` is still the stub")


@pytest.mark.parametrize("seed_kwargs", [{}, {"random_state": None}])
def test_lime_without_a_seed_is_caught(lab, seed_kwargs):
    explainer = _lime(lab, **seed_kwargs)
    feedback = check_lime_explanation(explainer, _explain(lab, explainer), lab.features)
    assert _failed(feedback, "without a seed", "random_state=0")


def test_lime_seed_given_as_a_random_state_object_passes(lab):
    explainer = _lime(lab, random_state=np.random.RandomState(7))
    assert check_lime_explanation(explainer, _explain(lab, explainer), lab.features)


def test_lime_mistakes_in_the_explanation_are_named(lab):
    explainer = _lime(lab, random_state=0)
    assert _failed(check_lime_explanation(explainer, _explain(lab, explainer, num_features=2), lab.features),
                   "only 2 feature", "num_features")
    assert _failed(check_lime_explanation(explainer, _explain(lab, explainer, labels=(0,)), lab.features),
                   "not class 1", "labels")
    assert _failed(check_lime_explanation(explainer, "text", lab.features),
                   "not what explain_instance returns")


def test_lime_wrong_explainer_is_named(lab):
    assert _failed(check_lime_explanation({"random_state": 0}, ..., lab.features), "not a lime")
    unnamed = LimeTabularExplainer(lab.X_train.to_numpy(), mode="classification", random_state=0)
    assert _failed(check_lime_explanation(unnamed, _explain(lab, unnamed), lab.features), "feature name")


# ---- Exercise 2: additivity ---------------------------------------------------------------------------------
def _solution_additivity(lab):
    sv = lab.shap_values
    return sv.base_values + sv.values.sum(axis=1), lab.model.decision_function(lab.X_test)


def test_additivity_solution_passes(lab):
    reconstructed, model_output = _solution_additivity(lab)
    feedback = check_additivity(reconstructed, model_output, lab.model, lab.X_test)
    assert feedback and "1000 rows" in feedback.message


def test_additivity_stub_fails_with_a_hint(lab):
    reconstructed, model_output = _solution_additivity(lab)
    assert _failed(check_additivity(..., ..., lab.model, lab.X_test), "`reconstructed` is still the stub")
    assert _failed(check_additivity(reconstructed, ..., lab.model, lab.X_test), "`model_output` is still the stub",
                   "log-odds")


@pytest.mark.parametrize("which", ["both columns", "class 1"])
def test_additivity_against_probabilities_is_explained(lab, which):
    reconstructed, _ = _solution_additivity(lab)
    proba = lab.model.predict_proba(lab.X_test)
    feedback = check_additivity(reconstructed, proba if which == "both columns" else proba[:, 1],
                                lab.model, lab.X_test)
    assert _failed(feedback, "probabilities", "decision_function")


def test_additivity_without_the_base_value_is_explained(lab):
    _, model_output = _solution_additivity(lab)
    feedback = check_additivity(lab.shap_values.values.sum(axis=1), model_output, lab.model, lab.X_test)
    assert _failed(feedback, "base value", "missing")


def test_additivity_summed_over_the_wrong_axis_is_explained(lab):
    sv = lab.shap_values
    _, model_output = _solution_additivity(lab)
    feedback = check_additivity(sv.values.sum(axis=0) + sv.base_values[0], model_output, lab.model, lab.X_test)
    assert _failed(feedback, "one number per feature", "axis=1")


def test_additivity_on_other_rows_fails(lab):
    reconstructed, model_output = _solution_additivity(lab)
    feedback = check_additivity(reconstructed[::-1], model_output, lab.model, lab.X_test)
    assert _failed(feedback, "differs from the model's output")
    feedback = check_additivity(reconstructed, model_output[::-1], lab.model, lab.X_test)
    assert _failed(feedback, "not the model's log-odds", "same rows")


# ---- Exercise 3: the waterfall's input ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def forest_values(lab):
    """A random forest's TreeExplainer output: one column of SHAP values per class (multi-output)."""
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(lab.X_train, lab.y_train)
    return shap.TreeExplainer(forest)(lab.X_test.iloc[:20])


def test_waterfall_solution_passes(lab, forest_values):
    assert check_waterfall_input(lab.shap_values[ROW])
    assert check_waterfall_input(forest_values[ROW, :, 1])  # one row and one class of a multi-output model


def test_waterfall_stub_fails_with_a_hint(lab):
    assert _failed(check_waterfall_input(...), "still the stub", "row")


@pytest.mark.parametrize("rows", [slice(None), slice(0, 2)])
def test_waterfall_on_several_rows_is_caught(lab, rows):
    explanation = lab.shap_values[rows]
    feedback = check_waterfall_input(explanation)
    assert _failed(feedback, f"holds {len(explanation.values)} rows", "shap_values[ROW]")
    with pytest.raises(Exception):  # the mistake the check prevents: shap itself refuses several rows
        shap.plots.waterfall(explanation, show=False)


def test_waterfall_on_a_multi_output_row_is_caught(forest_values):
    feedback = check_waterfall_input(forest_values[ROW])
    assert _failed(feedback, "2 outputs", "shap_values[ROW, :, 1]")
    with pytest.raises(Exception):
        shap.plots.waterfall(forest_values[ROW], show=False)
    assert _failed(check_waterfall_input(forest_values), "20 rows and 2 outputs")


def test_waterfall_on_a_bare_array_is_caught(lab):
    assert _failed(check_waterfall_input(lab.shap_values.values[ROW]), "needs a shap.Explanation")


# ---- Exercise 4: the leak removed ---------------------------------------------------------------------------
def _fit(lab, columns):
    return HistGradientBoostingClassifier(**PARAMS).fit(lab.X_train[columns], lab.y_train)


@pytest.fixture(scope="module")
def clean(lab):
    columns = [f for f in lab.features if f != lab.data.leaky_feature]
    return SimpleNamespace(columns=columns, model=_fit(lab, columns))


def _check_leak(lab, model):
    return check_leak_removed(model, lab.data.leaky_feature, lab.features, lab.X_test, lab.y_test)


def test_leak_solution_passes(lab, clean):
    feedback = _check_leak(lab, clean.model)
    assert feedback and "ROC AUC 0.8" in feedback.message


def test_leak_stub_fails_with_a_hint(lab):
    assert _failed(_check_leak(lab, ...), "still the stub", "X_train[clean_features]")


def test_model_that_still_sees_the_leak_is_caught(lab):
    assert _failed(_check_leak(lab, lab.model), "still sees `days_in_collections`", "clean_features")


def test_dropping_more_than_the_leak_is_caught(lab, clean):
    fewer = [c for c in clean.columns if c != "income"]
    assert _failed(_check_leak(lab, _fit(lab, fewer)), "also lost ['income']")


def test_model_fitted_on_an_array_or_not_at_all_is_caught(lab, clean):
    on_array = HistGradientBoostingClassifier(**PARAMS).fit(lab.X_train[clean.columns].to_numpy(), lab.y_train)
    assert _failed(_check_leak(lab, on_array), "without column names", "DataFrame")
    assert _failed(_check_leak(lab, HistGradientBoostingClassifier()), "not fitted", ".fit(")
    assert _failed(_check_leak(lab, "model"), "not a fitted classifier")


# ---- Exercise 5: attributions by group ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def grouped(lab, clean):
    values = shap.TreeExplainer(clean.model)(lab.X_test[clean.columns]).values
    shap_frame = pd.DataFrame(values, columns=clean.columns, index=lab.X_test.index)
    return SimpleNamespace(frame=shap_frame, groups=lab.X_test[lab.data.sensitive_attribute])


def test_group_solution_passes(grouped):
    f, g = grouped.frame, grouped.groups
    feedback = check_group_attributions(f.groupby(g).mean().T, f.abs().groupby(g).mean().T, f, g)
    assert feedback and "2 groups" in feedback.message
    as_int = g.astype(int)  # group labels 0/1 instead of 0.0/1.0
    assert check_group_attributions(f.groupby(as_int).mean().T, f.abs().groupby(as_int).mean().T, f, as_int)


def test_group_stub_fails_with_a_hint(grouped):
    f, g = grouped.frame, grouped.groups
    assert _failed(check_group_attributions(..., ..., f, g), "`mean_shap_by_group` is still the stub", "groups")
    assert _failed(check_group_attributions(f.groupby(g).mean().T, ..., f, g),
                   "`mean_abs_shap_by_group` is still the stub", "absolute")


def test_absolute_value_after_the_mean_is_caught(grouped):
    f, g = grouped.frame, grouped.groups
    feedback = check_group_attributions(f.groupby(g).mean().T, f.groupby(g).mean().T.abs(), f, g)
    assert _failed(feedback, "|mean shap|", "abs() first")


def test_absolute_values_in_the_signed_table_are_caught(grouped):
    f, g = grouped.frame, grouped.groups
    absolute = f.abs().groupby(g).mean().T
    assert _failed(check_group_attributions(absolute, absolute, f, g), "holds mean |shap|", "no .abs()")


def test_table_turned_round_is_caught(grouped):
    f, g = grouped.frame, grouped.groups
    feedback = check_group_attributions(f.groupby(g).mean(), f.abs().groupby(g).mean().T, f, g)
    assert _failed(feedback, "one row per group", ".T")


def test_groups_of_other_rows_are_caught(lab, grouped):
    f = grouped.frame
    wrong = lab.X_train[lab.data.sensitive_attribute]
    feedback = check_group_attributions(f.groupby(grouped.groups).mean().T, f.abs().groupby(grouped.groups).mean().T,
                                        f, wrong)
    assert _failed(feedback, "3000 entries for 1000 explained rows", "X_test")
