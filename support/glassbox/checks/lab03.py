"""Self-checks for Lab 03 – Local explanations: LIME, SHAP, a leak found and removed, attributions by group.

Each check takes what the learner built (an explainer, an explanation, an array, a model, a table) plus the
context it needs, and recomputes the right answer itself; no check trusts a number the learner reports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glassbox.checks import exercise, expect, fail, is_stub

ADDITIVITY_TOLERANCE = 1e-6



def _global_numpy_state():
    return np.random.mtrand._rand  # what lime's check_random_state(None) hands out


# ---- Exercise 1: a seeded LIME explanation -----------------------------------------------------------------
@exercise(lab="03", name="lime-seeded", title="A seeded LIME explanation")
def check_lime_explanation(lime_explainer, lime_exp, feature_names, min_features: int = 5):
    """``lime_explainer`` must be a seeded ``LimeTabularExplainer``; ``lime_exp`` its explanation of class 1."""
    from lime.explanation import Explanation
    from lime.lime_tabular import LimeTabularExplainer

    expect(not is_stub(lime_explainer), "`lime_explainer` is still the stub.",
           hint="Build a LimeTabularExplainer on X_train.to_numpy() with the feature names, the class names, "
                "mode='classification' and a fixed random_state.")
    expect(isinstance(lime_explainer, LimeTabularExplainer),
           f"`lime_explainer` is a {type(lime_explainer).__name__}, not a lime LimeTabularExplainer.",
           hint="from lime.lime_tabular import LimeTabularExplainer")
    expect(lime_explainer.random_state is not _global_numpy_state(),
           "LIME was built without a seed: it draws its perturbed samples from numpy's global random state, so "
           "the same row gets a different explanation on every run.",
           hint="Pass random_state=0 (any fixed integer) to LimeTabularExplainer.")
    expect(list(lime_explainer.feature_names) == list(feature_names),
           f"the explainer knows {len(lime_explainer.feature_names)} feature name(s) "
           f"({list(lime_explainer.feature_names)[:3]}...), the model has {len(feature_names)}.",
           hint="Pass the training data's columns as feature_names=features, in the same order as X_train.")
    expect(not is_stub(lime_exp), "`lime_exp` is still the stub.",
           hint="lime_exp = lime_explainer.explain_instance(row, predict_proba, num_features=6, num_samples=2000)")
    expect(isinstance(lime_exp, Explanation),
           f"`lime_exp` is a {type(lime_exp).__name__}, not what explain_instance returns.",
           hint="Keep the return value of lime_explainer.explain_instance(...) itself.")
    expect(1 in lime_exp.local_exp,
           f"`lime_exp` explains class(es) {sorted(lime_exp.local_exp)}, not class 1 ('default').",
           hint="Leave labels at its default (1,), or pass labels=(1,).")
    chosen = lime_exp.local_exp[1]
    expect(len(chosen) >= min_features,
           f"`lime_exp` shows only {len(chosen)} feature(s): too few to compare with SHAP later.",
           hint=f"Pass num_features={min_features + 1} (or more) to explain_instance.")
    top_index, top_weight = max(chosen, key=lambda pair: abs(pair[1]))
    direction = "towards" if top_weight > 0 else "away from"
    return (f"seeded, {len(chosen)} features; the strongest pushes this row {direction} default: "
            f"{feature_names[top_index]}.")


# ---- Exercise 2: additivity ---------------------------------------------------------------------------------
@exercise(lab="03", name="shap-additivity", title="SHAP values add up to the model's output")
def check_additivity(reconstructed, model_output, model, X):
    """``reconstructed`` (base value + row sums of SHAP values) must equal the model's raw output on ``X``."""
    expect(not is_stub(reconstructed), "`reconstructed` is still the stub.",
           hint="Add each row's base value (shap_values.base_values) to the sum of its SHAP values "
                "(shap_values.values, summed over the features).")
    expect(not is_stub(model_output), "`model_output` is still the stub.",
           hint="TreeExplainer explains the model's raw output, the log-odds: which method of the model returns "
                "them for X_test?")
    reconstructed = np.asarray(reconstructed, dtype=float)
    model_output = np.asarray(model_output, dtype=float)
    raw = np.asarray(model.decision_function(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if model_output.shape == proba.shape or (model_output.shape == raw.shape
                                              and np.allclose(model_output, proba[:, 1])):
        fail("`model_output` holds probabilities, but TreeExplainer explains this model's raw output: the "
             "log-odds, before the sigmoid.",
             hint="Use model.decision_function(X_test) (log-odds); probabilities are not a sum of SHAP values.")
    expect(model_output.shape == raw.shape,
           f"`model_output` has shape {model_output.shape}; the model gives one number per row: {raw.shape}.",
           hint="model_output = model.decision_function(X_test)")
    expect(np.allclose(model_output, raw, atol=1e-9, rtol=0),
           "`model_output` is not the model's log-odds on these rows.",
           hint="Call model.decision_function on the same rows you explained (X_test), in the same order.")
    if reconstructed.shape == (X.shape[1],) != raw.shape:
        fail(f"`reconstructed` has one number per feature ({X.shape[1]}), not one per row: the sum ran down "
             "the rows.",
             hint="Sum over the features, axis=1: shap_values.values.sum(axis=1).")
    expect(reconstructed.shape == raw.shape,
           f"`reconstructed` has shape {reconstructed.shape}; expected one number per explained row {raw.shape}.",
           hint="reconstructed = shap_values.base_values + shap_values.values.sum(axis=1)")
    gap = reconstructed - raw
    if np.ptp(gap) < ADDITIVITY_TOLERANCE and abs(gap.mean()) > ADDITIVITY_TOLERANCE:
        fail(f"`reconstructed` is off by the same amount ({gap.mean():+.3f}) on every row: the base value "
             "(the model's average output) is missing.",
             hint="Add shap_values.base_values to the row sums.")
    worst = float(np.abs(gap).max())
    expect(worst <= ADDITIVITY_TOLERANCE,
           f"`reconstructed` differs from the model's output by up to {worst:.3g} (tolerance "
           f"{ADDITIVITY_TOLERANCE:g}).",
           hint="Explain the same rows you compare with, and add base_values to values.sum(axis=1).")
    return f"on all {len(raw)} rows, base value + SHAP values = the model's log-odds within {ADDITIVITY_TOLERANCE:g}."


# ---- Exercise 3: the waterfall's input ----------------------------------------------------------------------
@exercise(lab="03", name="waterfall-input", title="One row, one output for the waterfall")
def check_waterfall_input(explanation):
    """``explanation`` must be a ``shap.Explanation`` of a single row and a single output."""
    import shap

    expect(not is_stub(explanation), "`one_row` is still the stub.",
           hint="An Explanation can be indexed like an array: pick the row at position ROW of shap_values.")
    expect(isinstance(explanation, shap.Explanation),
           f"`one_row` is a {type(explanation).__name__}: the waterfall needs a shap.Explanation, which carries "
           "the base value and the row's feature values along with the SHAP values.",
           hint="Index the Explanation itself (shap_values[ROW]), not shap_values.values.")
    values = np.asarray(explanation.values)
    base = np.asarray(explanation.base_values)
    if values.ndim == 1:
        expect(base.ndim == 0 or base.size == 1,
               f"`one_row` has {base.size} base values for a single row of SHAP values.",
               hint="Index the full Explanation by row: shap_values[ROW].")
        return f"one row, one output: {values.shape[0]} feature contributions on top of a base value."
    if values.ndim == 3:
        fail(f"`one_row` holds {values.shape[0]} rows and {values.shape[2]} outputs (values of shape "
             f"{values.shape}); a waterfall draws one row for one output.",
             hint="Pick a row and a class: shap_values[ROW, :, 1].")
    n_features = len(explanation.feature_names) if explanation.feature_names is not None else None
    outputs_last = base.ndim == 1 and base.size == values.shape[1] and values.shape[0] == n_features
    if outputs_last:
        fail(f"`one_row` is one row with {values.shape[1]} outputs (values of shape {values.shape}, one column per "
             "class); a waterfall draws a single output.",
             hint="Pick the class as well: shap_values[ROW, :, 1] (class 1 = default).")
    fail(f"`one_row` holds {values.shape[0]} rows (values of shape {values.shape}); a waterfall explains one "
         "prediction.",
         hint="Pick one row: shap_values[ROW]. For many rows at once use shap.plots.beeswarm.")


# ---- Exercise 4: the leak removed ---------------------------------------------------------------------------
@exercise(lab="03", name="leak-removed", title="Retrain without the leaky feature")
def check_leak_removed(model_clean, leaky_feature, feature_names, X_test, y_test):
    """``model_clean`` must be fitted on every feature except ``leaky_feature`` and still learn something."""
    from sklearn.metrics import roc_auc_score

    expect(not is_stub(model_clean), "`model_clean` is still the stub.",
           hint="Fit the same HistGradientBoostingClassifier(**params) on X_train[clean_features].")
    expect(hasattr(model_clean, "predict_proba"),
           f"`model_clean` is a {type(model_clean).__name__}, not a fitted classifier.",
           hint="Keep the fitted estimator: model_clean = HistGradientBoostingClassifier(**params).fit(...).")
    seen = getattr(model_clean, "feature_names_in_", None)
    if seen is None:
        expect(hasattr(model_clean, "n_features_in_"), "`model_clean` is not fitted yet.",
               hint="Call .fit(X_train[clean_features], y_train).")
        fail("`model_clean` was fitted on an array without column names, so nobody can tell which feature "
             "it left out.",
             hint="Fit on the DataFrame X_train[clean_features], not on its .to_numpy().")
    seen = list(seen)
    expect(leaky_feature not in seen,
           f"`model_clean` still sees `{leaky_feature}`, the feature recorded after the outcome.",
           hint="clean_features = [f for f in features if f != data.leaky_feature]")
    dropped = [f for f in feature_names if f not in seen and f != leaky_feature]
    expect(not dropped,
           f"besides the leak, `model_clean` also lost {dropped}: remove only the leaky feature.",
           hint="Keep every other feature, so that the change you measure is the leak's alone.")
    auc = roc_auc_score(y_test, model_clean.predict_proba(X_test[seen])[:, 1])
    expect(auc > 0.7,
           f"`model_clean` reaches a held-out ROC AUC of only {auc:.3f}: it learned little.",
           hint="Use the same model and settings as before (HistGradientBoostingClassifier(**params)).")
    return f"trained on {len(seen)} features without `{leaky_feature}`; held-out ROC AUC {auc:.3f}."


# ---- Exercise 5: attributions by group ----------------------------------------------------------------------
def _label(value):
    try:
        return float(value)  # group labels may come as 0/1, 0.0/1.0 or "0"/"1"
    except (TypeError, ValueError):
        return str(value)


def _by_feature(table, name, feature_names, group_values):
    expect(isinstance(table, (pd.DataFrame, pd.Series)),
           f"`{name}` is a {type(table).__name__}; expected a DataFrame (one row per feature, one column per group).",
           hint="Group a DataFrame of SHAP values by the group column: shap_frame.groupby(groups).mean().T")
    table = pd.DataFrame(table)
    features, groups = set(feature_names), {_label(v) for v in group_values}
    expect(not (features <= set(table.columns) and {_label(v) for v in table.index} == groups),
           f"`{name}` has one row per group and one column per feature: the other way round from what the "
           "cells below read.",
           hint="Turn it round with .T: shap_frame.groupby(groups).mean().T")
    expect(features <= set(table.index),
           f"`{name}` has rows {list(table.index)[:4]}...: expected one row per feature.",
           hint="shap_frame.groupby(groups).mean().T gives one row per feature and one column per group.")
    expect({_label(v) for v in table.columns} == groups,
           f"`{name}` has columns {list(table.columns)}, expected one per group {sorted(groups)}.",
           hint="Group by the sensitive attribute of the explained rows: X_test[data.sensitive_attribute].")
    table = table.set_axis([_label(v) for v in table.columns], axis=1)
    return table.loc[list(feature_names), sorted(groups)]


@exercise(lab="03", name="group-attributions", title="Attributions of each group")
def check_group_attributions(mean_shap_by_group, mean_abs_shap_by_group, shap_frame, groups):
    """Both tables: one row per feature, one column per group, of mean SHAP and mean |SHAP| on ``shap_frame``."""
    expect(not is_stub(mean_shap_by_group), "`mean_shap_by_group` is still the stub.",
           hint="Group shap_frame by `groups`, take the mean, and turn the result round with .T.")
    expect(not is_stub(mean_abs_shap_by_group), "`mean_abs_shap_by_group` is still the stub.",
           hint="Like mean_shap_by_group, but on the absolute SHAP values.")
    if isinstance(groups, pd.Series) and set(groups.index) == set(shap_frame.index):
        groups = groups.reindex(shap_frame.index)  # groupby aligns on the index, and so do we
    groups = pd.Series(groups)
    expect(len(groups) == len(shap_frame),
           f"`groups` has {len(groups)} entries for {len(shap_frame)} explained rows.",
           hint="Take the group of the rows you explained: X_test[data.sensitive_attribute].")
    features = list(shap_frame.columns)
    values = sorted(groups.unique())
    signed = _by_feature(mean_shap_by_group, "mean_shap_by_group", features, values)
    absolute = _by_feature(mean_abs_shap_by_group, "mean_abs_shap_by_group", features, values)
    frame = shap_frame.set_axis([_label(v) for v in groups], axis=0)
    want_signed = frame.groupby(level=0).mean().T.loc[features, sorted(set(frame.index))].to_numpy()
    want_abs = frame.abs().groupby(level=0).mean().T.loc[features, sorted(set(frame.index))].to_numpy()
    if np.allclose(signed.to_numpy(), want_abs, atol=1e-9) and not np.allclose(want_signed, want_abs):
        fail("`mean_shap_by_group` holds mean |SHAP|: the signed mean is what shows a feature's direction.",
             hint="mean_shap_by_group = shap_frame.groupby(groups).mean().T (no .abs())")
    expect(np.allclose(signed.to_numpy(), want_signed, atol=1e-9),
           "`mean_shap_by_group` does not match the mean SHAP value of each feature in each group.",
           hint="Group the SHAP values of the explained rows (shap_frame) by `groups`, then take the mean.")
    if np.allclose(absolute.to_numpy(), np.abs(want_signed), atol=1e-9) and not np.allclose(want_abs,
                                                                                           np.abs(want_signed)):
        fail("`mean_abs_shap_by_group` is |mean SHAP|: the absolute value was taken after averaging, so "
             "pushes up and down cancel out.",
             hint="Take .abs() first, then the group mean: shap_frame.abs().groupby(groups).mean().T")
    expect(np.allclose(absolute.to_numpy(), want_abs, atol=1e-9),
           "`mean_abs_shap_by_group` does not match the mean |SHAP| of each feature in each group.",
           hint="mean_abs_shap_by_group = shap_frame.abs().groupby(groups).mean().T")
    return f"mean SHAP and mean |SHAP| for {len(features)} features in {len(values)} groups."
