"""Helpers the interpretability labs share: comparing explanations, scoring them, and plotting them.

The explanation methods themselves (``permutation_importance``, ``partial_dependence``, SHAP, LIME) stay in the
notebooks; what lives here is the bookkeeping around them, and two methods the course's libraries lack:
accumulated local effects (:func:`accumulated_local_effects`) and occlusion for small images (:func:`occlusion`).

>>> import pandas as pd
>>> a = pd.Series({"x": 3.0, "y": 2.0, "z": 1.0})
>>> rank_agreement(a, a * 10)
1.0
>>> top_k_overlap(a, pd.Series({"x": 1.0, "y": 0.0, "z": 2.0}), k=2)
0.5
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "accumulated_local_effects", "attribution_share", "centred", "effect_error", "importance_table",
    "interaction_strength", "occlusion", "plot_effect_vs_truth", "plot_importances", "rank_agreement", "top_k_overlap",
]


# ---- comparing and scoring -------------------------------------------------------------------------------
def attribution_share(attribution, mask) -> float:
    """The share of an attribution map's absolute total that falls on the pixels of ``mask`` (0 to 1).

    >>> attribution_share(np.array([[3.0, -1.0], [0.0, 0.0]]), np.array([[True, False], [False, False]]))
    0.75
    """
    magnitude = np.abs(np.asarray(attribution, dtype=float)).reshape(np.shape(mask))
    total = magnitude.sum()
    return float(magnitude[np.asarray(mask, dtype=bool)].sum() / total) if total > 0 else 0.0


def rank_agreement(a, b, method: str = "spearman") -> float:
    """Rank correlation of two importance vectors (mappings or Series) over the features they share.

    ``method``: ``"spearman"`` or ``"kendall"``; 1.0 is the same order, -1.0 the reverse.
    """
    from scipy import stats

    a, b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
    shared = a.index.intersection(b.index)
    if len(shared) < 2:
        raise ValueError("the two importance vectors share fewer than two features")
    test = {"spearman": stats.spearmanr, "kendall": stats.kendalltau}.get(method)
    if test is None:
        raise ValueError("method must be 'spearman' or 'kendall'")
    return float(test(a[shared].to_numpy(), b[shared].to_numpy()).statistic)


def top_k_overlap(a, b, k: int = 3, absolute: bool = True) -> float:
    """Share of the ``k`` largest features of ``a`` that are also among the ``k`` largest of ``b``.

    With ``absolute`` (the default) features are ranked by magnitude, as for signed attributions.
    """
    a, b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
    if absolute:
        a, b = a.abs(), b.abs()
    top_a, top_b = set(a.nlargest(k).index), set(b.nlargest(k).index)
    return len(top_a & top_b) / k


def centred(curve) -> np.ndarray:
    """``curve`` minus its mean: two effect curves can then be laid over each other."""
    curve = np.asarray(curve, dtype=float)
    return curve - curve.mean()


def effect_error(truth, feature: str, grid, curve) -> float:
    """Root-mean-square distance between a recovered effect curve and the true effect of ``feature``.

    Both are centred to mean 0 over ``grid`` first (only the shape and size of an effect are identified, not
    its level), so the result is in the curve's own units: log-odds when ``curve`` is on the log-odds scale,
    as ``truth.effect`` is. 0 is a perfect recovery; a flat curve scores the spread of the true effect.
    """
    grid, curve = np.asarray(grid, dtype=float).ravel(), np.asarray(curve, dtype=float).ravel()
    if grid.shape != curve.shape:
        raise ValueError(f"grid has {grid.size} points but the curve has {curve.size}")
    return float(np.sqrt(np.mean((centred(curve) - truth.effect(feature, grid)) ** 2)))


def _response(model, response_method: str):
    """The model's prediction function for ``response_method``, as ``partial_dependence`` chooses it."""
    methods = {"auto": ("predict_proba", "decision_function", "predict")}.get(response_method, (response_method,))
    for name in methods:
        if name in {"predict_proba", "decision_function", "predict"} and hasattr(model, name):
            method = getattr(model, name)
            if name == "predict_proba":
                return lambda X: method(X)[:, -1]  # the positive class of a binary classifier
            return method
    raise ValueError(f"the model has no {' or '.join(methods)} method")


def accumulated_local_effects(model, X: pd.DataFrame, feature: str, bins: int = 20,
                              response_method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """First-order accumulated local effects (ALE) of one numeric ``feature`` (Apley and Zhu, 2020).

    The feature's range is cut into up to ``bins`` intervals at quantiles of ``X[feature]``, so each holds
    about as many rows. For the rows *in* an interval, the model's prediction at its upper edge minus that at
    its lower edge (all other columns as they are) is the local effect; the mean local effects are summed
    from the left (accumulated), and the curve is centred so that its mean over the rows of ``X`` is 0.
    Unlike partial dependence, a row is only moved within its own interval, so the model is never asked
    about combinations of correlated features that do not occur.

    ``response_method``: ``"auto"`` (``predict_proba`` if the model has it, else ``decision_function``, as
    in ``sklearn.inspection.partial_dependence``), ``"predict_proba"`` (the positive class),
    ``"decision_function"`` (log-odds for scikit-learn's binary classifiers) or ``"predict"``.
    Costs two predictions per row, whatever ``bins`` is.

    Returns ``(edges, effect)``: the interval edges, increasing, and the centred effect at each edge.

    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2})
    >>> edges, effect = accumulated_local_effects(LinearRegression().fit(X, 3 * X["a"]), X, "a", bins=3)
    >>> np.round(np.diff(effect) / np.diff(edges), 6)  # the slope of a linear model, in every interval
    array([3., 3., 3.])
    """
    if feature not in X.columns:
        raise KeyError(f"{feature!r} is not a column of X")
    values = X[feature].to_numpy(dtype=float)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, int(bins) + 1), method="lower"))
    if edges.size < 2:
        raise ValueError(f"{feature!r} takes a single value in X: it has no effect to accumulate")
    # Interval k is (edges[k], edges[k + 1]]; the lowest value joins the first interval.
    interval = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, edges.size - 2)
    lower, upper = X.copy(), X.copy()
    lower[feature], upper[feature] = edges[interval], edges[interval + 1]
    predict = _response(model, response_method)
    change = predict(upper) - predict(lower)
    counts = np.bincount(interval, minlength=edges.size - 1)
    local = np.bincount(interval, weights=change, minlength=edges.size - 1) / counts
    accumulated = np.concatenate([[0.0], np.cumsum(local)])
    # Centre on the rows: each interval's rows sit, on average, half-way along it.
    middle = (accumulated[:-1] + accumulated[1:]) / 2
    return edges, accumulated - np.dot(middle, counts) / counts.sum()


def occlusion(model, image, label: int, patch: int = 2, fill: float = 0.0, side: int = 8) -> np.ndarray:
    """Occlusion map of a ``side`` x ``side`` image: the fall in ``P(label)`` when each ``patch`` x ``patch``
    square is set to ``fill``, written into the square's pixels. ``model.predict_proba`` takes flat rows.

    >>> class Corner:  # P(class 1) is the top-left pixel's value
    ...     def predict_proba(self, rows):
    ...         return np.stack([1 - rows[:, 0], rows[:, 0]], axis=1)
    >>> occlusion(Corner(), np.eye(4).ravel(), label=1, side=4)[:, 0]
    array([1., 1., 0., 0.])
    """
    picture = np.asarray(image, dtype=float).reshape(side, side)
    base = model.predict_proba(picture.reshape(1, -1))[0, label]
    hidden = []
    for row in range(0, side, patch):
        for col in range(0, side, patch):
            covered = picture.copy()
            covered[row:row + patch, col:col + patch] = fill
            hidden.append(covered.ravel())
    falls = base - model.predict_proba(np.array(hidden))[:, label]
    return np.kron(falls.reshape(side // patch, side // patch), np.ones((patch, patch)))


def interaction_strength(surface) -> float:
    """Share of a two-feature partial-dependence surface that the two one-feature curves cannot explain.

    ``surface`` has shape (len(grid_a), len(grid_b)). The additive part is the row mean plus the column mean
    minus the grand mean; the result is ``var(surface - additive) / var(surface)``, between 0 (no interaction
    on this grid) and 1 (pure interaction). H²-like, not Friedman and Popescu's H²: its one-feature curves are
    the surface's row and column means, not the one-feature partial dependences at the data.
    """
    s = np.asarray(surface, dtype=float)
    if s.ndim != 2:
        raise ValueError(f"expected a 2-D surface, got shape {s.shape}")
    additive = s.mean(axis=1, keepdims=True) + s.mean(axis=0, keepdims=True) - s.mean()
    total = np.var(s)
    return 0.0 if total == 0 else float(np.var(s - additive) / total)


def importance_table(result, feature_names, impurity=None, decimals: int = 4) -> pd.DataFrame:
    """A permutation-importance result as a table: mean, std and a ~95 % range over the repeats.

    ``result`` is what ``sklearn.inspection.permutation_importance`` returns; ``impurity`` (optional) adds a
    column such as a forest's ``feature_importances_``. Sorted by the permutation mean, largest first.
    """
    repeats = np.asarray(result.importances)
    table = pd.DataFrame({
        "permutation_mean": repeats.mean(axis=1),
        "permutation_std": repeats.std(axis=1),
        "low": np.quantile(repeats, 0.025, axis=1),
        "high": np.quantile(repeats, 0.975, axis=1),
    }, index=pd.Index(list(feature_names), name="feature"))
    if impurity is not None:
        table.insert(0, "impurity", np.asarray(impurity, dtype=float))
    return table.sort_values("permutation_mean", ascending=False).round(decimals)


# ---- plotting --------------------------------------------------------------------------------------------
def plot_importances(result, feature_names, ax=None, title: str = "Permutation importance",
                     highlight=(), xlabel: str = "drop in score when the feature is shuffled"):
    """Box plot of the repeats of a permutation-importance result, one row per feature, largest on top.

    Features named in ``highlight`` are drawn in orange. Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    repeats = pd.DataFrame(np.asarray(result.importances).T, columns=list(feature_names))
    order = repeats.mean().sort_values().index
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.35 * len(order) + 1))
    box = ax.boxplot([repeats[f] for f in order], orientation="horizontal", patch_artist=True, widths=0.6)
    ax.set_yticks(range(1, len(order) + 1), labels=list(order))
    for patch, name in zip(box["boxes"], order):
        patch.set_facecolor("tab:orange" if name in set(highlight) else "tab:blue")
        patch.set_alpha(0.6)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return ax


def plot_effect_vs_truth(truth, feature: str, grid, curve, ax=None, label: str = "recovered", rescale: bool = False):
    """Overlay a recovered effect curve (for example partial dependence) and the generator's true effect.

    Both are centred. With ``rescale`` the true curve is fitted to the recovered one by least squares (use
    it when the curve is on the probability scale: then only the *shape* is compared). The legend shows
    ``truth.shape_agreement``. Returns the ``Axes``.
    """
    import matplotlib.pyplot as plt

    grid = np.asarray(grid, dtype=float)
    recovered, true = centred(curve), truth.effect(feature, grid)
    if rescale and np.dot(true, true) > 0:
        true = true * np.dot(true, recovered) / np.dot(true, true)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    score = truth.shape_agreement(feature, grid, curve)
    ax.plot(grid, recovered, lw=2, label=f"{label} (shape agreement {score:.2f})")
    ax.plot(grid, true, ls="--", color="black", label="true effect" + (" (rescaled)" if rescale else ""))
    ax.set_xlabel(feature)
    ax.set_ylabel("centred effect" + ("" if rescale else " (log-odds)"))
    ax.legend(fontsize="small")
    return ax
