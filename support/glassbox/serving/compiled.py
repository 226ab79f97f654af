"""The fast path for small batches: a HistGradientBoostingClassifier's trees compiled into flat numpy arrays.

scikit-learn scores a batch with one Python-level call per tree; :class:`CompiledTrees` walks every tree at
once with a handful of vectorised numpy steps. It is used for batches up to :data:`COMPILED_MAX_ROWS` rows
(beyond, scikit-learn's predictor is faster) and only when :meth:`CompiledTrees.build` has proved it
equal to scikit-learn.

It relies on these **private scikit-learn internals**, which any release may change:

=======================================  ====================================================================
``model._predictors``                    one list per boosting iteration, one ``TreePredictor`` per class
``TreePredictor.nodes``                  a structured array with the fields ``feature_idx``,
                                         ``num_threshold``, ``left``, ``right``, ``is_leaf``, ``value``,
                                         ``depth`` and ``is_categorical``
``model._baseline_prediction``           the raw score every row starts from
the split rule                           ``x <= num_threshold`` goes left (finite inputs: no missing values)
the sum's order                          baseline, then tree by tree: the compiled sum follows it, so that
                                         the result is bit-identical, not merely close
=======================================  ====================================================================

How the start-up check guards them: :meth:`CompiledTrees.build` returns ``None`` (and the runtime serves with
scikit-learn's ``predict_proba``) when a field or attribute is missing or has another shape (the
``AttributeError``, ``KeyError``, ``ValueError`` or ``IndexError`` it raises), when the model is not a binary
classifier with numeric splits, or when the compiled trees do not reproduce ``model.predict_proba`` *exactly*
on :data:`PROBE_ROWS` seeded rows, half of them set on split thresholds (where ``<=`` against ``<`` would
show), both as one batch and row by row. A scikit-learn release that changes any of these falls back to the
slow path, with a log line saying why; it never serves a different answer.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import expit

__all__ = ["COMPILED_MAX_ROWS", "PROBE_ROWS", "CompiledTrees", "probe_rows"]

_log = logging.getLogger("glassbox.serving")
# Batches up to this many rows use the compiled trees on the serving thread; larger ones scikit-learn's
# predictor on a batch worker (the compiled path's cost grows with rows x trees; :mod:`.service`).
COMPILED_MAX_ROWS = 64
PROBE_ROWS = 512


class CompiledTrees:
    """A binary HistGradientBoostingClassifier's trees as flat arrays, walked for all trees at once.

    Every node of every tree sits in one set of arrays (feature, threshold, left, right, value); leaves point
    to themselves, so walking ``depth`` steps from the roots ends on every tree's leaf. Scores are summed in the
    same order as scikit-learn (baseline, then tree by tree), so the result is bit-identical, which
    :meth:`build` checks before the compiled path is used. Inputs must be finite (the protocol sees to it).
    """

    def __init__(self, model):
        predictors = model._predictors
        if model.n_trees_per_iteration_ != 1 or len(model.classes_) != 2:
            raise ValueError("only binary classifiers are compiled")
        nodes = [iteration[0].nodes for iteration in predictors]
        if any(tree["is_categorical"].any() for tree in nodes):
            raise ValueError("categorical splits are not compiled")
        offsets = np.cumsum([0] + [len(tree) for tree in nodes[:-1]])
        total = int(sum(len(tree) for tree in nodes))
        feature = np.zeros(total, dtype=np.intp)
        threshold = np.zeros(total, dtype=np.float64)
        left = np.zeros(total, dtype=np.intp)
        right = np.zeros(total, dtype=np.intp)
        value = np.zeros(total, dtype=np.float64)
        for offset, tree in zip(offsets, nodes):
            where = slice(offset, offset + len(tree))
            own = np.arange(offset, offset + len(tree))
            leaf = tree["is_leaf"].astype(bool)
            feature[where] = np.where(leaf, 0, tree["feature_idx"])
            threshold[where] = np.where(leaf, np.inf, tree["num_threshold"])
            left[where] = np.where(leaf, own, tree["left"].astype(np.intp) + offset)
            right[where] = np.where(leaf, own, tree["right"].astype(np.intp) + offset)
            value[where] = np.where(leaf, tree["value"], 0.0)
        self.roots = offsets.astype(np.intp)
        self.feature, self.threshold, self.left, self.right, self.value = feature, threshold, left, right, value
        self.depth = int(max(tree["depth"].max() for tree in nodes))
        self.baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        self.n_trees = len(nodes)

    def raw(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        if n == 1:
            x = X[0]
            node = self.roots
            for _ in range(self.depth):
                node = np.where(x[feature[node]] <= threshold[node], left[node], right[node])
            leaves = self.value[node][None, :]
        else:
            rows = np.arange(n)[:, None]
            node = np.broadcast_to(self.roots, (n, self.n_trees))
            for _ in range(self.depth):
                node = np.where(X[rows, feature[node]] <= threshold[node], left[node], right[node])
            leaves = self.value[node]
        scores = np.empty((n, self.n_trees + 1), dtype=np.float64)
        scores[:, 0] = self.baseline
        scores[:, 1:] = leaves
        return np.cumsum(scores, axis=1)[:, -1]  # baseline + tree 1 + tree 2 + ..., in scikit-learn's order

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        positive = expit(self.raw(X))
        proba = np.empty((X.shape[0], 2), dtype=np.float64)
        proba[:, 1] = positive
        proba[:, 0] = 1 - positive
        return proba

    @classmethod
    def build(cls, model, manifest: dict):
        """The compiled trees, or None when the model cannot be compiled or the result differs from sklearn."""
        try:
            compiled = cls(model)
        except (AttributeError, ValueError, KeyError, IndexError) as error:
            _log.info("serving with scikit-learn's predictor (%s)", error)
            return None
        probe = probe_rows(manifest, PROBE_ROWS, thresholds=compiled)
        expected = model.predict_proba(probe)
        batch = compiled.predict_proba(probe[:COMPILED_MAX_ROWS])
        single = np.vstack([compiled.predict_proba(probe[i:i + 1]) for i in range(len(probe))])
        if not (np.array_equal(batch, expected[:COMPILED_MAX_ROWS]) and np.array_equal(single, expected)):
            _log.warning("compiled trees differ from scikit-learn's predict_proba: serving with scikit-learn")
            return None
        return compiled




def probe_rows(manifest: dict, n: int, thresholds: CompiledTrees | None = None) -> np.ndarray:
    """Rows for start-up self-tests: uniform over the training ranges, half of them set exactly on split
    thresholds (where ``<=`` against ``<`` would show), seeded."""
    rng = np.random.default_rng(0)
    low = np.array([f["min"] for f in manifest["features"]], dtype=np.float64)
    high = np.array([f["max"] for f in manifest["features"]], dtype=np.float64)
    rows = rng.uniform(low, high, size=(n, len(low)))
    if thresholds is not None:
        internal = thresholds.left != np.arange(len(thresholds.left))
        for j in range(len(low)):
            cuts = thresholds.threshold[internal & (thresholds.feature == j)]
            if len(cuts):
                rows[: n // 2, j] = rng.choice(cuts, size=n // 2)
    return rows
