"""Self-checks for Lab 03 – Local explanations: LIME, SHAP, a leak found and removed, a sensitive attribute.

Each check takes what the learner built (an explainer, an explanation, an array, a model, a table) plus the
context it needs, and recomputes the right answer itself; no check trusts a number the learner reports.
Two exercises are about reading, not code: a prediction of how LIME behaves on an unsure row
(:func:`check_lime_prediction`) and what a fairlearn ``MetricFrame`` shows (:func:`check_metric_reading`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glassbox.checks import choose, exercise, expect, expect_answered, fail

ADDITIVITY_TOLERANCE = 1e-6


def _global_numpy_state():
    return np.random.mtrand._rand  # what lime's check_random_state(None) hands out


def _built_on(explainer, X) -> bool:
    """Whether a ``LimeTabularExplainer`` took its statistics from ``X``: its rows, and each column's range or spread."""
    X = np.asarray(X, dtype=float)
    if explainer.scaler.n_samples_seen_ != len(X):
        return False
    discretizer = explainer.discretizer
    if discretizer is not None:
        return all(np.isclose(discretizer.mins[f][0], X[:, f].min())
                   and np.isclose(discretizer.maxs[f][-1], X[:, f].max()) for f in discretizer.to_discretize)
    numeric = [f for f in range(X.shape[1]) if f not in explainer.categorical_features]
    return bool(np.allclose(explainer.scaler.scale_[numeric], X[:, numeric].std(axis=0)))


# ---- Exercise 1: a seeded LIME explanation -----------------------------------------------------------------
@exercise(lab="03", name="lime-seeded", title="A seeded LIME explanation",
          hint=("LIME draws random made-up applicants: an explanation you can reproduce needs a seed, given when "
                "the explainer is built.",
                "`LimeTabularExplainer` takes the training data as a NumPy array, the feature and class names, the "
                "mode and `random_state`; `explain_instance` takes the row as an array, the prediction function, "
                "`num_features` and `num_samples`."))
def check_lime_explanation(lime_explainer, lime_exp, feature_names, row, X_train, min_features: int = 5):
    """``lime_explainer`` must be a seeded ``LimeTabularExplainer`` on ``X_train``; ``lime_exp`` its explanation
    of ``row``, class 1."""
    from lime.explanation import Explanation
    from lime.lime_tabular import LimeTabularExplainer

    expect_answered(lime_explainer, "lime_explainer")
    expect(isinstance(lime_explainer, LimeTabularExplainer),
           f"`lime_explainer` is a {type(lime_explainer).__name__}, not a lime `LimeTabularExplainer`.",
           hint=("The explainer is the object that perturbs rows; the explanation is what it returns.",
                 "Build it with `LimeTabularExplainer(...)` from `lime.lime_tabular`."))
    expect(lime_explainer.random_state is not _global_numpy_state(),
           "LIME was built without a seed: it draws its perturbed samples from numpy's global random state, so "
           "the same row gets a different explanation on every run.",
           hint=("An explanation you show somebody must come out the same when the cell runs again.",
                 "Pass a fixed integer as `random_state` when you build the explainer."))
    expect(list(lime_explainer.feature_names) == list(feature_names),
           f"the explainer knows {len(lime_explainer.feature_names)} feature name(s) "
           f"({list(lime_explainer.feature_names)[:3]}...), the model has {len(feature_names)}.",
           hint=("Without the names, the explanation says `0`, `1`, ... instead of what the features are.",
                 "Pass the model's columns as `feature_names`, in the order of `X_train`."))
    expect(_built_on(lime_explainer, X_train),
           f"the explainer was built on {int(lime_explainer.scaler.n_samples_seen_)} row(s) that are not the "
           f"{len(X_train)} training rows: LIME draws its made-up applicants from the quartiles, means and spreads "
           "of the data it is given.",
           hint=("The made-up neighbours should look like the applicants the model learned from.",
                 "Give `LimeTabularExplainer` the training data, `X_train`, as a NumPy array."))
    expect_answered(lime_exp, "lime_exp")
    if isinstance(lime_exp, list) and lime_exp and isinstance(lime_exp[0], tuple):
        fail("`lime_exp` is a list of (condition, weight) pairs: that is `as_list()` of an explanation, not the "
             "explanation itself.",
             hint=("The cells below call methods of the explanation (`as_list`, `as_html`, `score`).",
                   "Keep what `explain_instance` returns; call `.as_list()` only when you print it."))
    expect(isinstance(lime_exp, Explanation),
           f"`lime_exp` is a {type(lime_exp).__name__}, not what explain_instance returns.",
           hint=("The explanation is the object the explainer returns for one row.",
                 "Keep the return value of `lime_explainer.explain_instance(...)` itself."))
    expect(1 in lime_exp.local_exp,
           f"`lime_exp` explains class(es) {sorted(lime_exp.local_exp)}, not class 1 ('default').",
           hint=("The question is why the model predicts *default*, the second class.",
                 "Leave `labels` at its default, which explains class 1."))
    explained = getattr(getattr(lime_exp, "domain_mapper", None), "feature_values", None)
    if explained is not None:  # lime keeps the explained row, rounded to two decimals, as strings
        wanted = LimeTabularExplainer.convert_and_round(np.asarray(row, dtype=float))
        expect(list(explained) == list(wanted),
               "`lime_exp` explains another applicant: its feature values are not those of `row`, the applicant "
               "at position `ROW` printed above.",
               hint=("The cells below read this explanation as the one of the applicant printed above.",
                     "Give `explain_instance` the values of `row` itself, as an array."))
    chosen = lime_exp.local_exp[1]
    expect(len(chosen) >= min_features,
           f"`lime_exp` shows only {len(chosen)} feature(s): too few to compare with SHAP later.",
           hint=("The explanation keeps as many features as you ask for.",
                 f"Ask `explain_instance` for at least {min_features} features (`num_features`)."))
    top_index, top_weight = max(chosen, key=lambda pair: abs(pair[1]))
    direction = "towards" if top_weight > 0 else "away from"
    return (f"seeded, {len(chosen)} features; the strongest pushes this row {direction} default: "
            f"{feature_names[top_index]}.")


# ---- Exercise 2: a prediction about LIME on an unsure row ----------------------------------------------------
LIME_OPTIONS = {
    "a": "The runs agree as well as on the saturated row: the same top feature, nearly always the same top three, "
         "nearly identical weights.",
    "b": "All runs name the same top feature, but the features below it change places from seed to seed.",
    "c": "The top feature itself changes from seed to seed.",
    "d": "Every seed gives exactly the same weights: a seed only matters when the kernel is narrow.",
}
LIME_WHY = {
    "a": "The saturated row looked that stable only because almost every made-up neighbour gets the same "
         "prediction (about 1.0), so there is little for the random draw to change. Near p = 0.4 the predictions "
         "of the neighbours vary, and so does the fit.",
    "b": "The leak is so strong that every seed puts it first, but the smaller weights are about as large as "
         "their spread from seed to seed, so the second and third places change with the seed.",
    "c": "The leak's weight is about 20 times larger than the spread between seeds: no seed dislodges it.",
    "d": "Each seed draws other made-up neighbours, at any kernel width, so the weights always move a little; "
         "the question is only whether the ranking survives.",
}


@exercise(lab="03", name="lime-prediction", title="Predict: how stable is LIME on an unsure row?",
          hint=("Think about what LIME fits: the model's predictions on random neighbours of the row. Where the "
                "model is sure (p = 1.000), those predictions hardly vary.",
                "Ask separately about the top feature, whose weight is huge, and about the small weights below "
                "it."))
def check_lime_prediction(prediction):
    """A prediction (an option's letter) of what eight seeds do to LIME's ranking on the unsure row."""
    expect_answered(prediction, "prediction")
    return choose(prediction, options=LIME_OPTIONS, correct="b", why=LIME_WHY)


# ---- Exercise 3: additivity ---------------------------------------------------------------------------------
@exercise(lab="03", name="shap-additivity", title="SHAP values add up to the model's output",
          hint=("Every explanation starts at the base value; each feature's SHAP value moves it; where it ends is "
                "the model's own output, on the model's own scale.",
                "The Explanation holds `.base_values` and `.values` (rows x features); a gradient-boosting "
                "classifier's raw output (log-odds) comes from a method other than `predict_proba`."))
def check_additivity(reconstructed, model_output, model, X):
    """``reconstructed`` (base value + row sums of SHAP values) must equal the model's raw output on ``X``."""
    expect_answered(reconstructed, "reconstructed")
    expect_answered(model_output, "model_output")
    reconstructed = np.asarray(reconstructed, dtype=float)
    model_output = np.asarray(model_output, dtype=float)
    raw = np.asarray(model.decision_function(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if model_output.shape == proba.shape or (model_output.shape == raw.shape
                                              and np.allclose(model_output, proba[:, 1])):
        fail("`model_output` holds probabilities, but TreeExplainer explains this model's raw output: the "
             "log-odds, before the sigmoid.",
             hint=("The sigmoid is not additive: SHAP values add up on the scale before it.",
                   "The classifier's `decision_function` gives the log-odds."))
    if model_output.shape == raw.shape and set(np.unique(model_output)) <= {0.0, 1.0}:
        fail("`model_output` holds class labels (0/1), what `predict` returns: SHAP values explain a "
             "continuous score, the log-odds.",
             hint=("A label is the score after a threshold: nothing adds up to it.",
                   "The classifier's `decision_function` gives the log-odds."))
    expect(model_output.shape == raw.shape,
           f"`model_output` has shape {model_output.shape}; the model gives one number per row: {raw.shape}.",
           hint=("One raw output per explained row.", "Call the model on all of `X_test`."))
    expect(np.allclose(model_output, raw, atol=1e-9, rtol=0),
           "`model_output` is not the model's log-odds on these rows.",
           hint=("Compare on the rows you explained, in the same order.",
                 "Call `decision_function` of the model you explained on `X_test`."))
    if reconstructed.shape == (X.shape[1],) != raw.shape:
        fail(f"`reconstructed` has one number per feature ({X.shape[1]}), not one per row: the sum ran down "
             "the rows.",
             hint=("Each row's SHAP values add up across its features.",
                   "Sum `.values` over the features axis (the second one), not over the rows."))
    expect(reconstructed.shape == raw.shape,
           f"`reconstructed` has shape {reconstructed.shape}; expected one number per explained row {raw.shape}.",
           hint=("One reconstructed output per explained row.",
                 "Add each row's base value to the sum of that row's SHAP values."))
    gap = reconstructed - raw
    if np.ptp(gap) < ADDITIVITY_TOLERANCE and abs(gap.mean()) > ADDITIVITY_TOLERANCE:
        fail(f"`reconstructed` is off by the same amount ({gap.mean():+.3f}) on every row: the base value "
             "(the model's average output) is missing.",
             hint=("Every explanation starts from the model's average output, not from zero.",
                   "Add `shap_values.base_values` to the row sums."))
    worst = float(np.abs(gap).max())
    expect(worst <= ADDITIVITY_TOLERANCE,
           f"`reconstructed` differs from the model's output by up to {worst:.3g} (tolerance "
           f"{ADDITIVITY_TOLERANCE:g}).",
           hint=("Explain the same rows you compare with.",
                 "Add the base values to each row's sum of SHAP values over the features."))
    return f"on all {len(raw)} rows, base value + SHAP values = the model's log-odds within {ADDITIVITY_TOLERANCE:g}."


# ---- Exercise 4: the waterfall's input ----------------------------------------------------------------------
@exercise(lab="03", name="waterfall-input", title="One row, one output for the waterfall",
          hint=("A waterfall draws one prediction: one row, one output, with its base value and feature values.",
                "A `shap.Explanation` can be indexed like an array; its first index picks rows."))
def check_waterfall_input(explanation, X, position):
    """``explanation`` must be a ``shap.Explanation`` of a single row, the one at ``position`` of ``X``, and a single
    output."""
    import shap

    expect_answered(explanation, "one_row")
    expect(isinstance(explanation, shap.Explanation),
           f"`one_row` is a {type(explanation).__name__}: the waterfall needs a shap.Explanation, which carries "
           "the base value and the row's feature values along with the SHAP values.",
           hint=("A bare array of SHAP values has lost the base value and the feature values.",
                 "Index the Explanation itself, not its `.values`."))
    values = np.asarray(explanation.values)
    base = np.asarray(explanation.base_values)
    if values.ndim == 1:
        if base.size > 1 and base.size == values.size:
            fail(f"`one_row` holds one feature's SHAP values across {values.size} rows: the second index picks "
                 "a feature, not a row.",
                 hint=("The first index of an Explanation picks rows, the second features.",
                       "Index by the row alone, at position `ROW`."))
        expect(base.ndim == 0 or base.size == 1,
               f"`one_row` has {base.size} base values for a single row of SHAP values.",
               hint=("One row has one base value.", "Index the full Explanation by its row."))
        wanted = np.asarray(X.iloc[position], dtype=float)
        data = explanation.data
        same_row = data is not None and np.shape(data) == wanted.shape and np.allclose(
            np.asarray(data, dtype=float), wanted, equal_nan=True)
        expect(same_row,
               f"`one_row` explains another applicant than the one at position `ROW` ({position}): its feature "
               "values are not that row's.",
               hint=("The text below reads the waterfall of the applicant explained with LIME above.",
                     "Index the Explanation by `ROW`, not by a number of your own."))
        return f"one row, one output: {values.shape[0]} feature contributions on top of a base value."
    if values.ndim == 3:
        fail(f"`one_row` holds {values.shape[0]} rows and {values.shape[2]} outputs (values of shape "
             f"{values.shape}); a waterfall draws one row for one output.",
             hint=("Pick one row and one class.", "For a per-class model the third index picks the class."))
    n_features = len(explanation.feature_names) if explanation.feature_names is not None else None
    outputs_last = base.ndim == 1 and base.size == values.shape[1] and values.shape[0] == n_features
    if outputs_last:
        fail(f"`one_row` is one row with {values.shape[1]} outputs (values of shape {values.shape}, one column per "
             "class); a waterfall draws a single output.",
             hint=("Pick the class as well as the row.",
                   "For a per-class model, index `[row, :, class]` (class 1 = default)."))
    if values.shape[0] == 1:
        fail(f"`one_row` is a slice that holds one row but keeps the row axis (values of shape {values.shape}); "
             "the waterfall needs the row itself, without that axis.",
             hint=("A slice keeps the row axis, even for a single row; a plain integer index drops it.",
                   "Index by the row number `ROW` alone."))
    fail(f"`one_row` holds {values.shape[0]} rows (values of shape {values.shape}); a waterfall explains one "
         "prediction.",
         hint=("A waterfall explains one prediction: pick one row.",
               "Index by the row number `ROW`; for many rows at once, `shap.plots.beeswarm` is the plot."))


# ---- Exercise 5: the leak removed ---------------------------------------------------------------------------
@exercise(lab="03", name="leak-removed", title="Retrain without the leaky feature",
          hint=("A feature recorded after the outcome cannot be known when the decision is made: leave it out, "
                "and only it.",
                "Build the list of features without `data.leaky_feature`, then fit the same estimator with "
                "`params` on those columns of the training DataFrame."))
def check_leak_removed(model_clean, leaky_feature, feature_names, X_train, y_train, X_test, y_test, params):
    """``model_clean`` must be ``HistGradientBoostingClassifier(**params)`` fitted on the training rows, on every
    feature except ``leaky_feature``; the check refits that model itself (``params`` fix its seed) and compares."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    expect_answered(model_clean, "model_clean")
    expect(hasattr(model_clean, "predict_proba"),
           f"`model_clean` is a {type(model_clean).__name__}, not a fitted classifier.",
           hint=("Keep the estimator itself: `.fit` returns it.",
                 "Assign the result of `HistGradientBoostingClassifier(**params).fit(...)`."))
    seen = getattr(model_clean, "feature_names_in_", None)
    if seen is None:
        expect(hasattr(model_clean, "n_features_in_"), "`model_clean` is not fitted yet.",
               hint=("An estimator learns nothing until it is fitted.", "Call `.fit(...)` on the training data."))
        fail("`model_clean` was fitted on an array without column names, so nobody can tell which feature "
             "it left out.",
             hint=("Column names travel with a DataFrame, not with `.to_numpy()`.",
                   "Fit on the DataFrame `X_train[clean_features]`."))
    seen = list(seen)
    expect(leaky_feature not in seen,
           f"`model_clean` still sees `{leaky_feature}`, the feature recorded after the outcome.",
           hint=("The leak has to be missing from the columns the model is fitted on.",
                 "Fit on `X_train[clean_features]`, with the leak left out of `clean_features`."))
    dropped = [f for f in feature_names if f not in seen and f != leaky_feature]
    expect(not dropped,
           f"besides the leak, `model_clean` also lost {dropped}: remove only the leaky feature.",
           hint=("Keep every other feature, so that the change you measure is the leak's alone (what to do "
                 "about the sensitive attribute is section 7's question).",
                 "Filter `features` against `data.leaky_feature` only."))
    try:
        given = np.asarray(model_clean.predict_proba(X_test[seen]), dtype=float)
    except Exception as error:  # noqa: BLE001 - a model that cannot score these columns is the learner's to fix
        fail(f"`model_clean` cannot score the test rows' columns {seen[:3]}...: {type(error).__name__}.",
             hint=("Fit on the DataFrame of the training rows, restricted to `clean_features`.",
                   "Use the same `HistGradientBoostingClassifier(**params)` as the first model."))

    def same_as(rows, labels):
        reference = HistGradientBoostingClassifier(**params).fit(rows[seen], labels)
        return given.shape == (len(X_test), 2) and np.allclose(
            given, reference.predict_proba(X_test[seen]), rtol=0, atol=1e-9)
    if not same_as(X_train, y_train):
        if same_as(X_test, y_test):
            fail("`model_clean` was fitted on the test rows: the score it gets on them is not held-out, it is "
                 "the model repeating what it was shown.",
                 hint=("The test rows are kept for measuring; a model must never see them in training.",
                       "Fit on the training rows and their labels."))
        fail("`model_clean` is not the same model with the same `params`, fitted on the training rows: change "
             "only the columns, so that what changes next is the leak's doing.",
             hint=("Another estimator, other hyper-parameters or other rows change the model as well as the "
                   "features.", "Use `HistGradientBoostingClassifier(**params)` again, on the training rows."))
    auc = roc_auc_score(y_test, given[:, 1])
    expect(auc > 0.7,
           f"`model_clean` reaches a held-out ROC AUC of only {auc:.3f}: it learned little.",
           hint=("Change the data, not the model.", "Use the same `HistGradientBoostingClassifier(**params)`."))
    return f"trained on {len(seen)} features without `{leaky_feature}`; held-out ROC AUC {auc:.3f}."


# ---- Exercise 6: attributions by group ----------------------------------------------------------------------
def _label(value):
    try:
        return float(value)  # group labels may come as 0/1, 0.0/1.0 or "0"/"1"
    except (TypeError, ValueError):
        return str(value)


_TABLE_HINT = ("`DataFrame.groupby` with a Series gives one row per group; the cells below read one row per "
               "feature.", "Which pandas operation splits rows by a Series that shares their index, and how do "
               "you turn its result so that the features run down the side?")


def _by_feature(table, name, feature_names, group_values):
    expect(isinstance(table, (pd.DataFrame, pd.Series)),
           f"`{name}` is a {type(table).__name__}; expected a DataFrame (one row per feature, one column per group).",
           hint=_TABLE_HINT)
    table = pd.DataFrame(table)
    features, groups = set(feature_names), {_label(v) for v in group_values}
    expect(not (features <= set(table.columns) and {_label(v) for v in table.index} == groups),
           f"`{name}` has one row per group and one column per feature: the other way round from what the "
           "cells below read.",
           hint=("The table should have the features down the side.", "Turn it round with `.T`."))
    expect(features <= set(table.index),
           f"`{name}` has rows {list(table.index)[:4]}...: expected one row per feature.", hint=_TABLE_HINT)
    expect({_label(v) for v in table.columns} == groups,
           f"`{name}` has columns {list(table.columns)}, expected one per group {sorted(groups)}: were the rows "
           "grouped by the sensitive attribute of the explained rows?",
           hint=("`groupby` with a Series matches rows by their index: the groups must be those of the explained "
                 "(test) rows.", "Group by `groups`, defined above from `X_test`."))
    table = table.set_axis([_label(v) for v in table.columns], axis=1)
    return table.loc[list(feature_names), sorted(groups)]


@exercise(lab="03", name="group-attributions", title="Attributions of each group",
          hint=("Two descriptive tables: the average push of each feature within each group, and the average "
                "size of that push whatever its direction.",
                "Which pandas operation splits rows by a Series that shares their index? Which order of `abs` "
                "and averaging keeps opposite pushes from cancelling?"))
def check_group_attributions(mean_shap_by_group, mean_abs_shap_by_group, shap_frame, groups):
    """Both tables: one row per feature, one column per group, of mean SHAP and mean |SHAP| on ``shap_frame``."""
    expect_answered(mean_shap_by_group, "mean_shap_by_group")
    expect_answered(mean_abs_shap_by_group, "mean_abs_shap_by_group",
                    hint=("Like `mean_shap_by_group`, but on the absolute SHAP values.",
                          "Drop the sign of every SHAP value before you average within the groups."))
    if isinstance(groups, pd.Series) and set(groups.index) == set(shap_frame.index):
        groups = groups.reindex(shap_frame.index)  # groupby aligns on the index, and so do we
    groups = pd.Series(groups)
    expect(len(groups) == len(shap_frame),
           f"`groups` has {len(groups)} entries for {len(shap_frame)} explained rows.",
           hint=("The groups must belong to the rows you explained.",
                 "Take the sensitive attribute of `X_test`, the explained rows."))
    features = list(shap_frame.columns)
    values = sorted(groups.unique())
    signed = _by_feature(mean_shap_by_group, "mean_shap_by_group", features, values)
    absolute = _by_feature(mean_abs_shap_by_group, "mean_abs_shap_by_group", features, values)
    frame = shap_frame.set_axis([_label(v) for v in groups], axis=0)
    want_signed = frame.groupby(level=0).mean().T.loc[features, sorted(set(frame.index))].to_numpy()
    want_abs = frame.abs().groupby(level=0).mean().T.loc[features, sorted(set(frame.index))].to_numpy()
    if np.allclose(signed.to_numpy(), want_abs, atol=1e-9) and not np.allclose(want_signed, want_abs):
        fail("`mean_shap_by_group` holds mean |SHAP|: the signed mean is what shows a feature's direction.",
             hint=("The first table keeps the sign: does the feature push the group up or down?",
                   "No `.abs()` in `mean_shap_by_group`."))
    expect(np.allclose(signed.to_numpy(), want_signed, atol=1e-9),
           "`mean_shap_by_group` does not match the mean SHAP value of each feature in each group.",
           hint=("Average the SHAP values of the explained rows within each group.",
                 "Split the explained rows by `groups` and average each feature within each part."))
    if np.allclose(absolute.to_numpy(), np.abs(want_signed), atol=1e-9) and not np.allclose(want_abs,
                                                                                           np.abs(want_signed)):
        fail("`mean_abs_shap_by_group` is |mean SHAP|: the absolute value was taken after averaging, so "
             "pushes up and down cancel out.",
             hint=("A feature that pushes half the group up and half down has a mean near zero, yet the model "
                   "uses it a lot.", "Take `.abs()` first, then the group mean."))
    expect(np.allclose(absolute.to_numpy(), want_abs, atol=1e-9),
           "`mean_abs_shap_by_group` does not match the mean |SHAP| of each feature in each group.",
           hint=("Average the sizes of the SHAP values within each group.",
                 "Which order of dropping the sign and averaging keeps opposite pushes from cancelling?"))
    return f"mean SHAP and mean |SHAP| for {len(features)} features in {len(values)} groups."


# ---- Exercise 7: outcome-based group metrics ------------------------------------------------------------------
def _rates(y_true, y_pred) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    positives, negatives = y_true == 1, y_true == 0
    return {
        "selection rate": float(y_pred.mean()),
        "true positive rate": float(y_pred[positives].mean()) if positives.any() else np.nan,
        "false positive rate": float(y_pred[negatives].mean()) if negatives.any() else np.nan,
        "false negative rate": float(1 - y_pred[positives].mean()) if positives.any() else np.nan,
        "true negative rate": float(1 - y_pred[negatives].mean()) if negatives.any() else np.nan,
        "observed default rate": float(y_true.mean()),
        "precision": float(y_true[y_pred == 1].mean()) if (y_pred == 1).any() else np.nan,
    }


def _per_group(y_true, y_pred, groups) -> pd.DataFrame:
    y_true, y_pred, groups = (pd.Series(np.asarray(v)) for v in (y_true, y_pred, groups))
    return pd.DataFrame({_label(g): _rates(y_true[groups == g], y_pred[groups == g])
                         for g in sorted(groups.unique())})


WANTED_RATES = ("selection rate", "true positive rate", "false positive rate")
_MIXUPS = {
    "false negative rate": "the false negative rate (defaulters missed), not the false positive rate",
    "true negative rate": "the true negative rate (good payers let through), not the false positive rate",
    "observed default rate": "the observed default rate: `y_true` and `y_pred` are swapped",
    "precision": "the precision: `y_true` and `y_pred` are swapped",
}


@exercise(lab="03", name="metric-frame", title="Outcome rates by group with fairlearn's MetricFrame",
          hint=("Fairness is about what the decisions do to each group: compare rates computed from the true "
                "labels and the model's decisions, group by group.",
                "`MetricFrame(metrics=..., y_true=..., y_pred=..., sensitive_features=...)` takes a dict of "
                "metric functions from `fairlearn.metrics`; its `.difference()` gives the gap between groups."))
def check_metric_frame(metric_frame, gaps, y_true, y_pred, groups):
    """``metric_frame``: selection rate, TPR and FPR of ``y_pred`` by ``groups``; ``gaps`` its ``.difference()``."""
    from fairlearn.metrics import MetricFrame

    expect_answered(metric_frame, "metric_frame")
    expect(isinstance(metric_frame, MetricFrame),
           f"`metric_frame` is a {type(metric_frame).__name__}, not a fairlearn `MetricFrame`.",
           hint=("The MetricFrame computes every metric overall and per group in one object.",
                 "Build it with `MetricFrame(...)` from `fairlearn.metrics`."))
    by_group = metric_frame.by_group
    if isinstance(by_group, pd.Series):
        fail("`metric_frame` holds a single metric; the exercise compares three: selection rate, TPR and FPR.",
             hint=("Pass several metrics at once, each under a name of your choice.",
                   "`metrics=` takes a dict from a name to a metric function."))
    expect(by_group.index.nlevels == 1,
           f"`metric_frame` has {by_group.index.nlevels} levels of groups: pass only the sensitive attribute.",
           hint=("One sensitive feature, two groups.", "Pass `groups` (the `gender` of the test rows)."))
    truth = _per_group(y_true, y_pred, groups)
    levels = [_label(v) for v in by_group.index]
    expect(sorted(levels) == list(truth.columns),
           f"`metric_frame` has the groups {levels}; the test rows' `gender` has {list(truth.columns)}.",
           hint=("Group by the sensitive attribute of the rows you evaluate.",
                 "Pass `sensitive_features=groups`."))
    table = by_group.set_axis(levels, axis=0).T.astype(float)
    wrong_predictions = ("Compare the model's decisions with the truth: the true labels first, then the "
                         "decisions.", "Pass `y_true=y_test` and `y_pred=y_pred` (the clean model's decisions).")

    def found(name):
        want = truth.loc[name].to_numpy()
        return [column for column in table.index if np.allclose(table.loc[column, truth.columns].to_numpy(), want,
                                                                 atol=1e-9, equal_nan=True)]
    missing = [name for name in WANTED_RATES if not found(name)]
    if missing:
        for wrong, meaning in _MIXUPS.items():
            hits = found(wrong)
            if hits:
                fail(f"`metric_frame`'s `{hits[0]}` is {meaning}.",
                     hint=wrong_predictions if "swapped" in meaning else (
                         "A false positive is a good payer flagged as a likely defaulter: the harm of a refusal "
                         "nobody deserved.", "`fairlearn.metrics` has a function for each of the rates; check "
                         "the name of the one you passed."))
        fail(f"`metric_frame` does not hold the {', '.join(missing)} of `y_pred` by group: were these the clean "
             "model's decisions, compared with `y_test`?",
             hint=wrong_predictions)
    expect_answered(gaps, "gaps", hint=("The gap between the groups is one number per metric.",
                                        "A MetricFrame has a method for it."))
    names = {wanted: found(wanted)[0] for wanted in WANTED_RATES}
    span = table.loc[list(names.values())].max(axis=1) - table.loc[list(names.values())].min(axis=1)
    if isinstance(gaps, pd.DataFrame):
        fail("`gaps` is a table: that is the per-group values (`by_group`), not the gap between the groups.",
             hint=("The gap is one number per metric: how far apart the groups are.",
                   "A MetricFrame's `.difference()` gives it."))
    expect(isinstance(gaps, pd.Series),
           f"`gaps` is a {type(gaps).__name__}; expected a Series, one gap per metric.",
           hint=("One number per metric.", "Keep what `metric_frame.difference()` returns."))
    gaps = gaps.astype(float)
    expect(set(names.values()) <= set(gaps.index),
           f"`gaps` has the entries {list(gaps.index)}; expected one per metric of `metric_frame`.",
           hint=("Take the gaps from the same MetricFrame.", "Call `.difference()` on `metric_frame`."))
    got = gaps[list(names.values())]
    overall = metric_frame.overall
    if not np.allclose(got, span, atol=1e-9):
        low = table.loc[list(names.values())].min(axis=1)
        if np.allclose(got, low / table.loc[list(names.values())].max(axis=1), atol=1e-9):
            fail("`gaps` holds ratios (smallest group over largest), what `.ratio()` gives; the exercise asks for "
                 "differences.",
                 hint=("A difference says how many points apart the groups are.", "Use `.difference()`."))
        if isinstance(overall, pd.Series) and np.allclose(got, overall[list(names.values())], atol=1e-9):
            fail("`gaps` holds the overall rates (`.overall`), not the gaps between the groups.",
                 hint=("The overall rate mixes both groups: it hides the gap.", "Use `.difference()`."))
        fail("`gaps` is not the largest minus the smallest group value of each metric.",
             hint=("The gap is how far apart the groups are.", "Use `.difference()` with its default method."))
    return ("selection rate, TPR and FPR by group, and their gaps: "
            + ", ".join(f"{wanted} {span[column]:.3f}" for wanted, column in names.items()) + ".")


# ---- Exercise 8: reading the MetricFrame -----------------------------------------------------------------------
METRIC_OPTIONS = {
    "a": "The model is fair: `gender` itself gets almost no SHAP attribution, so the groups' rates are equal.",
    "b": "Group 1 is flagged as a likely defaulter more often (about 5 points) and more of its actual "
         "defaulters are caught (TPR about 10 points higher), while its good payers are wrongly flagged about "
         "as often as group 0's (FPR within 2 points).",
    "c": "Group 1's good payers are wrongly flagged far more often than group 0's: the FPR gap is the largest "
         "of the three.",
    "d": "The gaps come from the `gender` column itself: a model trained without it would have none.",
}
METRIC_WHY = {
    "a": "Attributions describe how the score is computed; the rates describe what the decisions do. The table "
         "shows gaps in all three rates although `gender`'s SHAP values are tiny.",
    "b": "That is what the rows of `by_group` and `.difference()` say. Part of the selection-rate gap follows "
         "the groups' different observed default rates (30 % against 28 %); whether the rest is acceptable is a "
         "judgement, and with about 500 applicants per group, gaps of a few points are within noise.",
    "c": "Read `.difference()`: the FPR gap is the smallest of the three (about 1.5 points), the TPR gap the "
         "largest.",
    "d": "The gap mostly runs through `income`, a proxy that differs between the groups: a model that never "
         "sees `gender` keeps most of it (the next cell measures it).",
}


# The clean model's table, as option b reads it (group 1 minus group 0): selection rate 0.197 and 0.249, TPR 0.486
# and 0.589, FPR 0.086 and 0.101. A table outside these bounds is some other model's, for which b does not hold.
CLEAN_GAPS = {"selection rate": (0.03, 0.08), "true positive rate": (0.06, 0.15)}
CLEAN_FPR_GAP = 0.02


def _reading_table(metric_frame, y_true, y_pred, groups):
    """The per-group rates the learner's table shows, or None when it is not Exercise 7's table of them."""
    from fairlearn.metrics import MetricFrame

    if not isinstance(metric_frame, MetricFrame) or isinstance(metric_frame.by_group, pd.Series):
        return None
    by_group = metric_frame.by_group
    if by_group.index.nlevels != 1:
        return None
    truth = _per_group(y_true, y_pred, groups)
    levels = [_label(v) for v in by_group.index]
    if sorted(levels) != list(truth.columns):
        return None
    table = by_group.set_axis(levels, axis=0).T.astype(float)
    for name in WANTED_RATES:
        want = truth.loc[name].to_numpy()
        if not any(np.allclose(table.loc[column, truth.columns].to_numpy(), want, atol=1e-9, equal_nan=True)
                   for column in table.index):
            return None
    return truth


@exercise(lab="03", name="metric-reading", title="Read the MetricFrame",
          hint=("Read each row of `metric_frame.by_group` and the gaps of `.difference()`: which rate differs "
                "most between the groups, and which least?",
                "Selection rate: how often a group is flagged; TPR: defaulters caught; FPR: good payers wrongly "
                "flagged. Small attributions say nothing about these."))
def check_metric_reading(answer, metric_frame, y_true, y_pred, groups):
    """The letter of what the MetricFrame of the clean model shows; ``metric_frame`` is the table read, and
    ``y_true``, ``y_pred`` and ``groups`` what it was computed from: the options describe the clean model's table,
    so another table (the leaky model's, when Exercise 5 is not done) is not judged."""
    expect_answered(answer, "answer")
    truth = _reading_table(metric_frame, y_true, y_pred, groups)
    expect(truth is not None,
           "there is no table to read yet: `metric_frame` is not Exercise 7's table of the decisions `y_pred`.",
           hint=("The options describe the table that Exercise 7's cell prints.",
                 "Finish Exercise 7 until its check passes, then read its table."))
    low, high = truth.columns[0], truth.columns[-1]
    gap = truth[high] - truth[low]
    clean = all(lo < gap[name] < hi for name, (lo, hi) in CLEAN_GAPS.items()) and abs(
        gap["false positive rate"]) < CLEAN_FPR_GAP
    expect(clean,
           "This table is not the clean model's: finish Exercise 5, run the cells after it again, then read it.",
           hint=("Without Exercise 5, section 7 explains and measures the leaky model, and the options describe "
                 "the clean one.", "Once Exercise 5 passes, run every cell after it again, down to Exercise 7's table."))
    return choose(answer, options=METRIC_OPTIONS, correct="b", why=METRIC_WHY)
