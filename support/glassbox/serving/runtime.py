"""The model behind the server: loaded, checked and prepared once, then asked many times.

:class:`ModelRuntime` wraps a verified artifact (:func:`glassbox.artifacts.load`). At start-up it

* compiles the tree ensemble into flat arrays (:mod:`.compiled`, the fast path for small batches), used only
  after it reproduced ``model.predict_proba`` *exactly* (bit for bit) on probe rows, otherwise the runtime falls
  back to scikit-learn;
* builds the SHAP ``TreeExplainer`` once and checks that base value plus contributions give the model's
  log-odds;
* keeps OpenMP to one thread in the thread that calls :meth:`ModelRuntime.limit_threads`: the serving thread and
  the batch workers (:mod:`.service`). Requests run side by side, one per core, rather than each spread over
  the cores: one thread per request gains nothing on one row and, at 1024 rows, 8 concurrent requests on 2
  cores score more rows per second on 2 one-thread workers than with OpenMP teams contending for the cores.

Nothing here knows HTTP; :mod:`glassbox.serving.protocol` holds the request schema.
"""

from __future__ import annotations

import logging
import threading
import warnings

import numpy as np

from glassbox.serving.compiled import COMPILED_MAX_ROWS, CompiledTrees, probe_rows
from glassbox.serving.protocol import ModelSchema

__all__ = ["ModelRuntime"]

_log = logging.getLogger("glassbox.serving")
_EXPLAIN_CHUNK_ROWS = 32  # rows per TreeExplainer call: a few milliseconds each


class ModelRuntime:
    """Predictions and explanations for one loaded artifact.

    >>> runtime = ModelRuntime(artifacts.load(path))            # doctest: +SKIP
    >>> runtime.predict_proba(X)                                 # doctest: +SKIP
    """

    def __init__(self, artifact, *, max_rows: int = 10_000, explain: bool = True, compile: bool = True):
        self.artifact = artifact
        self.model = artifact.model
        self.name = artifact.name
        self.version = artifact.version
        self.feature_names = tuple(artifact.feature_names)
        self.classes = np.asarray(self.model.classes_)
        self.schema = ModelSchema(self.feature_names, max_rows=max_rows)
        # Arrays carry no feature names: the protocol puts the columns in the model's order already.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        self._compiled = CompiledTrees.build(self.model, artifact.manifest) if compile else None
        self._explainer = None
        self._explain_lock = threading.Lock()
        self.base_value = None
        if explain:
            self._prepare_explainer()

    # -- the hot path ---------------------------------------------------------------------------------------

    @property
    def compiled(self) -> bool:
        """Whether small batches use the compiled trees (verified equal to scikit-learn at start-up)."""
        return self._compiled is not None

    def is_large(self, X: np.ndarray) -> bool:
        """Whether a batch is big enough to be scored off the serving thread (by scikit-learn's predictor)."""
        return X.shape[0] > COMPILED_MAX_ROWS

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities for a float64 matrix whose columns are :attr:`feature_names` (all finite)."""
        if self._compiled is not None and X.shape[0] <= COMPILED_MAX_ROWS:
            return self._compiled.predict_proba(X)
        return self.model.predict_proba(X)

    def predict(self, proba: np.ndarray) -> np.ndarray:
        """The predicted classes from :meth:`predict_proba`'s output (as scikit-learn's ``predict`` does)."""
        return self.classes[proba.argmax(axis=1)]

    def explain(self, X: np.ndarray) -> np.ndarray:
        """SHAP contributions, shape ``(n, n_features)``, log-odds of the positive class; add :attr:`base_value`."""
        if self._explainer is None:
            raise RuntimeError("this runtime was created without an explainer")
        chunks = []
        for start in range(0, X.shape[0], _EXPLAIN_CHUNK_ROWS):  # SHAP holds the GIL: let requests in between
            with self._explain_lock:
                values = np.asarray(self._explainer.shap_values(X[start:start + _EXPLAIN_CHUNK_ROWS],
                                                                check_additivity=False), dtype=np.float64)
            chunks.append(values[..., -1] if values.ndim == 3 else values)
        return np.concatenate(chunks)

    @staticmethod
    def limit_threads() -> None:
        """Keep OpenMP and BLAS to one thread in the calling thread (OpenMP's thread count is per thread)."""
        from threadpoolctl import ThreadpoolController

        ThreadpoolController().limit(limits=1)

    # -- metadata -------------------------------------------------------------------------------------------

    @property
    def predict_datatype(self) -> str:
        return "INT64" if self.classes.dtype.kind in "iub" else "BYTES"

    def metadata(self) -> dict:
        """The protocol's model metadata (``GET /v2/models/{name}``)."""
        n = len(self.feature_names)
        manifest = self.artifact.manifest
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "sklearn",
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, n]}],
            "outputs": [
                {"name": "predict", "datatype": self.predict_datatype, "shape": [-1]},
                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(self.classes)]},
                {"name": "explanation", "datatype": "FP64", "shape": [-1, n]},
            ],
            "parameters": {
                "feature_names": list(self.feature_names),
                "per_feature_inputs": "also accepted: one tensor per feature, named after it, shape [-1]",
                "classes": self.classes.tolist(),
                "explanation": "SHAP contributions (log-odds of the positive class); parameters.base_value",
                "estimator": manifest["estimator"],
                "manifest_sha256": self.artifact.manifest_sha256,
                "metrics": manifest.get("metrics", {}),
                "max_batch_rows": self.schema.max_rows,
            },
        }

    # -- start-up -------------------------------------------------------------------------------------------

    def _prepare_explainer(self) -> None:
        import shap

        self._explainer = shap.TreeExplainer(self.model)
        expected = np.asarray(self._explainer.expected_value, dtype=np.float64).ravel()
        self.base_value = float(expected[-1])
        probe = probe_rows(self.artifact.manifest, 32)
        contributions = self.explain(probe)
        proba = self.model.predict_proba(probe)[:, -1]
        log_odds = np.log(proba) - np.log1p(-proba)
        gap = float(np.max(np.abs(self.base_value + contributions.sum(axis=1) - log_odds)))
        if gap > 1e-6:
            raise RuntimeError(f"the explainer does not add up to the model's log-odds (gap {gap:.2e})")

