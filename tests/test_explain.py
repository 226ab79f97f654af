"""The shared explanation helpers compute what they claim on inputs whose answers are known."""

import doctest
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from glassbox import explain  # noqa: E402
from glassbox.data import load_credit  # noqa: E402


def test_docstring_examples():
    assert doctest.testmod(explain).failed == 0


def test_rank_agreement_uses_shared_features_only():
    a = pd.Series({"x": 3.0, "y": 2.0, "z": 1.0, "only_a": 9.0})
    b = {"z": 0.1, "y": 0.2, "x": 0.3, "only_b": -5.0}
    assert explain.rank_agreement(a, b) == pytest.approx(1.0)
    assert explain.rank_agreement(a, {"x": 1, "y": 2, "z": 3}, method="kendall") == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="fewer than two"):
        explain.rank_agreement(a, {"x": 1.0})
    with pytest.raises(ValueError, match="method"):
        explain.rank_agreement(a, a, method="pearson")


def test_top_k_overlap_ranks_by_magnitude():
    a = {"x": -5.0, "y": 1.0, "z": 0.5, "w": 0.1}
    b = {"x": 4.0, "y": -3.0, "z": 0.0, "w": 0.2}
    assert explain.top_k_overlap(a, b, k=2) == 1.0
    assert explain.top_k_overlap(a, b, k=2, absolute=False) == 0.0  # signed: a's top two are y, z; b's x, w
    assert explain.top_k_overlap(a, b, k=4) == 1.0


def test_interaction_strength_separates_additive_from_product():
    a, b = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 7), indexing="ij")
    assert explain.interaction_strength(a + 2 * b**2) == pytest.approx(0.0, abs=1e-12)
    assert explain.interaction_strength(a * b) == pytest.approx(1.0)
    assert 0.2 < explain.interaction_strength(a + b + 2 * a * b) < 0.8
    assert explain.interaction_strength(np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError):
        explain.interaction_strength(np.zeros(5))


def test_importance_table_summarises_repeats():
    repeats = np.array([[0.10, 0.12, 0.08, 0.10], [0.0, 0.01, -0.01, 0.0]])
    result = SimpleNamespace(importances=repeats)
    table = explain.importance_table(result, ["a", "b"], impurity=[0.2, 0.8])
    assert list(table.index) == ["a", "b"] and list(table.columns[:2]) == ["impurity", "permutation_mean"]
    assert table.loc["a", "permutation_mean"] == pytest.approx(0.1)
    assert table.loc["b", "impurity"] == pytest.approx(0.8)
    assert table.loc["b", "low"] < 0 < table.loc["b", "high"]


def test_plots_draw_what_they_say():
    result = SimpleNamespace(importances=np.array([[0.1, 0.2, 0.15], [0.0, 0.01, -0.01], [0.3, 0.3, 0.31]]))
    ax = explain.plot_importances(result, ["a", "noise", "c"], highlight=["noise"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["noise", "a", "c"]  # largest on top
    truth = load_credit(n_samples=200, seed=0).truth
    grid = np.linspace(20, 75, 20)
    curve = 0.1 * truth.effect("age", grid) + 0.5  # right shape, probability-like scale
    ax = explain.plot_effect_vs_truth(truth, "age", grid, curve, rescale=True)
    recovered, true = (line.get_ydata() for line in ax.get_lines())
    assert np.allclose(recovered, true)  # the rescaled truth lies on the recovered curve
    assert "1.00" in ax.get_legend().get_texts()[0].get_text()
    import matplotlib.pyplot as plt

    plt.close("all")


# ---- accumulated local effects -----------------------------------------------------------------------------
class _Formula:
    """A 'model' that is a known formula of the columns (decision_function only)."""

    def __init__(self, formula):
        self.formula = formula

    def decision_function(self, X):
        return self.formula(X)


def test_ale_recovers_a_known_additive_effect_and_is_centred_on_the_rows():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(-2, 2, 2000), "b": rng.normal(size=2000)})
    model = _Formula(lambda X: X["a"].to_numpy() ** 2 + 3 * X["b"].to_numpy())
    edges, effect = explain.accumulated_local_effects(model, X, "a", bins=10, response_method="decision_function")
    assert edges.size == 11 and np.all(np.diff(edges) > 0)
    assert edges[0] == X["a"].min() and edges[-1] == X["a"].max()
    truth = edges**2
    assert np.allclose(effect - effect.mean(), truth - truth.mean(), atol=0.05)  # exact at the edges, up to centring
    assert abs(np.interp(X["a"], edges, effect).mean()) < 0.02  # mean 0 over the rows, not over the edges


def test_ale_never_leaves_the_data_where_partial_dependence_does():
    # b is a copy of a; the model is wild only where the two disagree, which no row does.
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 1000)
    X = pd.DataFrame({"a": a, "b": a + rng.normal(0, 0.01, 1000)})
    model = _Formula(lambda X: X["a"].to_numpy() + 50 * (X["a"].to_numpy() - X["b"].to_numpy()) ** 2)
    edges, effect = explain.accumulated_local_effects(model, X, "a", bins=20, response_method="decision_function")
    assert effect[-1] - effect[0] == pytest.approx(1.0, abs=0.1)  # the model's rise where the data is
    assert np.corrcoef(edges, effect)[0, 1] > 0.99  # and a straight line
    pd_curve = np.array([model.decision_function(X.assign(a=v)).mean() for v in edges])
    assert explain.centred(pd_curve)[0] > 1.0  # partial dependence bends upward off the data (a U, not a line)


def test_ale_response_methods_and_errors():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=300), "c": np.zeros(300)})
    y = (X["a"] + rng.normal(size=300) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    _, log_odds = explain.accumulated_local_effects(model, X, "a", response_method="decision_function")
    _, probability = explain.accumulated_local_effects(model, X, "a")  # auto: predict_proba, as sklearn does
    assert np.ptp(probability) < 1 < np.ptp(log_odds)
    with pytest.raises(KeyError, match="not a column"):
        explain.accumulated_local_effects(model, X, "z")
    with pytest.raises(ValueError, match="single value"):
        explain.accumulated_local_effects(model, X, "c")
    with pytest.raises(ValueError, match="no predict_proba"):
        explain.accumulated_local_effects(_Formula(lambda X: X["a"]), X, "a", response_method="predict_proba")


def test_effect_error_is_the_rms_distance_of_centred_curves():
    truth = load_credit(n_samples=200, seed=0).truth
    grid = np.linspace(20, 75, 12)
    exact = truth.effect("age", grid) + 7.0  # an offset is not an error
    assert explain.effect_error(truth, "age", grid, exact) == pytest.approx(0.0, abs=1e-12)
    flat = np.zeros_like(grid)
    assert explain.effect_error(truth, "age", grid, flat) == pytest.approx(np.std(truth.effect("age", grid)))
    with pytest.raises(ValueError):
        explain.effect_error(truth, "age", grid, flat[:3])


def test_occlusion_is_the_fall_of_the_probability_per_patch():
    """A linear 'model' whose P(class 1) is w·x: hiding a patch with 0 lowers it by the patch's share of w·x."""
    rng = np.random.default_rng(0)
    weights, image = rng.uniform(0, 1 / 64, (8, 8)), rng.uniform(0, 1, (8, 8))

    class Linear:
        def predict_proba(self, rows):
            p = rows @ weights.ravel()
            return np.stack([1 - p, p], axis=1)

    contribution = weights * image
    for patch in (2, 4):
        squares = contribution.reshape(8 // patch, patch, 8 // patch, patch).sum(axis=(1, 3))
        expected = np.kron(squares, np.ones((patch, patch)))
        assert np.allclose(explain.occlusion(Linear(), image.ravel(), 1, patch=patch), expected)
        assert np.allclose(explain.occlusion(Linear(), image.ravel(), 0, patch=patch), -expected)
    filled = explain.occlusion(Linear(), image.ravel(), 1, fill=1.0)
    raised = (weights * (image - 1)).reshape(4, 2, 4, 2).sum(axis=(1, 3))   # filling with 1 raises P: negative falls
    assert np.allclose(filled, np.kron(raised, np.ones((2, 2)))) and (filled < 0).all()
