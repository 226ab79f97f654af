"""Self-checks for Lab 02 – Global explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glassbox.checks import choose, exercise, expect, expect_answered, fail

MIN_REPEATS = 5
SCORING = "roc_auc"
SHAPE_THRESHOLD = 0.9
# A log-odds partial dependence of age spans about as much as the true effect; a probability one a tenth of it.
PROBABILITY_SLOPE = 0.3
# The learner's curve against the check's own partial dependence on the same grid: same model, rows and method.
SAME_CURVE = 1e-6

PERMUTATION_HINT = (
    "Permutation importance is only honest on rows the model did not train on; shuffles are random, so repeat "
    "them and fix the seed.",
    "`sklearn.inspection.permutation_importance` takes the model, the held-out features and labels, then "
    "`n_repeats`, `random_state` and `scoring`: use the values the instructions give.",
)
NOISE_HINT = (
    "A feature cannot be told from noise when zero lies within two standard deviations of its mean importance: "
    "the shuffles do not agree that it helps.",
    "`result` holds one mean and one spread per feature, in column order: pair each with its name and keep the "
    "names that pass the test.",
)
TWIN_HINT = (
    "Only the proxy should go: refit the same forest on the same training rows minus that one column, then "
    "measure it exactly as in Exercise 1.",
    "`DataFrame.drop(columns=...)` removes a column; the held-out data needs the same columns as the model.",
)
SHAPE_HINT = (
    "Partial dependence sets `age` to each grid value for every held-out applicant and averages the model's "
    "log-odds; the plotting cell above used the grid and the scale you need, the text above it the method.",
    "`partial_dependence` returns a Bunch whose `grid_values` and `average` entries hold one array per feature "
    "you asked for.",
)
RECURSION_HINT = (
    "For a boosting model `partial_dependence` picks a fast method by default: which rows does it average over, "
    "and does it add the model's starting value?",
    "Pass method=\"brute\" to partial_dependence, with the held-out data.",
)

def _permutation(model, X, y, n_repeats, scoring=SCORING):
    from sklearn.inspection import permutation_importance

    return permutation_importance(model, X, y, n_repeats=n_repeats, random_state=0, scoring=scoring).importances


def _validate_permutation(result, model, X_test, y_test, X_train=None, y_train=None, name="result"):
    """Fail unless ``result`` is permutation importance of ``model`` on the held-out data, seeded, repeated."""
    expect_answered(result, name, PERMUTATION_HINT)
    expect(hasattr(result, "importances"),
           f"`{name}` should be what permutation_importance returns (with .importances, .importances_mean, "
           f".importances_std), not a {type(result).__name__}.",
           hint="Keep the whole object permutation_importance returns, not one of its arrays.")
    repeats = np.asarray(result.importances, dtype=float)
    expect(repeats.ndim == 2 and repeats.shape[0] == X_test.shape[1],
           f"`{name}.importances` should have one row per feature of the data ({X_test.shape[1]}), "
           f"it has shape {repeats.shape}.", hint="Pass the held-out data with the model's own columns.")
    n = repeats.shape[1]
    expect(n >= MIN_REPEATS,
           f"only {n} repeat{'s' if n != 1 else ''}: one shuffle is one random draw, so the spread — how much the "
           "importance changes from shuffle to shuffle — cannot be judged.", hint=("Repeat the shuffles, so that their spread can be seen.", "Pass n_repeats=10."))
    on_test = _permutation(model, X_test, y_test, n)
    if np.allclose(repeats, on_test, atol=1e-5):
        return on_test
    on_train = _permutation(model, X_train, y_train, n) if X_train is not None else None
    if on_train is not None and np.allclose(repeats, on_train, atol=1e-5):
        fail(f"`{name}` was computed on the training data. The model has memorised those rows, so shuffling a "
             "feature there measures what the model *learned*, including noise it fitted, not what helps it "
             "predict new applicants.", hint=("Which rows has the model never seen?", "Pass X_test, y_test to permutation_importance."))
    if np.allclose(repeats, _permutation(model, X_test, y_test, n, scoring=None), atol=1e-5):
        fail(f"`{name}` scores with accuracy, the default; this lab compares drops in ROC AUC.",
             hint=("Which score do the instructions name?", "Pass scoring='roc_auc'."))
    mean = repeats.mean(axis=1)
    distance_test = np.abs(mean - on_test.mean(axis=1)).mean()
    if on_train is not None and np.abs(mean - on_train.mean(axis=1)).mean() < distance_test:
        fail(f"`{name}` looks like it was computed on the training data (and without random_state=0).",
             hint=("Which rows has the model never seen? And are the shuffles seeded?",
                   "Pass X_test, y_test and random_state=0 to permutation_importance."))
    noise = on_test.std(axis=1).mean()
    if distance_test < 2 * noise + 1e-3:
        fail(f"`{name}` has the right size but does not reproduce: run it again and the numbers change.",
             hint=("Shuffles are random: fix their seed, so the numbers are the same every run.",
                   "Pass random_state=0 to permutation_importance."))
    fail(f"`{name}` does not match the permutation importance of this model on the held-out data.",
         hint=PERMUTATION_HINT)


@exercise(lab="02", name="permutation-importance", title="Permutation importance on held-out data",
          hint=PERMUTATION_HINT)
def check_permutation_importance(result, model, X_test, y_test, X_train=None, y_train=None):
    """``result``: ``permutation_importance`` of ``model`` on ``X_test, y_test``, seeded, with repeats."""
    _validate_permutation(result, model, X_test, y_test, X_train, y_train)
    repeats = np.asarray(result.importances)
    top = X_test.columns[int(np.argmax(repeats.mean(axis=1)))]
    return f"{repeats.shape[1]} seeded repeats on {len(X_test)} held-out rows; most important: {top}."


@exercise(lab="02", name="noise-like", title="Which features cannot be told from noise?", hint=NOISE_HINT)
def check_noise_like(noise_like, result, feature_names):
    """``noise_like``: the features whose mean importance is within two standard deviations of zero."""
    expect_answered(noise_like, "noise_like")
    if isinstance(noise_like, (np.ndarray, pd.Series)) and np.asarray(noise_like).dtype == bool:
        fail("`noise_like` is a mask of True/False values, one per feature: the test is right, but the exercise "
             "asks for the *names* of the features that pass it.",
             ("Use the mask to pick names out of `X_test.columns`.", NOISE_HINT[1]))
    expect(isinstance(noise_like, (list, tuple, set)) and all(isinstance(f, str) for f in noise_like),
           f"`noise_like` should be a list of feature names (strings), not {_kind(noise_like)}.",
           ("Positions or numbers do not say which feature is meant: collect the column names.", NOISE_HINT[1]))
    names = list(feature_names)
    unknown = [f for f in noise_like if f not in names]
    expect(not unknown, f"{unknown} are not features of the model.",
           hint="Take the names from X_test.columns, in the order of result.importances_mean.")
    mean, std = np.asarray(result.importances_mean), np.asarray(result.importances_std)
    expected = {f for f, m, s in zip(names, mean, std) if m - 2 * s <= 0}
    missed, wrong = sorted(expected - set(noise_like)), sorted(set(noise_like) - expected)
    if missed and not wrong and all(m <= 0 for f, m in zip(names, mean) if f in set(noise_like)):
        fail(f"{missed} should be in `noise_like` too: their mean is above zero, but by less than two standard "
             "deviations. A mean above zero is not yet evidence: the spread of the shuffles decides.",
             ("Take the spread into account: how far from zero must a mean be to stand clear of it?",
              NOISE_HINT[1]))
    if wrong and set(noise_like) >= set(names) - expected:
        fail(f"`noise_like` holds the features that *stand clear* of noise ({len(wrong)} of them): the test is "
             "the wrong way round.", ("Which side of zero should the lower end of the range be on?", NOISE_HINT[1]))
    expect(not missed, f"{missed} should be in `noise_like`: their importance is within two standard deviations "
                       "of zero.", NOISE_HINT)
    expect(not wrong, f"{wrong} should not be in `noise_like`: their importance stands clear of zero.", NOISE_HINT)
    return f"{len(expected)} features cannot be told from noise: {', '.join(sorted(expected))}."


@exercise(lab="02", name="correlated-pair", title="Correlated features share importance", hint=TWIN_HINT)
def check_correlated_pair(result_without, model_without, X_test, y_test, result, pair, X_train=None, y_train=None):
    """``result_without``: held-out permutation importance of a model refitted without ``pair[1]``."""
    keep, proxy = pair
    expect_answered(model_without, "model_without")
    expect(hasattr(model_without, "feature_names_in_"),
           "`model_without` should be a forest fitted on a DataFrame of the training data, not "
           f"{_kind(model_without)}.", TWIN_HINT)
    seen = list(model_without.feature_names_in_)
    expect(keep in seen, f"`model_without` must keep {keep}: drop only its twin, {proxy}.",
           ("The question is what happens to the causal feature when its proxy is gone.", TWIN_HINT[1]))
    expect(proxy not in seen, f"`model_without` still sees {proxy}: refit it without that column.",
           ("The point is to refit *without* the twin.", TWIN_HINT[1]))
    X_without = X_test[seen]
    _validate_permutation(result_without, model_without, X_without, y_test,
                          None if X_train is None else X_train[seen], y_train, name="result_without")
    expect(hasattr(result, "importances_mean"), "`result` from Exercise 1 is needed for the comparison.",
           hint="Finish Exercise 1 first, then run this cell again.")
    shared = float(np.asarray(result.importances_mean)[list(X_test.columns).index(keep)])
    alone = float(np.asarray(result_without.importances_mean)[seen.index(keep)])
    expect(alone > shared, f"{keep} did not gain importance without {proxy} ({shared:.4f} -> {alone:.4f}).",
           hint="Compare the same scoring and repeats as `result`.")
    return f"{keep}: {shared:.4f} while {proxy} was there, {alone:.4f} without it."


@exercise(lab="02", name="recovered-shape", title="Partial dependence recovers the true shape", hint=SHAPE_HINT)
def check_recovered_shape(grid, curve, truth, model=None, X=None, feature="age", threshold=SHAPE_THRESHOLD):
    """``grid``, ``curve``: the one-feature partial dependence of ``feature`` (its grid and average curve).

    With ``model`` and the held-out ``X``, ``curve`` must also be that model's partial dependence averaged over
    the rows of ``X`` (``method="brute"``) in log-odds, on the learner's own grid. For a gradient-boosting model
    scikit-learn's default is ``method="recursion"``: it averages over the training data (the trees' node
    weights) and leaves out the model's constant starting value, so its curve is shifted by that value.
    """
    expect_answered(grid, "grid")
    expect_answered(curve, "curve")
    try:
        grid, curve = np.asarray(grid, dtype=float), np.asarray(curve, dtype=float)
    except (TypeError, ValueError):
        fail("`grid` and `curve` should be arrays of numbers: one entry of the result each, not the whole result.",
             SHAPE_HINT)
    expect(not (grid.ndim == 2 and grid.shape[0] == 1),
           "`grid` holds one array per feature you asked for (here one): take the entry for age, and the same "
           "entry of the average for `curve`.", ("Index the entries of the result.", SHAPE_HINT[1]))
    expect(curve.ndim == 1 or grid.size == curve.size,
           f"`curve` has shape {curve.shape}: that is one curve per row (ICE), not their average.",
           ("Partial dependence is the *average* of the individual curves.", SHAPE_HINT[1]))
    curve = curve.reshape(-1) if curve.size == grid.size else curve
    expect(grid.ndim == 1 and curve.ndim == 1 and curve.size == grid.size,
           f"`grid` has {grid.size} points but `curve` has shape {curve.shape}: take both from the same result.",
           SHAPE_HINT)
    expect(np.all(np.diff(grid) > 0), "`grid` should be increasing: the grid values of the feature.", SHAPE_HINT)
    true = truth.effect(feature, grid)
    slope = float(np.dot(curve - curve.mean(), true) / np.dot(true, true)) if np.dot(true, true) else 0.0
    if curve.min() >= 0 and curve.max() <= 1 and 0 < slope < PROBABILITY_SLOPE:
        fail(f"`curve` is on the probability scale (it stays between 0 and 1, and spans only {slope:.2f} of the "
             "true effect): the model's default response. This lab reads partial dependence in log-odds.",
             ("The scale is chosen by the response method you ask for.", "Pass the `response_method` that the "
              "plotting cell above used."))
    score = truth.shape_agreement(feature, grid, curve)
    expect(score >= threshold,
           f"the recovered curve agrees with the true effect of {feature} by only {score:.2f} "
           f"(need {threshold}).",
           hint=(f"Is it the partial dependence of `{feature}`, of the boosting model, on the held-out data?",
                 SHAPE_HINT[1]))
    if model is not None and X is not None:
        _expect_held_out_log_odds(grid, curve, model, X, feature)
    return f"shape agreement with the true effect of {feature}: {score:.3f} (threshold {threshold})."


def _expect_held_out_log_odds(grid, curve, model, X, feature):
    """Fail unless ``curve`` is ``model``'s log-odds averaged over the rows of ``X`` at each value of ``grid``."""
    from sklearn.inspection import partial_dependence

    def average(method):
        return partial_dependence(model, X, [feature], custom_values={feature: grid}, method=method,
                                  response_method="decision_function")["average"][0]

    held_out = average("brute")
    if np.allclose(curve, held_out, rtol=0, atol=SAME_CURVE):
        return
    try:
        fast = average("recursion")
    except (ValueError, TypeError, NotImplementedError):  # a model without the fast method
        fast = None
    if fast is not None and np.allclose(curve, fast, rtol=0, atol=SAME_CURVE):
        shift = float(np.mean(fast - held_out))
        fail(f"`curve` comes from the fast `method=\"recursion\"`, the default for boosting models: it averages "
             "over the training data and leaves out the model's starting value, so it is shifted by "
             f"{shift:+.2f} log-odds. Average over the held-out rows instead.", RECURSION_HINT)
    fail(f"`curve` is not the partial dependence of {feature} for this model averaged over the held-out rows, "
         "in log-odds, at the values of `grid`.",
         ("Take `grid` and `curve` from one call on the held-out data.", SHAPE_HINT[1]))


def _kind(value) -> str:
    return f"a {type(value).__name__}" + (f" ({value!r})" if isinstance(value, (str, int, float)) else "")


INTERACTION_OPTIONS = {
    "a": "for applicants who started their job recently (few years of employment)",
    "b": "for applicants who have been with their employer for many years",
    "c": "for everyone alike: the contour lines are parallel",
    "d": "for nobody: the loan amount changes nothing",
}
INTERACTION_WHY = {
    "a": "Right: along the bottom of the plot (short employment) the colour climbs from blue to red as the loan "
         "grows; at the top it falls. How much the loan matters depends on employment: an "
         "interaction.",
    "b": "at the top of the plot (long employment) the colour turns *bluer* as the loan grows: there a larger "
         "loan does not raise the predicted risk at all.",
    "c": "parallel straight contour lines would mean the effects simply add up; here they bend, so the "
         "change a larger loan brings differs from row to row of the plot (the next cell puts a number on it).",
    "d": "along the bottom of the plot the colour changes by more than a unit of log-odds from a small loan to "
         "a large one: the loan matters, just not for everyone.",
}
UNRELIABLE_OPTIONS = {
    "a": "`age`, because its curve bends and partial dependence can only draw straight lines",
    "b": "`credit_utilization`, because it moves with `revolving_balance` (r = 0.96), and partial dependence "
         "averages over combinations of the two that no applicant has",
    "c": "`branch_id`, because it has about a thousand distinct values",
    "d": "`loan_amount`, because its ICE curves fan out, so their average means nothing",
}
UNRELIABLE_WHY = {
    "a": "partial dependence drew the U in age, with a shape agreement near 0.98: a grid of values can follow "
         "any shape.",
    "b": "Right: to draw the curve at a utilisation of 0.9, partial dependence keeps every applicant's own "
         "balance, small ones included, and asks the model about applicants who do not exist. Whatever the "
         "model says there is averaged in.",
    "c": "many distinct values bias *impurity* importance; the partial dependence of a noise feature is flat "
         "and honest.",
    "d": "fanning ICE curves mean the average hides differences between applicants (an interaction, which the "
         "two-feature plot shows); the average itself is still taken over real applicants.",
}


@exercise(lab="02", name="read-interaction", title="Read the two-feature partial dependence",
          hint=("Follow one horizontal line of the plot at a time, from a small loan to a large one, and read "
                "the colour bar.", "Compare the change along the bottom row (short employment) with the change "
                "along the top row."))
def check_read_interaction(answer):
    """``answer``: for whom a larger loan raises the predicted risk most (a letter of INTERACTION_OPTIONS)."""
    expect_answered(answer, "answer")
    return choose(answer, INTERACTION_OPTIONS, correct="a", why=INTERACTION_WHY)


@exercise(lab="02", name="unreliable-pd", title="Which partial dependence is unreliable here?",
          hint=("Partial dependence replaces one column for every row and keeps the others as they are. When "
                "does that create rows that could not exist?", "Look at the scatter plot of the correlated pair "
                "and at where the crosses (the combinations partial dependence asks about) fall."))
def check_unreliable_pd(answer):
    """``answer``: which feature's partial dependence is unreliable, and why (a letter of UNRELIABLE_OPTIONS)."""
    expect_answered(answer, "answer")
    return choose(answer, UNRELIABLE_OPTIONS, correct="b", why=UNRELIABLE_WHY)
