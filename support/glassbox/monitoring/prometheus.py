"""Metrics: Prometheus text format, scraped and turned into rates and latency quantiles."""

from __future__ import annotations

import math
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import pandas as pd

from .load import _loopback


@dataclass(frozen=True)
class Metrics:
    """One scrape of a Prometheus endpoint: every sample as ``(name, labels) -> value``, and when."""

    time: float
    samples: Mapping[tuple[str, frozenset], float]

    def value(self, name: str, **labels) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0.0 if none)."""
        wanted = set(labels.items())
        return float(sum(v for (n, tags), v in self.samples.items() if n == name and wanted <= tags))

    def names(self) -> list[str]:
        return sorted({n for n, _ in self.samples})

    def labels(self, name: str, label: str) -> list[str]:
        """The values ``label`` takes among the samples called ``name``."""
        return sorted({dict(tags)[label] for n, tags in self.samples if n == name and label in dict(tags)})

    def buckets(self, histogram: str, **labels) -> list[tuple[float, float]]:
        """A histogram's cumulative buckets ``[(upper bound, count), ...]``, summed over other labels."""
        wanted = set(labels.items())
        sums: dict[float, float] = {}
        for (n, tags), v in self.samples.items():
            if n == histogram + "_bucket" and wanted <= tags:
                bound = float(dict(tags)["le"])
                sums[bound] = sums.get(bound, 0.0) + v
        return sorted(sums.items())


def scrape(url: str, timeout: float = 5.0, ca_file=None) -> Metrics:
    """Fetch and parse a Prometheus text-format endpoint (``/metrics``) on this machine (``https``: verified
    against ``ca_file``)."""
    from prometheus_client.parser import text_string_to_metric_families

    _loopback(url)
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if url.startswith("https") else None
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        text = response.read().decode("utf-8")
    samples: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return Metrics(time.time(), samples)


def bucket_rates(before: Metrics, after: Metrics, histogram: str, **labels) -> list[tuple[float, float]]:
    """Per-second increase of each cumulative bucket between two scrapes, summed over the other labels.

    The PromQL ``sum by (le) (rate(<histogram>_bucket[w]))`` for the window ``w`` between ``before`` and
    ``after`` (without the extrapolation to the window's edges that Prometheus's ``rate`` adds), as
    ``[(upper bound, observations per second), ...]``: the input of :func:`histogram_quantile`.
    """
    span = after.time - before.time
    if span <= 0:
        raise ValueError("`after` must be scraped after `before`")
    earlier = dict(before.buckets(histogram, **labels))
    return [(bound, (count - earlier.get(bound, 0.0)) / span) for bound, count in after.buckets(histogram, **labels)]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile (0..1) from cumulative histogram buckets, interpolated as Prometheus does.

    ``buckets`` are ``[(upper bound, cumulative count or rate), ...]`` (rates from :func:`bucket_rates` give
    the same quantile as counts: only proportions matter). The quantile's rank is ``q`` times the ``+Inf``
    bucket; it falls into the first bucket that reaches it and is interpolated linearly between that bucket's
    lower and upper bound (the lowest bucket starts at 0). Returns NaN without observations; the upper bound of the highest finite bucket when the quantile lies in
    the ``+Inf`` bucket.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q is a fraction between 0 and 1 (0.99 for p99), not {q}")
    if not buckets:
        return float("nan")
    buckets = sorted(buckets)
    total = buckets[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound


class Scraper:
    """Scrape ``url`` every ``interval`` seconds on a background thread (a context manager).

    ``snapshots`` holds the :class:`Metrics` taken; :meth:`rates` turns successive ones into a table.
    At most ``max_snapshots`` are kept (the run is bounded like the load).
    """

    def __init__(self, url: str, interval: float = 0.5, max_snapshots: int = 2000):
        _loopback(url)
        self.url, self.interval, self.max_snapshots = url, interval, max_snapshots
        self.snapshots: list[Metrics] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glassbox-scraper", daemon=True)

    def _loop(self):
        while len(self.snapshots) < self.max_snapshots:
            try:
                self.snapshots.append(scrape(self.url, timeout=self.interval * 4 + 1))
            except OSError:
                self.errors += 1
            if self._stop.wait(self.interval):
                break
        try:  # a last one, so the end of the run is seen
            self.snapshots.append(scrape(self.url))
        except OSError:
            self.errors += 1

    def __enter__(self) -> "Scraper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def rates(self, histogram: str, errors: Callable[[Metrics], float] | None = None,
              quantiles: Sequence[float] = (0.5, 0.95, 0.99), **labels) -> pd.DataFrame:
        """Between successive scrapes: throughput (observations of ``histogram`` per second), the error rate
        (the increase of ``errors(metrics)`` over the increase in requests), and latency quantiles (ms) from
        the histogram's bucket increases."""
        rows = []
        t0 = self.snapshots[0].time if self.snapshots else 0.0
        for before, after in zip(self.snapshots, self.snapshots[1:]):
            span = after.time - before.time
            count = after.value(histogram + "_count", **labels) - before.value(histogram + "_count", **labels)
            if span <= 0:
                continue
            row = {"time": round(after.time - t0, 3), "throughput": count / span}
            if errors is not None:
                row["error_rate"] = (errors(after) - errors(before)) / count if count else 0.0
            window = bucket_rates(before, after, histogram, **labels)
            for q in quantiles:
                row[f"p{round(q * 100):d}"] = histogram_quantile(q, window) * 1000
            rows.append(row)
        return pd.DataFrame(rows)
