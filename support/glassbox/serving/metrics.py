"""Prometheus metrics of the model server, served at ``/metrics`` (text format).

=========================================  =========  ==============================================================
metric                                     type       labels, meaning
=========================================  =========  ==============================================================
``glassbox_requests_total``                counter    ``endpoint``, ``code``: every answered request
``glassbox_request_errors_total``          counter    ``endpoint``, ``code``: requests answered 4xx or 5xx
``glassbox_request_duration_seconds``      histogram  ``endpoint``: time from request to response, in the server
``glassbox_predictions_total``             counter    ``class``: rows predicted, by predicted class
``glassbox_inference_rows``                histogram  rows per inference request
``glassbox_explained_rows_total``          counter    rows for which SHAP contributions were returned
``glassbox_api_key_refreshes_total``       counter    ``outcome`` (ok, changed, error): re-reads of the API key
``glassbox_api_key_version``               gauge      which key is in use: 1 for the first read, +1 at each change
                                                      (the server sees the rendered file, not Vault); never the key
``glassbox_model_info``                    gauge      1, labelled with ``model``, ``version``, ``manifest_sha256``,
                                                      ``compiled`` (whether the compiled tree path is in use)
``process_*``                              various    CPU, memory, open files of the server process
=========================================  =========  ==============================================================

``endpoint`` is the route's name (``infer``, ``model_metadata``, ``ready``...), never the raw path, so that
the number of series stays bounded whatever clients send. Each server has its own registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["ServerMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025,
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class ServerMetrics:
    """The server's metrics on a registry of its own; the per-request calls are cheap (children cached)."""

    def __init__(self):
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        self._requests = Counter("glassbox_requests", "Requests answered, by endpoint and HTTP status code.",
                                 ["endpoint", "code"], registry=registry)
        self._errors = Counter("glassbox_request_errors", "Requests answered with a 4xx or 5xx status.",
                               ["endpoint", "code"], registry=registry)
        self._latency = Histogram("glassbox_request_duration_seconds", "Time from request to response.",
                                  ["endpoint"], buckets=_LATENCY_BUCKETS, registry=registry)
        self._predictions = Counter("glassbox_predictions", "Rows predicted, by predicted class.", ["class"],
                                    registry=registry)
        self._rows = Histogram("glassbox_inference_rows", "Rows per inference request.", buckets=_ROW_BUCKETS,
                               registry=registry)
        self._explained = Counter("glassbox_explained_rows", "Rows explained with SHAP contributions.",
                                  registry=registry)
        self._refreshes = Counter("glassbox_api_key_refreshes", "Re-reads of the API key, by outcome.",
                                  ["outcome"], registry=registry)
        self._key_version = Gauge("glassbox_api_key_version", "Which API key is in use: 1, 2, ... since start (not the key).",
                                  registry=registry)
        self._model = Gauge("glassbox_model_info", "The model being served (always 1).",
                            ["model", "version", "manifest_sha256", "compiled"], registry=registry)
        self._children: dict = {}
        self._class_children: dict = {}

    def model(self, name: str, version: str, manifest_sha256: str, compiled: bool) -> None:
        """Label the model being served; a reloaded model replaces the previous one's series."""
        self._model.clear()
        self._model.labels(name, version, manifest_sha256, str(compiled).lower()).set(1)

    def request(self, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        children = self._children.get((endpoint, code))
        if children is None:
            children = self._children[(endpoint, code)] = (
                self._requests.labels(endpoint, str(code)),
                self._errors.labels(endpoint, str(code)) if code >= 400 else None,
                self._latency.labels(endpoint),
            )
        requests, errors, latency = children
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def predictions(self, classes, counts, explained_rows: int = 0) -> None:
        """Count predicted rows per class (``classes`` and ``counts`` as from ``numpy.unique``)."""
        total = 0
        for label, count in zip(classes, counts):
            child = self._class_children.get(label)
            if child is None:
                child = self._class_children[label] = self._predictions.labels(str(label))
            child.inc(int(count))
            total += int(count)
        self._rows.observe(total)
        if explained_rows:
            self._explained.inc(explained_rows)

    def key_refresh(self, outcome: str, version: int | None = None) -> None:
        self._refreshes.labels(outcome).inc()
        if version is not None:
            self._key_version.set(version)

    def render(self) -> bytes:
        return generate_latest(self.registry)
