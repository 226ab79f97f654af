"""Self-checks for Lab 01 – Models and the interpretability/accuracy trade-off."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from glassbox.checks import exercise, expect, fail, is_stub
from glassbox.data import LEAKY_FEATURE



@exercise(lab="01", name="standardised-coefficients", title="Standardised logistic-regression coefficients")
def check_standardised_coefficients(coefficients, X_train, y_train):
    """``coefficients``: a Series, one weight per feature, of a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    expect(not is_stub(coefficients), "`coefficients` is still the stub.",
           hint="Fit make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)) on X_train, y_train, "
                "then pd.Series(logreg[-1].coef_[0], index=X_train.columns).")
    expect(isinstance(coefficients, pd.Series),
           f"`coefficients` should be a pandas Series, not {type(coefficients).__name__}.",
           hint="Wrap the array: pd.Series(logreg[-1].coef_[0], index=X_train.columns).")
    missing = [c for c in X_train.columns if c not in coefficients.index]
    extra = [c for c in coefficients.index if c not in X_train.columns]
    expect(not missing and not extra,
           f"`coefficients` should have one entry per feature of X_train (missing: {missing}, extra: {extra}).",
           hint="Use index=X_train.columns, and fit on all of X_train's columns.")
    mine = coefficients[list(X_train.columns)].to_numpy(dtype=float)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
    truth = reference[-1].coef_[0]
    if np.allclose(mine, truth, atol=0.02 + 0.05 * np.abs(truth).max()) and np.corrcoef(mine, truth)[0, 1] > 0.99:
        top = coefficients.abs().idxmax()
        return f"the largest weight is {top} ({coefficients[top]:+.2f} per standard deviation)."
    rescaled = mine * X_train.std(ddof=0).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agrees_when_rescaled = np.corrcoef(rescaled, truth)[0, 1] > 0.9
    if agrees_when_rescaled:
        fail("these weights are per raw unit (per year, per thousand, per branch number), so they cannot be "
             "compared with each other.",
             hint="Put a StandardScaler in front of the model: make_pipeline(StandardScaler(), LogisticRegression("
                  "max_iter=1000)), and read the coefficients of its last step.")
    fail("these are not the coefficients of a standardised logistic regression fitted on X_train, y_train.",
         hint="Fit on the training data (not X_test), keep the default regularisation, and take logreg[-1].coef_[0].")


@exercise(lab="01", name="shallow-tree", title="A shallow decision tree, drawn and written as rules")
def check_shallow_tree(tree, rules, X_train):
    """``tree``: a fitted DecisionTreeClassifier at most 3 levels deep; ``rules``: its ``export_text``."""
    from sklearn.tree import DecisionTreeClassifier, export_text

    expect(not is_stub(tree), "`tree` is still the stub.",
           hint="tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_train, y_train)")
    expect(isinstance(tree, DecisionTreeClassifier),
           f"`tree` should be a DecisionTreeClassifier, not {type(tree).__name__}.",
           hint="tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_train, y_train)")
    expect(hasattr(tree, "tree_"), "`tree` has not been fitted yet.", hint="Call .fit(X_train, y_train) on it.")
    depth = tree.get_depth()
    expect(depth <= 3, f"your tree is {depth} levels deep, with {tree.get_n_leaves()} leaves: too many rules to "
                       "read at a glance.", hint="Limit it with max_depth=3.")
    expect(list(getattr(tree, "feature_names_in_", [])) == list(X_train.columns),
           "the tree was not trained on the columns of X_train.", hint="Fit it on X_train (a DataFrame), y_train.")
    expect(not is_stub(rules), "`rules` is still the stub.",
           hint="rules = export_text(tree, feature_names=list(X_train.columns))")
    expect(isinstance(rules, str) and "|---" in rules,
           "`rules` should be the text that sklearn.tree.export_text returns.",
           hint="rules = export_text(tree, feature_names=list(X_train.columns))")
    expect("feature_0" not in rules and "feature_1" not in rules,
           "the rules say feature_0, feature_1, ...: nobody can read that.",
           hint="Pass feature_names=list(X_train.columns) to export_text.")
    expect(rules.strip() == export_text(tree, feature_names=list(X_train.columns)).strip(),
           "`rules` does not describe this `tree`.", hint="Call export_text on the tree you just fitted.")
    root = X_train.columns[tree.tree_.feature[0]]
    return f"{tree.get_n_leaves()} leaves; the first question is about {root}."


def _scores_of(model, X, y) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    return accuracy_score(y, model.predict(X)), roc_auc_score(y, model.predict_proba(X)[:, 1])


@exercise(lab="01", name="held-out-scores", title="Accuracy and ROC AUC on held-out data")
def check_held_out_scores(scores, models, X_test, y_test, X_train=None, y_train=None):
    """``scores``: a DataFrame, one row per model in ``models``, columns ``accuracy`` and ``roc_auc``."""
    from sklearn.metrics import roc_auc_score

    expect(not is_stub(scores), "`scores` is empty: `held_out_scores` still returns the stub.",
           hint="Return pd.DataFrame(rows).T where rows[name] = {'accuracy': ..., 'roc_auc': ...}.")
    expect(isinstance(scores, pd.DataFrame), f"`scores` should be a DataFrame, not {type(scores).__name__}.",
           hint="Collect one dict per model, then return pd.DataFrame(rows).T.")
    expect({"accuracy", "roc_auc"} <= set(scores.columns),
           f"`scores` needs the columns 'accuracy' and 'roc_auc' (it has {list(scores.columns)}).",
           hint="If the model names are the columns, transpose: pd.DataFrame(rows).T.")
    expect(set(scores.index) == set(models),
           f"`scores` should have one row per model {sorted(models)}, it has {sorted(map(str, scores.index))}.",
           hint="Loop over models.items() and use each name as the row label.")
    for name, model in models.items():
        accuracy, auc = _scores_of(model, X_test, y_test)
        got_acc, got_auc = float(scores.loc[name, "accuracy"]), float(scores.loc[name, "roc_auc"])
        if abs(got_auc - auc) > 1e-6:
            from_labels = roc_auc_score(y_test, model.predict(X_test))
            if abs(got_auc - from_labels) < 1e-6:
                fail(f"{name}: the ROC AUC was computed from predicted labels (0/1), which throws away the "
                     "ranking that ROC AUC measures.", hint="Use model.predict_proba(X)[:, 1].")
            if X_train is not None and abs(got_auc - _scores_of(model, X_train, y_train)[1]) < 1e-6:
                fail(f"{name}: these are scores on the training data, which the model has seen.",
                     hint="Score on X_test, y_test.")
            fail(f"{name}: ROC AUC {got_auc:.3f} does not match the held-out ROC AUC.",
                 hint="roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])")
        if abs(got_acc - accuracy) > 1e-6:
            if X_train is not None and abs(got_acc - _scores_of(model, X_train, y_train)[0]) < 1e-6:
                fail(f"{name}: the accuracy is measured on the training data.", hint="Score on X_test, y_test.")
            fail(f"{name}: accuracy {got_acc:.3f} does not match the held-out accuracy.",
                 hint="accuracy_score(y_test, model.predict(X_test))")
    best = scores["roc_auc"].astype(float).idxmax()
    return f"best held-out ROC AUC: {best} ({float(scores.loc[best, 'roc_auc']):.3f})."


@exercise(lab="01", name="find-the-leak", title="Spot the feature that leaks the outcome")
def check_leak(suspect, single_auc, X_test, y_test):
    """``single_auc``: ROC AUC of each feature on its own (held out); ``suspect``: the leaking feature's name."""
    from sklearn.metrics import roc_auc_score

    expect(not is_stub(single_auc), "`single_auc` is still the stub.",
           hint="For each column f: roc_auc_score(y_test, X_test[f]); collect them in a pd.Series.")
    expect(isinstance(single_auc, pd.Series), f"`single_auc` should be a Series, not {type(single_auc).__name__}.",
           hint="pd.Series({f: roc_auc_score(y_test, X_test[f]) for f in X_test.columns})")
    expect(set(single_auc.index) == set(X_test.columns),
           "`single_auc` should have one value per column of X_test.",
           hint="pd.Series({f: roc_auc_score(y_test, X_test[f]) for f in X_test.columns})")
    for f in X_test.columns:
        raw = roc_auc_score(y_test, X_test[f])
        got = float(single_auc[f])
        expect(min(abs(got - raw), abs(got - max(raw, 1 - raw))) < 1e-6,
               f"the ROC AUC of {f} on its own should be {raw:.3f} (or {max(raw, 1 - raw):.3f} if you flip "
               f"features that lower the risk), not {got:.3f}.",
               hint="Use the feature's values as scores: roc_auc_score(y_test, X_test[f]).")
    expect(not is_stub(suspect), "`suspect` is still the stub.",
           hint="Name the feature you think leaks, as a string.")
    expect(suspect in X_test.columns, f"{suspect!r} is not a column of X_test.",
           hint="Use the feature's name exactly as in X_test.columns, for example single_auc.idxmax().")
    expect(suspect == LEAKY_FEATURE,
           f"{suspect} is a genuine risk factor: it is known when the loan is decided.",
           hint="Look for a feature that is nearly perfect on its own, and check in the data dictionary when it "
                "is recorded.")
    return f"{suspect} alone reaches ROC AUC {roc_auc_score(y_test, X_test[suspect]):.3f} — and is only known " \
           "after a loan has gone bad."
