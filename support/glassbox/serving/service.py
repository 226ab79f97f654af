"""What the server does for one loaded model, whatever the transport: REST (:mod:`.app`) and gRPC (:mod:`.grpc`).

:class:`ModelService` holds the served name and version, the metadata answers, the checks that a request
names this model, and the computation of the outputs a request asks for (predictions, probabilities,
explanations), counted in the metrics. A transport parses its request into the protocol's JSON form
(:func:`.protocol.check_infer_request`), asks this for the outputs, and writes them in its own format: the two
cannot drift apart.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from glassbox import __version__
from glassbox.serving.protocol import InferenceRequest, ProtocolError

__all__ = ["ModelService", "UNAUTHORIZED"]

UNAUTHORIZED = "missing or invalid API key: send \"Authorization: Bearer <key>\""
# Explanations cost about 0.4 ms a row: more rows than this go to a worker thread.
_EXPLAIN_INLINE_ROWS = 8


class ModelService:
    """The protocol's operations on ``runtime`` (a :class:`.runtime.ModelRuntime`), served as ``model_name``.

    ``extensions``: the protocol extensions that the server metadata lists.
    """

    def __init__(self, runtime, metrics, *, model_name: str | None = None, extensions: tuple[str, ...] = ()):
        self.runtime = runtime
        self.metrics = metrics
        self.name = model_name or runtime.name
        self.version = runtime.version
        self.schema = runtime.schema
        self.model_metadata = {**runtime.metadata(), "name": self.name}
        self.server_metadata = {"name": "glassbox", "version": __version__, "extensions": list(extensions)}
        self.explanation_parameters = {"base_value": runtime.base_value,
                                       "feature_names": list(runtime.feature_names),
                                       "scale": "log-odds of class " + str(runtime.classes[-1])}
        metrics.model(self.name, self.version, runtime.artifact.manifest_sha256, runtime.compiled)

    def check_model(self, name: str, version: str | None = None) -> None:
        """Raise a 404 :class:`ProtocolError` unless ``name`` (and ``version``, if given) is the model served."""
        if name != self.name or (version is not None and version != self.version):
            raise ProtocolError(f"unknown model; this server serves {self.name!r} (version {self.version})",
                                status=404)

    def check_names(self, request: InferenceRequest) -> None:
        """Refuse a request whose body names another model or version than the one it was sent to."""
        for field, served in (("model_name", self.name), ("model_version", self.version)):
            sent = getattr(request, field)
            if sent is not None and sent != served:
                raise ProtocolError(f"the request's {field} is {sent[:40]!r} but this URL serves {served!r}")

    def needs_worker(self, request: InferenceRequest) -> bool:
        """Whether the request is heavy enough to be computed on a worker thread, off the serving loop."""
        X = request.X
        return self.runtime.is_large(X) or ("explanation" in request.outputs and X.shape[0] > _EXPLAIN_INLINE_ROWS)

    async def infer(self, request: InferenceRequest) -> list[dict]:
        """:meth:`compute`, on one of the batch workers when :meth:`needs_worker`, else on the serving loop."""
        if not self.needs_worker(request):
            return self.compute(request)
        return await asyncio.get_running_loop().run_in_executor(batch_workers(), self.compute, request)

    def compute(self, request: InferenceRequest) -> list[dict]:
        """The outputs the request asks for, in its order: ``name``, ``datatype``, ``data`` (an array) and, for the
        explanation, ``parameters``. Counts the predictions in the metrics."""
        runtime, X, wanted = self.runtime, request.X, request.outputs
        proba = runtime.predict_proba(X)
        predicted = runtime.predict(proba)
        explained = X.shape[0] if "explanation" in wanted else 0
        if predicted.shape[0] == 1:
            self.metrics.predictions((predicted[0].item(),), (1,), explained)
        else:
            self.metrics.predictions(*np.unique(predicted, return_counts=True), explained)
        outputs = []
        for output in wanted:
            if output == "predict":
                datatype = runtime.predict_datatype
                data = predicted if datatype == "INT64" else predicted.astype(str)
                outputs.append({"name": "predict", "datatype": datatype, "data": data})
            elif output == "predict_proba":
                outputs.append({"name": "predict_proba", "datatype": "FP64", "data": proba})
            else:
                outputs.append({"name": "explanation", "datatype": "FP64", "data": runtime.explain(X),
                                "parameters": self.explanation_parameters})
        return outputs


@functools.cache
def batch_workers() -> ThreadPoolExecutor:
    """The process's threads for heavy requests: one per CPU it may use, each with one OpenMP thread, so that
    concurrent batches share the cores instead of oversubscribing them (scikit-learn's predictor releases the GIL
    while it computes)."""
    from glassbox.serving.runtime import ModelRuntime

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # macOS
    return ThreadPoolExecutor(max_workers=cpus, thread_name_prefix="glassbox-batch",
                              initializer=ModelRuntime.limit_threads)
