"""Drift: per feature, a sliding window of live rows against the training data (PSI or KS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd


_EPS = 1e-4


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges from the reference: its distinct values when few, else its quantiles (open-ended)."""
    values = np.unique(reference[np.isfinite(reference)])
    if len(values) <= bins:
        middles = (values[1:] + values[:-1]) / 2
        return np.concatenate([[-np.inf], middles, [np.inf]])
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.histogram(values, bins=edges)[0].astype(float)
    return np.clip(counts / max(counts.sum(), 1.0), _EPS, None)


def psi(reference, current, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (bins from the reference).

    Rule of thumb: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a significant one.
    """
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    edges = _edges(reference, bins)
    expected, actual = _shares(reference, edges), _shares(current, edges)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference, current) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and p-value of ``current`` against ``reference``."""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(reference, dtype=float), np.asarray(current, dtype=float))
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class DriftAlert:
    """Features that drifted when the window ended at row ``position`` (scores: PSI or KS statistic)."""

    position: int
    scores: Mapping[str, float]
    method: str

    @property
    def features(self) -> list[str]:
        return sorted(self.scores, key=self.scores.get, reverse=True)

    def __str__(self) -> str:
        listed = ", ".join(f"{f} ({self.scores[f]:.2f})" for f in self.features)
        return f"DRIFT at row {self.position} ({self.method}): {listed}"


class DriftMonitor:
    """Per-feature drift of live traffic against the training data, on a sliding window.

    Rows arrive through :meth:`update`; every ``step`` rows, once ``window`` rows have been seen, each
    feature's last ``window`` values are compared with the reference:

    - ``method="psi"``: drifted when the PSI exceeds ``threshold`` (default 0.25);
    - ``method="ks"``: drifted when the KS p-value is below ``alpha`` divided by the number of features
      (Bonferroni, so that watching many features does not raise false alarms); the score is the statistic.

    An alert is raised when a feature *becomes* drifted (not again while it stays drifted); ``on_alert`` is
    called with each :class:`DriftAlert`. ``history`` has one row per evaluation and feature.
    """

    def __init__(self, reference: pd.DataFrame, window: int = 300, step: int = 50, method: str = "psi",
                 threshold: float = 0.25, alpha: float = 0.01, bins: int = 10,
                 on_alert: Callable[[DriftAlert], None] | None = None):
        if method not in ("psi", "ks"):
            raise ValueError("method must be 'psi' or 'ks'")
        if window < 20 or step < 1:
            raise ValueError("use a window of at least 20 rows and a step of at least 1")
        self.features = list(reference.columns)
        self.reference = {f: reference[f].to_numpy(dtype=float) for f in self.features}
        self._edges = {f: _edges(v, bins) for f, v in self.reference.items()}
        self._expected = {f: _shares(v, self._edges[f]) for f, v in self.reference.items()}
        self.window, self.step, self.method = window, step, method
        self.threshold, self.alpha, self.on_alert = threshold, alpha, on_alert
        self._buffer = np.empty((0, len(self.features)))
        self.seen = 0
        self._next_eval = window
        self.drifted: set[str] = set()
        self.alerts: list[DriftAlert] = []
        self._history: list[dict] = []

    def _score(self, feature: str, values: np.ndarray) -> tuple[float, bool]:
        if self.method == "psi":
            actual = _shares(values, self._edges[feature])
            expected = self._expected[feature]
            score = float(np.sum((actual - expected) * np.log(actual / expected)))
            return score, score > self.threshold
        statistic, pvalue = ks(self.reference[feature], values)
        return statistic, pvalue < self.alpha / len(self.features)

    def update(self, rows: pd.DataFrame) -> list[DriftAlert]:
        """Add live rows (in arrival order); return the alerts they raised (often none)."""
        values = rows[self.features].to_numpy(dtype=float)
        raised = []
        i = 0
        while i < len(values):
            take = min(len(values) - i, self._next_eval - self.seen)
            self._buffer = np.vstack([self._buffer, values[i:i + take]])[-self.window:]
            self.seen += take
            i += take
            if self.seen == self._next_eval:
                self._next_eval += self.step
                alert = self._evaluate()
                if alert is not None:
                    raised.append(alert)
        return raised

    def _evaluate(self) -> DriftAlert | None:
        if len(self._buffer) < self.window:
            return None
        newly = {}
        for i, feature in enumerate(self.features):
            score, drifted = self._score(feature, self._buffer[:, i])
            self._history.append({"position": self.seen, "feature": feature, "score": score, "drifted": drifted})
            if drifted and feature not in self.drifted:
                newly[feature] = score
            if drifted:
                self.drifted.add(feature)
            else:
                self.drifted.discard(feature)
        if not newly:
            return None
        alert = DriftAlert(self.seen, newly, self.method)
        self.alerts.append(alert)
        if self.on_alert is not None:
            self.on_alert(alert)
        return alert

    @property
    def history(self) -> pd.DataFrame:
        """One row per evaluation and feature: position (rows seen), feature, score, drifted."""
        return pd.DataFrame(self._history, columns=["position", "feature", "score", "drifted"])

    def scores(self) -> pd.DataFrame:
        """The latest evaluation: one row per feature, highest score first."""
        history = self.history
        if history.empty:
            return history
        last = history[history["position"] == history["position"].max()]
        return last.sort_values("score", ascending=False).reset_index(drop=True)
