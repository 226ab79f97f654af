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
