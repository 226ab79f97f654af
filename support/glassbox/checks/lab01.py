"""Self-checks for Lab 01 – Models and the interpretability/accuracy trade-off.

Mistakes the checks recognise by name (each with a way forward):

=========================================  ====================================================================
exercise                                   recognised mistakes
=========================================  ====================================================================
``standardised-coefficients``              no scaler (weights per raw unit); fitted on ``X_test``; the 0/1
                                           columns standardised too; weights labelled in ``X_train``'s column
                                           order although the ColumnTransformer put the 0/1 columns last; a bare
                                           array
``shallow-tree``                           too deep; not fitted; fitted on ``X_test``; rules without feature
                                           names; rules of another tree
``held-out-scores``                        ROC AUC from 0/1 labels; from the probability of *repaid*; scores on
                                           the training data; models as columns; a dict instead of a DataFrame
``find-the-leak``                          single-feature AUC on the training data; a genuine risk factor, the
                                           sensitive attribute or a feature without effect named; a number or a
                                           misspelt name instead of the column's name
``baseline-prediction``                    each wrong bin of the tree's lead over the majority-class baseline
``cv-reading``                             size taken for noise; noise ignored; overlapping ranges read as a tie
``unreadable-weights``                     a straight-looking feature chosen over the bending one
=========================================  ====================================================================

Ties are reported as ties, and judged paired, since every model is scored on the same rows: on one test split,
a model whose ROC AUC is within two standard errors of the best one's ties with it, the standard error being
that of the *difference* of the two, from a seeded bootstrap of the test rows; across folds, two models tie
unless the mean fold-by-fold difference is more than two standard errors (its sd over folds / sqrt(folds))
from zero and one model wins every fold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from glassbox.checks import choose, exercise, expect, expect_answered, fail
from glassbox.data import LEAKY_FEATURE, ground_truth

BINARY = ("gender", "newsletter_opt_in")


def _scaled_logreg(columns, scale_binary: bool = False):
    """The lab's glass box: standardise the continuous columns, pass the 0/1 columns through, then a logistic
    regression (default L2 penalty, C=1.0)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    binary = [c for c in columns if c in BINARY]
    continuous = [c for c in columns if c not in BINARY]
    if scale_binary:
        continuous, binary = list(columns), []
    prepare = ColumnTransformer([("scaled", StandardScaler(), continuous), ("binary", "passthrough", binary)],
                                verbose_feature_names_out=False).set_output(transform="pandas")
    return make_pipeline(prepare, LogisticRegression(max_iter=1000))


def _weights(X, y, scale_binary: bool = False) -> pd.Series:
    model = _scaled_logreg(list(X.columns), scale_binary).fit(X, y)
    return pd.Series(model[-1].coef_[0], index=model[-1].feature_names_in_)


def _same(mine: np.ndarray, truth: np.ndarray) -> bool:
    return bool(np.allclose(mine, truth, rtol=0.03, atol=0.01))


@exercise(lab="01", name="standardised-coefficients", title="Standardised logistic-regression coefficients",
          hint=("A weight can only be ranked against another when both are on a common scale; the 0/1 columns "
                "already are.",
                "Fit the pipeline the exercise describes on the training rows. Which step of it holds the weights, "
                "and which attribute of that same step lists the columns in the order it saw them?"))
def check_standardised_coefficients(coefficients, X_train, y_train, X_test=None, y_test=None):
    """``coefficients``: a Series, one weight per feature, of ``scale_continuous`` + logistic regression."""
    expect_answered(coefficients, "coefficients")
    expect(isinstance(coefficients, pd.Series),
           f"`coefficients` should be a pandas Series labelled by feature, not {type(coefficients).__name__}: "
           "a bare list of numbers does not say which weight belongs to which feature.",
           ("Wrap the weights in `pd.Series(...)` with the feature names as its index.",
            "The last step of the pipeline knows the names it was fitted on: `feature_names_in_`."))
    missing = [c for c in X_train.columns if c not in coefficients.index]
    extra = [str(c) for c in coefficients.index if c not in X_train.columns]
    expect(not missing and not extra,
           f"`coefficients` should have one entry per feature of X_train (missing: {missing}, extra: {extra}).",
           ("Label the weights with the names the model was fitted on, and fit it on all of X_train's columns.",))
    expect(pd.api.types.is_numeric_dtype(coefficients), "`coefficients` should hold numbers (the weights).",
           ("Take the weights from the fitted model's last step: its `coef_`.",))
    truth = _weights(X_train, y_train)
    mine = coefficients[list(truth.index)].to_numpy(dtype=float)
    if _same(mine, truth.to_numpy()):
        top = coefficients.abs().idxmax()
        return (f"the largest weight is {top} ({coefficients[top]:+.2f} per standard deviation). The default "
                "L2 penalty (C=1.0) has shrunk every weight a little towards zero.")
    in_column_order = coefficients.to_numpy(dtype=float)
    if list(coefficients.index) == list(X_train.columns) and _same(in_column_order, truth.to_numpy()):
        fail("these are the right weights with the wrong labels: the ColumnTransformer puts the 0/1 columns "
             "last, so its output is not in X_train's column order, and `gender`'s label sits on another "
             "feature's weight.",
             ("Label each weight with the name of the column the model actually saw in that position.",
              "The step that holds the weights also lists, in `feature_names_in_`, the columns in their order."))
    if X_test is not None and y_test is not None and _same(mine, _weights(X_test, y_test)[truth.index].to_numpy()):
        fail("these weights come from a model fitted on the test data (`X_test`): the test rows must stay unseen "
             "until the models are scored, or the scores say nothing about new applicants.",
             ("Fit on the training rows; keep the test rows for scoring.",))
    everything_scaled = _weights(X_train, y_train, scale_binary=True)[truth.index].to_numpy()
    if _same(mine, everything_scaled):
        fail("the 0/1 columns (`gender`, `newsletter_opt_in`) were standardised too: their weights are then per "
             "standard deviation of a yes/no switch, which means nothing; unscaled, a 0/1 weight is the change "
             "in log-odds from 0 to 1.",
             ("Scale only the continuous columns and pass the 0/1 columns through.",
              "The lab's `scale_continuous(...)` step does exactly that: use it instead of a bare StandardScaler."))
    rescaled = in_column_order * X_train[list(coefficients.index)].std(ddof=0).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agrees_when_rescaled = np.corrcoef(rescaled, truth[list(coefficients.index)])[0, 1] > 0.9
    if agrees_when_rescaled:
        fail("these weights are per raw unit (per year, per thousand, per day), so they cannot be compared with "
             "each other.",
             ("Put a step in front of the model that brings the continuous columns to a common scale.",
              "Use the lab's `scale_continuous(X_train.columns)` as the first step of the pipeline."))
    fail("these are not the weights of the scale-then-logistic-regression pipeline fitted on X_train, y_train.",
         ("Fit on the training data, keep the default regularisation (C=1.0), and read the last step's `coef_`.",))


@exercise(lab="01", name="shallow-tree", title="A shallow decision tree, drawn and written as rules",
          hint=("A tree a person can follow asks few questions in a row: limit its depth, and name its features.",
                "`DecisionTreeClassifier` takes `max_depth` and `random_state`; `export_text` takes "
                "`feature_names`."))
def check_shallow_tree(tree, rules, X_train, X_test=None):
    """``tree``: a fitted DecisionTreeClassifier at most 3 levels deep; ``rules``: its ``export_text``."""
    from sklearn.tree import DecisionTreeClassifier, export_text

    expect_answered(tree, "tree")
    expect(isinstance(tree, DecisionTreeClassifier),
           f"`tree` should be a DecisionTreeClassifier, not {type(tree).__name__}.",
           ("Make one decision tree, limited in depth, and fit it.",))
    expect(hasattr(tree, "tree_"), "`tree` has not been fitted yet: it has no questions to show.",
           ("Call `.fit(...)` on it with the training features and labels.",))
    depth = tree.get_depth()
    expect(depth <= 3, f"your tree is {depth} levels deep, with {tree.get_n_leaves()} leaves: too many rules to "
                       "read at a glance.", ("A person can follow about three questions in a row.",
                                             "Limit the tree with `max_depth`."))
    expect(list(getattr(tree, "feature_names_in_", [])) == list(X_train.columns),
           "the tree was not trained on the columns of X_train.", ("Fit it on X_train (a DataFrame), y_train.",))
    fitted_rows = int(tree.tree_.n_node_samples[0])
    if X_test is not None and fitted_rows == len(X_test) != len(X_train):
        fail(f"the tree was fitted on the test data (its root saw {fitted_rows} rows, the size of X_test): the "
             "test rows must stay unseen until the models are scored.",
             ("Fit on the training rows; keep the test rows for scoring.",))
    expect(fitted_rows == len(X_train),
           f"the tree was fitted on {fitted_rows} rows, not on the {len(X_train)} rows of X_train.",
           ("Fit it on all of X_train, y_train.",))
    expect_answered(rules, "rules", ("Write the fitted tree as text with sklearn's `export_text`.",))
    expect(isinstance(rules, str) and "|---" in rules,
           "`rules` should be the text that sklearn.tree.export_text returns.",
           ("Keep the text `export_text` returns (do not print it instead).",))
    expect("feature_0" not in rules and "feature_1" not in rules,
           "the rules say feature_0, feature_1, ...: nobody can read that.",
           ("Give `export_text` the names of the columns.", "Pass `feature_names=list(X_train.columns)`."))
    expect(rules.strip() == export_text(tree, feature_names=list(X_train.columns)).strip(),
           "`rules` does not describe this `tree`.", ("Call export_text on the tree you just fitted.",))
    root = X_train.columns[tree.tree_.feature[0]]
    return f"{tree.get_n_leaves()} leaves; the first question is about {root}."


def _scores_of(model, X, y) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    return accuracy_score(y, model.predict(X)), roc_auc_score(y, model.predict_proba(X)[:, 1])


def paired_auc_difference_se(y, first, second, resamples: int = 200, seed: int = 0) -> float:
    """The standard error of ROC AUC(first) - ROC AUC(second) when both score the same rows: the sd of the
    difference over ``resamples`` seeded bootstrap draws of the rows (each draw resamples both together)."""
    from sklearn.metrics import roc_auc_score

    y, first, second = np.asarray(y), np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        if 0 < y[rows].sum() < len(rows):
            differences.append(roc_auc_score(y[rows], first[rows]) - roc_auc_score(y[rows], second[rows]))
    return float(np.std(differences, ddof=1))


def best_and_ties(auc: pd.Series, risk: dict, y) -> tuple[str, dict[str, float]]:
    """The model with the highest ROC AUC, and the others that tie with it: within two standard errors of the
    paired difference (or equal to three decimals), each with that standard error. ``risk``: each model's
    predicted probability of default on the rows ``y``."""
    auc = auc.astype(float)
    best = str(auc.idxmax())
    tied = {}
    for name, value in auc.items():
        if name == best:
            continue
        se = paired_auc_difference_se(y, risk[best], risk[name])
        if auc[best] - value <= 2 * se or round(value, 3) == round(float(auc[best]), 3):
            tied[str(name)] = se
    return best, tied


@exercise(lab="01", name="held-out-scores", title="Accuracy and ROC AUC on held-out data",
          hint=("Score each model on rows it has never seen; ROC AUC needs a risk *score*, not a 0/1 decision.",
                "Use `accuracy_score` with `model.predict(X)` and `roc_auc_score` with the probability of default "
                "from `model.predict_proba(X)`; one row per model."))
def check_held_out_scores(scores, models, X_test, y_test, X_train=None, y_train=None):
    """``scores``: a DataFrame, one row per model in ``models``, columns ``accuracy`` and ``roc_auc``."""
    from sklearn.metrics import roc_auc_score

    expect_answered(scores, "scores", ("`held_out_scores` still returns the stub: build one row of scores per "
                                       "model and return them as a DataFrame.",))
    expect(isinstance(scores, pd.DataFrame), f"`scores` should be a DataFrame, not {type(scores).__name__}.",
           ("Collect one dict of scores per model, then turn the collection into a DataFrame.",
            "A dict of dicts becomes a DataFrame with `pd.DataFrame(...)`; check which way round it comes out."))
    expect({"accuracy", "roc_auc"} <= set(scores.columns),
           f"`scores` needs the columns 'accuracy' and 'roc_auc' (it has {list(map(str, scores.columns))[:6]}).",
           ("One row per model, one column per score.", "If the model names are the columns, transpose it."))
    expect(set(scores.index) == set(models),
           f"`scores` should have one row per model {sorted(models)}, it has {sorted(map(str, scores.index))}.",
           ("Loop over `models.items()` and use each name as the row label.",))
    for name, model in models.items():
        accuracy, auc = _scores_of(model, X_test, y_test)
        got_acc, got_auc = float(scores.loc[name, "accuracy"]), float(scores.loc[name, "roc_auc"])
        if abs(got_auc - auc) > 1e-6:
            if abs(got_auc - roc_auc_score(y_test, model.predict(X_test))) < 1e-6:
                fail(f"{name}: the ROC AUC was computed from predicted labels (0/1), which throws away the "
                     "ranking that ROC AUC measures.",
                     ("ROC AUC ranks applicants by a risk score: give it a probability, not a decision.",
                      "`predict_proba` returns one column per class; take the column of default (class 1)."))
            if abs(got_auc - (1 - auc)) < 1e-6:
                fail(f"{name}: the ROC AUC is 1 minus the right one: it was computed from the probability of "
                     "*repaid* (column 0 of `predict_proba`).",
                     ("The score should rise with the risk of default, the class labelled 1.",
                      "Take the second column of `predict_proba`."))
            if X_train is not None and abs(got_auc - _scores_of(model, X_train, y_train)[1]) < 1e-6:
                fail(f"{name}: these are scores on the training data, which the model has seen.",
                     ("Score each model on the `X`, `y` the function is given (the test rows), not on globals.",))
            fail(f"{name}: ROC AUC {got_auc:.3f} does not match the held-out ROC AUC.",
                 ("Score the model's probability of default against `y`.",))
        if abs(got_acc - accuracy) > 1e-6:
            if X_train is not None and abs(got_acc - _scores_of(model, X_train, y_train)[0]) < 1e-6:
                fail(f"{name}: the accuracy is measured on the training data.",
                     ("Score each model on the `X`, `y` the function is given (the test rows), not on globals.",))
            fail(f"{name}: accuracy {got_acc:.3f} does not match the held-out accuracy.",
                 ("Accuracy compares the 0/1 predictions of `model.predict(X)` with `y`.",))
    risk = {name: model.predict_proba(X_test)[:, 1] for name, model in models.items()}
    best, tied = best_and_ties(scores["roc_auc"], risk, y_test)
    top = float(scores.loc[best, "roc_auc"])
    if not tied:
        return (f"best held-out ROC AUC: {best} ({top:.3f}), more than two standard errors of the paired "
                "difference ahead of every other model.")
    others = " and ".join(f"{name} ({float(scores.loc[name, 'roc_auc']):.3f})" for name in tied)
    errors = " and ".join(f"{se:.3f}" for se in tied.values())
    return (f"the highest held-out ROC AUC is {best}'s ({top:.3f}), but {others} "
            f"{'is' if len(tied) == 1 else 'are'} within two standard errors of the difference ({errors}, from a "
            f"bootstrap of the test rows): all models score the same {len(y_test):,} applicants, so the "
            "difference is what to judge, and on this split they tie.")


@exercise(lab="01", name="find-the-leak", title="Spot the feature that leaks the outcome",
          hint=("Use each feature's own values as a risk score on the held-out rows, and look for one that is "
                "almost perfect.",
                "`roc_auc_score(y, values)` accepts any score; collect one value per column in a `pd.Series`, "
                "then name the suspect as a string."))
def check_leak(suspect, single_auc, X_test, y_test, X_train=None, y_train=None):
    """``single_auc``: ROC AUC of each feature on its own (held out); ``suspect``: the leaking feature's name."""
    from sklearn.metrics import roc_auc_score

    expect_answered(single_auc, "single_auc")
    expect(isinstance(single_auc, pd.Series), f"`single_auc` should be a Series, not {type(single_auc).__name__}.",
           ("One value per feature, labelled by the feature's name: a `pd.Series`.",))
    expect(set(single_auc.index) == set(X_test.columns),
           "`single_auc` should have one value per column of X_test.",
           ("Loop over `X_test.columns`.",))
    expect(pd.api.types.is_numeric_dtype(single_auc), "`single_auc` should hold numbers (ROC AUCs).",
           ("Each value is a `roc_auc_score`.",))

    def matches(got, raw):
        return min(abs(got - raw), abs(got - max(raw, 1 - raw))) < 1e-6

    held_out = {f: roc_auc_score(y_test, X_test[f]) for f in X_test.columns}
    wrong = [f for f in X_test.columns if not matches(float(single_auc[f]), held_out[f])]
    if wrong and X_train is not None and y_train is not None and all(
            matches(float(single_auc[f]), roc_auc_score(y_train, X_train[f])) for f in X_test.columns):
        fail("these single-feature ROC AUCs are computed on the training data (`X_train`, `y_train`): score the "
             "features on the held-out rows, like the models.",
             ("Use the test rows, the ones no model has learnt from.",))
    if wrong:
        f = wrong[0]
        raw = held_out[f]
        fail(f"the ROC AUC of {f} on its own should be {raw:.3f} (or {max(raw, 1 - raw):.3f} if you flip "
             f"features that lower the risk), not {float(single_auc[f]):.3f}.",
             ("Use the feature's raw values as the score, against the held-out labels.",))
    expect_answered(suspect, "suspect", ("Name the feature you think leaks, as a string.",))
    expect(isinstance(suspect, str),
           f"`suspect` should be the feature's name (a string), not the {type(suspect).__name__} {suspect!r}.",
           ("`single_auc` is labelled by feature: you want the label of the largest value, not the value.",))
    expect(suspect in X_test.columns, f"{suspect!r} is not a column of X_test.",
           ("Use the feature's name exactly as in `X_test.columns` (with underscores).",))
    if suspect != LEAKY_FEATURE:
        truth = ground_truth()
        alone = f"on its own it reaches {max(held_out[suspect], 1 - held_out[suspect]):.3f}, not near-perfect"
        if suspect == truth.sensitive_attribute:
            said = f"{suspect} is the sensitive attribute: recorded at application time, no sign of leakage"
        elif truth.contribution.get(suspect, 0.0) > 0:
            said = f"{suspect} is a genuine risk factor: it is known when the loan is decided"
        else:
            said = f"{suspect} has no real effect here"
        fail(f"{said}, and {alone}.",
             ("Look for a feature that is nearly perfect on its own, and check in the data dictionary when it "
              "is recorded.",))
    return f"{suspect} alone reaches ROC AUC {roc_auc_score(y_test, X_test[suspect]):.3f} — and is only known " \
           "after a loan has gone bad."


BASELINE_OPTIONS = {
    "a": "the tree is below the baseline",
    "b": "less than 5 points of accuracy above it",
    "c": "5 to 15 points above it",
    "d": "more than 15 points above it",
}


def _bin_of(gap: float) -> str:
    return "a" if gap < 0 else "b" if gap < 0.05 else "c" if gap < 0.15 else "d"


@exercise(lab="01", name="baseline-prediction", title="Predict: the depth-3 tree against the majority class",
          hint=("A model that always says *repaid* is right for every applicant who repaid.",
                "Work out the share of repaid loans; then ask how much a three-question tree can add to it."))
def check_baseline_prediction(prediction, tree, baseline, X_test, y_test):
    """``prediction``: a letter of :data:`BASELINE_OPTIONS`; ``tree``, ``baseline``: fitted on the clean data."""
    from sklearn.metrics import accuracy_score

    expect_answered(prediction, "prediction", ("Commit to one of the letters before you run the next cells.",))
    tree_accuracy = accuracy_score(y_test, tree.predict(X_test))
    base_accuracy = accuracy_score(y_test, baseline.predict(X_test))
    gap = tree_accuracy - base_accuracy
    facts = (f"the tree's held-out accuracy is {tree_accuracy:.3f}, the majority class's {base_accuracy:.3f}: "
             f"{100 * gap:.1f} points apart.")
    why = {
        "a": f"{facts} The tree does beat always saying *repaid*, but barely.",
        "b": f"{facts} Most of the tree's accuracy is free: {base_accuracy:.0%} of applicants repaid, so "
             "accuracy flatters any model on this data; ROC AUC (0.5 for the baseline) shows more.",
        "c": f"{facts} Against a {base_accuracy:.0%} starting point there is little room, and three questions "
             "use little of it.",
        "d": f"{facts} That would take an accuracy above {base_accuracy + 0.15:.0%}: more than even the black "
             "boxes reach.",
    }
    return choose(prediction, BASELINE_OPTIONS, correct=_bin_of(gap), why=why)


CV_OPTIONS = {
    "a": "They tie: a lead of about 0.02 in ROC AUC is too small to matter.",
    "b": "Boosting is better, because its mean is higher; the spread over folds does not change that.",
    "c": "Boosting is better beyond noise: its lead is larger than the spread over folds, and it wins on every "
         "fold.",
    "d": "They tie: the ranges mean ± spread of the two models overlap.",
}


@exercise(lab="01", name="cv-reading", title="Read the cross-validation: forest against boosting",
          hint=("Compare the size of the difference with how much one model's score moves from fold to fold.",
                "Look at the fold-by-fold difference: its mean, its spread, and in how many folds each wins."))
def check_cv_reading(answer, cv, first="random forest", second="gradient boosting"):
    """``answer``: a letter of :data:`CV_OPTIONS`; ``cv``: ``{model name: cross_validate(...) result}``."""
    expect_answered(answer, "answer", ("Read the table and the fold-by-fold differences, then pick a letter.",))
    a, b = np.asarray(cv[first]["test_roc_auc"]), np.asarray(cv[second]["test_roc_auc"])
    difference = b - a
    lead, spread = float(difference.mean()), float(difference.std())  # the sd the lab's table shows
    wins = int(np.sum(difference > 0))
    facts = (f"boosting leads by {lead:.3f} on average, the fold-by-fold difference has a spread of {spread:.3f} "
             f"(each model's own spread is about {float(max(a.std(), b.std())):.3f}), and boosting wins {wins} "
             f"of {len(a)} folds.")
    standard_error = float(difference.std(ddof=1)) / np.sqrt(len(difference))  # of the mean difference
    beyond = abs(lead) > 2 * standard_error and wins in (0, len(difference))
    why = {
        "a": f"Size is not noise: {facts} A small difference can still be real when the noise is smaller.",
        "b": f"The conclusion needs the noise: {facts} A higher mean alone could be luck of the split.",
        "c": f"{facts} The folds are the same rows for both models, so the fold-by-fold difference is the fair "
             "comparison, and it never changes sign.",
        "d": f"{facts} Overlapping ranges of mean ± spread do not make a tie: both models score on the same "
             "folds, and the difference fold by fold is steady.",
    }
    if not beyond:  # the data would then support a tie; say so rather than insist on boosting
        why["d"] = f"{facts} The fold-by-fold difference is within its noise: a tie."
    return choose(answer, CV_OPTIONS, correct="c" if beyond else "d", why=why)


WEIGHT_OPTIONS = {
    "a": "debt_to_income",
    "b": "age",
    "c": "income",
    "d": "late_payments",
}


@exercise(lab="01", name="unreadable-weights", title="Which straight-line weight cannot be read as an effect?",
          hint=("A weight is one number for a whole feature: it misleads when the effect is not a straight line.",
                "Look for a curve that falls and then rises again, while its straight line only goes one way."))
def check_unreadable_weights(answer):
    """``answer``: the letter of :data:`WEIGHT_OPTIONS` whose straight-line weight the spline curve contradicts."""
    expect_answered(answer, "answer", ("Compare the bar chart with the curves, then pick a letter.",))
    why = {
        "a": "`debt_to_income`'s curve is close to its straight line: its weight reads well.",
        "b": "`age`'s risk is high for the young *and* the old: one small negative weight hides a U shape, and "
             "says *older is safer* where, past middle age, the opposite holds.",
        "c": "`income`'s curve bends, but it falls over nearly all of its range, as its negative weight says: "
             "the weight overstates the fall at high incomes, yet gets the direction right.",
        "d": "`late_payments` rises steadily with the risk, as its positive weight says: it reads well.",
    }
    return choose(answer, WEIGHT_OPTIONS, correct="b", why=why)
