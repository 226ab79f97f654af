"""Self-checks for Lab 02 – Global explanations."""

from __future__ import annotations

import numpy as np

from glassbox.checks import exercise, expect, fail, is_stub

MIN_REPEATS = 5
SCORING = "roc_auc"
SHAPE_THRESHOLD = 0.9



def _permutation(model, X, y, n_repeats, scoring=SCORING):
    from sklearn.inspection import permutation_importance

    return permutation_importance(model, X, y, n_repeats=n_repeats, random_state=0, scoring=scoring).importances


def _validate_permutation(result, model, X_test, y_test, X_train=None, y_train=None, name="result"):
    """Fail unless ``result`` is permutation importance of ``model`` on the held-out data, seeded, repeated."""
    expect(not is_stub(result), f"`{name}` is still the stub.",
           hint="Call sklearn.inspection.permutation_importance(model, X_test, y_test, n_repeats=10, "
                "random_state=0, scoring='roc_auc').")
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
           "importance changes from shuffle to shuffle — cannot be judged.", hint="Pass n_repeats=10.")
    on_test = _permutation(model, X_test, y_test, n)
    if np.allclose(repeats, on_test, atol=1e-5):
        return on_test
    on_train = _permutation(model, X_train, y_train, n) if X_train is not None else None
    if on_train is not None and np.allclose(repeats, on_train, atol=1e-5):
        fail(f"`{name}` was computed on the training data. The model has memorised those rows, so shuffling a "
             "feature there measures what the model *learned*, including noise it fitted, not what helps it "
             "predict new applicants.", hint="Pass X_test, y_test to permutation_importance.")
    if np.allclose(repeats, _permutation(model, X_test, y_test, n, scoring=None), atol=1e-5):
        fail(f"`{name}` scores with accuracy, the default; this lab compares drops in ROC AUC.",
             hint="Pass scoring='roc_auc'.")
    mean = repeats.mean(axis=1)
    distance_test = np.abs(mean - on_test.mean(axis=1)).mean()
    if on_train is not None and np.abs(mean - on_train.mean(axis=1)).mean() < distance_test:
        fail(f"`{name}` looks like it was computed on the training data (and without random_state=0).",
             hint="Pass X_test, y_test and random_state=0 to permutation_importance.")
    noise = on_test.std(axis=1).mean()
    if distance_test < 2 * noise + 1e-3:
        fail(f"`{name}` has the right size but does not reproduce: run it again and the numbers change.",
             hint="Seed the shuffles: pass random_state=0 to permutation_importance.")
    fail(f"`{name}` does not match the permutation importance of this model on the held-out data.",
         hint="permutation_importance(model, X_test, y_test, n_repeats=10, random_state=0, scoring='roc_auc')")


@exercise(lab="02", name="permutation-importance", title="Permutation importance on held-out data")
def check_permutation_importance(result, model, X_test, y_test, X_train=None, y_train=None):
    """``result``: ``permutation_importance`` of ``model`` on ``X_test, y_test``, seeded, with repeats."""
    _validate_permutation(result, model, X_test, y_test, X_train, y_train)
    repeats = np.asarray(result.importances)
    top = X_test.columns[int(np.argmax(repeats.mean(axis=1)))]
    return f"{repeats.shape[1]} seeded repeats on {len(X_test)} held-out rows; most important: {top}."


@exercise(lab="02", name="noise-like", title="Which features cannot be told from noise?")
def check_noise_like(noise_like, result, feature_names):
    """``noise_like``: the features whose mean importance is within two standard deviations of zero."""
    expect(not is_stub(noise_like), "`noise_like` is still the stub.",
           hint="Keep the features whose importances_mean - 2 * importances_std <= 0.")
    expect(isinstance(noise_like, (list, tuple, set)) and all(isinstance(f, str) for f in noise_like),
           "`noise_like` should be a list of feature names.", hint="For example list(table.index[mask]).")
    names = list(feature_names)
    unknown = [f for f in noise_like if f not in names]
    expect(not unknown, f"{unknown} are not features of the model.",
           hint="Take the names from X_test.columns, in the order of result.importances_mean.")
    mean, std = np.asarray(result.importances_mean), np.asarray(result.importances_std)
    expected = {f for f, m, s in zip(names, mean, std) if m - 2 * s <= 0}
    missed, wrong = sorted(expected - set(noise_like)), sorted(set(noise_like) - expected)
    expect(not missed, f"{missed} should be in `noise_like`: their importance is within two standard deviations "
                       "of zero.", hint="Compare importances_mean - 2 * importances_std with 0 for every feature.")
    expect(not wrong, f"{wrong} should not be in `noise_like`: their importance stands clear of zero.",
           hint="Keep only the features whose importances_mean - 2 * importances_std <= 0.")
    return f"{len(expected)} features cannot be told from noise: {', '.join(sorted(expected))}."


@exercise(lab="02", name="correlated-pair", title="Correlated features share importance")
def check_correlated_pair(result_without, model_without, X_test, y_test, result, pair, X_train=None, y_train=None):
    """``result_without``: held-out permutation importance of a model refitted without ``pair[1]``."""
    keep, proxy = pair
    expect(not is_stub(model_without), "`model_without` is still the stub.",
           hint=f"Refit the forest on X_train.drop(columns='{proxy}').")
    expect(hasattr(model_without, "feature_names_in_"), "`model_without` has not been fitted on a DataFrame.",
           hint=f"model_without = RandomForestClassifier(...).fit(X_train.drop(columns='{proxy}'), y_train)")
    seen = list(model_without.feature_names_in_)
    expect(proxy not in seen, f"`model_without` still sees {proxy}.", hint=f"Drop '{proxy}' before fitting.")
    expect(keep in seen, f"`model_without` must keep {keep}: drop only its twin, {proxy}.",
           hint=f"Fit on X_train.drop(columns='{proxy}').")
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


@exercise(lab="02", name="recovered-shape", title="Partial dependence recovers the true shape")
def check_recovered_shape(grid, curve, truth, feature="age", threshold=SHAPE_THRESHOLD):
    """``grid``, ``curve``: the one-feature partial dependence of ``feature`` (its grid and average curve)."""
    expect(not is_stub(grid) and not is_stub(curve), "`grid` or `curve` is still the stub.",
           hint=f"pd_result = partial_dependence(model, X_test, ['{feature}'], grid_resolution=30, "
                "percentiles=(0.01, 0.99), response_method='decision_function'); "
                "grid = pd_result['grid_values'][0]; curve = pd_result['average'][0]")
    grid, curve = np.asarray(grid, dtype=float), np.asarray(curve, dtype=float)
    expect(curve.ndim == 1 or curve.shape[0] == 1 or grid.size == curve.size,
           f"`curve` has shape {curve.shape}: that is one curve per row (ICE), not their average.",
           hint="Take pd_result['average'][0], or pass kind='average'.")
    curve = curve.reshape(-1) if curve.size == grid.size else curve
    expect(curve.ndim == 1 and curve.size == grid.size,
           f"`grid` has {grid.size} points but `curve` has shape {curve.shape}.",
           hint="grid = pd_result['grid_values'][0]; curve = pd_result['average'][0]")
    expect(np.all(np.diff(grid) > 0), "`grid` should be increasing: the grid values of the feature.",
           hint="grid = pd_result['grid_values'][0]")
    score = truth.shape_agreement(feature, grid, curve)
    expect(score >= threshold,
           f"the recovered curve agrees with the true effect of {feature} by only {score:.2f} "
           f"(need {threshold}).",
           hint=f"Compute the partial dependence of '{feature}' (not another feature) for the boosting model "
                "on X_test.")
    return f"shape agreement with the true effect of {feature}: {score:.3f} (threshold {threshold})."
