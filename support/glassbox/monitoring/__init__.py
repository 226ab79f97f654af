"""Operating the model server: load, metrics and drift (lab 09 and the benchmark).

Three small tools, each usable on its own (and a canary's verdict from live metrics, :func:`canary_verdict`)::

    from glassbox import monitoring

    # 1. load: a bounded number of Open Inference Protocol requests against a server on this machine
    body = monitoring.v2_request(X_test.iloc[:1])
    result = monitoring.run_load(url + "/v2/models/credit/infer", [body], concurrency=8, requests=2000,
                                 api_key=key)
    result.throughput, result.failed, result.percentile(50)

    # 2. metrics: Prometheus text format, scraped and turned into rates and latency quantiles
    with monitoring.Scraper(url + "/metrics", interval=0.5) as scraper:
        monitoring.run_load(...)
    scraper.rates("glassbox_request_duration_seconds")     # a DataFrame: time, throughput, p50, p95, p99

    # 3. drift: per feature, a sliding window of live rows against the training data
    monitor = monitoring.DriftMonitor(X_train, window=300, method="psi")
    alerts = monitor.update(batch)                          # DriftAlert for each feature that newly drifted

The load generator sends with aiohttp's client over a pool of keep-alive connections (the benchmarks swap
in a faster, hand-written sender: ``benchmarks/raw_http.py``), refuses any address that is not loopback, and stops at ``requests`` or ``duration``,
whichever comes first, both capped. Callers that hold an API key from Vault may pass a
:class:`KeyCaller`: when the server answers 401 it re-reads the key and retries with the keys it knows,
newest first, as a real client that picks up a rotated key would.
"""

from .canary import CanaryVerdict, canary_verdict
from .drift import DriftAlert, DriftMonitor, ks, psi
from .load import (MAX_DURATION, MAX_REQUESTS, BackgroundLoad, AiohttpSender, KeyCaller, LoadResult, run_load,
                   v2_request)
from .prometheus import Metrics, Scraper, bucket_rates, histogram_quantile, scrape

__all__ = [
    "LoadResult", "KeyCaller", "BackgroundLoad", "AiohttpSender", "run_load", "v2_request", "MAX_REQUESTS", "MAX_DURATION",
    "Metrics", "Scraper", "scrape", "bucket_rates", "histogram_quantile",
    "psi", "ks", "DriftAlert", "DriftMonitor", "CanaryVerdict", "canary_verdict",
]
