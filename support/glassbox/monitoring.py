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

The load generator speaks HTTP/1.1 over keep-alive connections with asyncio (so one Python process can keep
a fast server busy), refuses any address that is not loopback, and stops at ``requests`` or ``duration``,
whichever comes first, both capped. Callers that hold an API key from Vault may pass a
:class:`KeyCaller`: when the server answers 401 it re-reads the key and retries with the keys it knows,
newest first, as a real client that picks up a rotated key would.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import ssl
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np
import orjson
import pandas as pd

__all__ = [
    "LoadResult", "KeyCaller", "BackgroundLoad", "run_load", "v2_request", "MAX_REQUESTS", "MAX_DURATION",
    "Metrics", "Scraper", "scrape", "bucket_rates", "histogram_quantile",
    "psi", "ks", "DriftAlert", "DriftMonitor", "CanaryVerdict", "canary_verdict",
]

MAX_REQUESTS = 200_000
MAX_DURATION = 120.0  # seconds
MAX_CONCURRENCY = 64


# =========================================================================================================
# 1. load
# =========================================================================================================

def v2_request(rows, outputs: Sequence[str] | None = None, name: str = "input-0",
               parameters: Mapping | None = None) -> bytes:
    """The JSON body of an Open Inference Protocol (V2) inference request for ``rows``.

    One ``FP64`` tensor of shape ``[n_rows, n_features]`` in row-major order (the protocol's plain JSON form,
    which every V2 server accepts); ``outputs`` names the requested outputs (for example
    ``["predict_proba"]``) and ``parameters`` adds request-level parameters.
    """
    values = np.asarray(rows, dtype=float)
    if values.ndim == 1:
        values = values[None, :]
    request: dict = {"inputs": [{"name": name, "shape": list(values.shape), "datatype": "FP64",
                                 "data": values.ravel().tolist()}]}
    if outputs:
        request["outputs"] = [{"name": output} for output in outputs]
    if parameters:
        request["parameters"] = dict(parameters)
    return orjson.dumps(request)


class KeyCaller:
    """A caller's API key, read from wherever the caller gets it (Vault), picked up again when refused.

    ``read_key`` returns the current key (for example ``lambda: bootstrap.read_api_key(client)``). The caller
    keeps the newest key it has seen and the one before, so that whichever of the two the server accepts at
    a given moment of a rotation, a retry finds it. Re-reads are rate-limited (``min_interval`` seconds).
    The key is never shown: ``repr`` gives the number of keys held only.
    """

    def __init__(self, read_key: Callable[[], str], min_interval: float = 0.05):
        self._read = read_key
        self._min_interval = min_interval
        self._keys: list[str] = [read_key()]
        self._last_read = time.monotonic()
        self._lock = threading.Lock()
        self.refreshes = 0  # how many times a re-read found a new key

    @property
    def keys(self) -> list[str]:
        """The keys known, newest first (at most two)."""
        return list(self._keys)

    def refresh(self) -> list[str]:
        """Re-read the key (unless read very recently); return the keys known, newest first."""
        with self._lock:
            if time.monotonic() - self._last_read >= self._min_interval:
                key = self._read()
                self._last_read = time.monotonic()
                if key != self._keys[0]:
                    self._keys = [key, self._keys[0]]
                    self.refreshes += 1
            return list(self._keys)

    def __repr__(self) -> str:
        return f"KeyCaller(<{len(self._keys)} key(s) held>, refreshes={self.refreshes})"


@dataclass
class LoadResult:
    """What a load run measured: one row per request (start offset, latency, final status).

    ``status`` 0 means the connection failed (refused, reset, timed out). A request counts as *failed*
    unless its final status is in ``ok_statuses`` (200 by default); ``retried`` counts requests that first
    met a 401 and then succeeded with a key the caller picked up.
    """

    started: np.ndarray        # seconds from the start of the run
    latency: np.ndarray        # seconds, including any retry
    status: np.ndarray         # final HTTP status, 0 for a connection error
    duration: float
    concurrency: int
    retried: int = 0
    ok_statuses: tuple[int, ...] = (200,)
    errors: list[str] = field(default_factory=list)   # a few sample error messages, no secrets
    origin: float = 0.0        # time.perf_counter() when the run started (``started`` counts from here)

    def offset(self, moment: float) -> float:
        """Seconds into the run of ``moment``, a ``time.perf_counter()`` reading (for marking events on plots)."""
        return moment - self.origin

    @property
    def requests(self) -> int:
        return int(len(self.status))

    @property
    def ok(self) -> int:
        return int(np.isin(self.status, self.ok_statuses).sum())

    @property
    def failed(self) -> int:
        return self.requests - self.ok

    @property
    def statuses(self) -> dict[int, int]:
        return dict(sorted(Counter(self.status.tolist()).items()))

    @property
    def throughput(self) -> float:
        """Completed requests per second over the run."""
        return self.requests / self.duration if self.duration > 0 else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the latency of successful requests, in milliseconds."""
        good = self.latency[np.isin(self.status, self.ok_statuses)]
        return float(np.percentile(good, q) * 1000) if len(good) else float("nan")

    def summary(self) -> dict:
        """Counts and latency figures (ms) as a plain dict."""
        return {
            "requests": self.requests, "ok": self.ok, "failed": self.failed, "retried": self.retried,
            "throughput": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 3), "p95_ms": round(self.percentile(95), 3),
            "p99_ms": round(self.percentile(99), 3),
        }

    def timeline(self, bin_seconds: float = 0.5) -> pd.DataFrame:
        """Per time bin: throughput (requests/s), error rate, and latency p50/p95/p99 (ms)."""
        bins = np.floor(self.started / bin_seconds).astype(int)
        frame = pd.DataFrame({"bin": bins, "latency_ms": self.latency * 1000,
                              "failed": ~np.isin(self.status, self.ok_statuses)})
        grouped = frame.groupby("bin")
        out = pd.DataFrame({
            "time": (grouped.size().index + 0.5) * bin_seconds,
            "throughput": grouped.size().to_numpy() / bin_seconds,
            "error_rate": grouped["failed"].mean().to_numpy(),
            **{f"p{q}": grouped["latency_ms"].quantile(q / 100).to_numpy() for q in (50, 95, 99)},
        })
        return out.reset_index(drop=True)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"LoadResult({s['requests']} requests, {s['failed']} failed, {s['throughput']} req/s, "
                f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms)")


def _loopback(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"only http and https to this machine are supported, not {parts.scheme!r}")
    host = parts.hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise ValueError(f"cannot resolve {host!r}") from error
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValueError(f"load is only ever sent to this machine (loopback), not to {host!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, parts.port or (443 if parts.scheme == "https" else 80), path


def run_load(url: str, bodies: Sequence[bytes] | bytes, *, concurrency: int = 8, requests: int | None = None,
             duration: float | None = None, api_key: str | KeyCaller | None = None, method: str = "POST",
             timeout: float = 10.0, ok_statuses: Iterable[int] = (200,), stop: threading.Event | None = None,
             progress: bool = False, ca_file=None) -> LoadResult:
    """Send requests to ``url`` over ``concurrency`` keep-alive connections and measure every one.

    ``bodies`` are sent in turn (one body or a list: different rows, or traffic to replay in order);
    the run stops after ``requests`` requests or ``duration`` seconds, whichever comes first (at least one
    is required; at most :data:`MAX_REQUESTS` and :data:`MAX_DURATION`), or when ``stop`` is set.
    ``api_key`` is a fixed key or a :class:`KeyCaller` that picks up a rotated key on a 401.
    Only loopback addresses are accepted; an ``https`` URL is verified against ``ca_file`` (the course CA).
    """
    host, port, path = _loopback(url)
    if requests is None and duration is None:
        raise ValueError("give `requests`, `duration` or both: load is always bounded")
    if requests is not None and not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"`requests` must be between 1 and {MAX_REQUESTS}")
    if duration is not None and not 0 < duration <= MAX_DURATION:
        raise ValueError(f"`duration` must be positive and at most {MAX_DURATION} s")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"`concurrency` must be between 1 and {MAX_CONCURRENCY}")
    bodies = [bodies] if isinstance(bodies, (bytes, bytearray)) else list(bodies)
    if not bodies:
        raise ValueError("no request body to send")
    tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if url.startswith("https") else None
    run = _Run(host, port, path, method, bodies, concurrency, requests or MAX_REQUESTS,
               min(duration or MAX_DURATION, MAX_DURATION), api_key, timeout, tuple(ok_statuses), stop, progress,
               tls)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run.execute()
    # called from a running event loop (a notebook's): the run gets a thread and a loop of its own
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = run.execute()
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=target, name="glassbox-load", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class BackgroundLoad:
    """:func:`run_load` on a thread of its own, so that something can happen while the load runs::

        with monitoring.BackgroundLoad(url, bodies, duration=6, api_key=caller) as load:
            ...                    # swap the model, rotate the key
        load.result.failed         # 0

    Leaving the block waits for the run to finish (it is bounded); :meth:`stop` ends it early.
    :meth:`mark` notes when something happened; after the run, :attr:`marks` gives it in seconds into the run.
    """

    def __init__(self, url: str, bodies, **kwargs):
        self._stop = threading.Event()
        self._kwargs = dict(kwargs, stop=self._stop)
        self._url, self._bodies = url, bodies
        self.result: LoadResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._target, name="glassbox-load", daemon=True)
        self._started = threading.Event()
        self._marks: dict[str, float] = {}

    def mark(self, label: str) -> None:
        """Note that ``label`` (a swap, a rotation) happens now."""
        self._marks[label] = time.perf_counter()

    @property
    def marks(self) -> dict[str, float]:
        """Each :meth:`mark`, in seconds from the start of the run (empty until the run has finished)."""
        if self.result is None:
            return {}
        return {label: self.result.offset(moment) for label, moment in self._marks.items()}

    def _target(self):
        try:
            self.result = run_load(self._url, self._bodies, **self._kwargs)
        except BaseException as error:  # handed to the caller by join()
            self._error = error

    def start(self) -> "BackgroundLoad":
        self._thread.start()
        return self

    def stop(self) -> LoadResult:
        """End the run now and return its result."""
        self._stop.set()
        return self.join()

    def join(self) -> LoadResult:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.result

    def __enter__(self) -> "BackgroundLoad":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.join()


class _Run:
    """One load run: an event loop of its own, ``concurrency`` workers, each with one connection."""

    def __init__(self, host, port, path, method, bodies, concurrency, max_requests, max_duration, api_key,
                 timeout, ok_statuses, stop, progress, tls=None):
        self.host, self.port, self.path, self.method = host, port, path, method
        self.tls = tls
        self.bodies, self.concurrency = bodies, concurrency
        self.max_requests, self.max_duration = max_requests, max_duration
        self.caller = api_key if isinstance(api_key, KeyCaller) else None
        self.fixed_key = api_key if isinstance(api_key, str) else None
        self.timeout, self.ok_statuses, self.stop = timeout, ok_statuses, stop
        self.progress = progress
        self.issued = 0
        self.retried = 0
        self.errors: list[str] = []
        self.records: list[tuple[float, float, int]] = []
        self._prefixes: dict[str, bytes] = {}

    # -- request bytes ------------------------------------------------------------------------------------
    def _request(self, body: bytes, key: str | None) -> bytes:
        prefix = self._prefixes.get(key or "")
        if prefix is None:
            lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                     "Content-Type: application/json", "Connection: keep-alive"]
            if key:
                lines.append(f"Authorization: Bearer {key}")
            prefix = ("\r\n".join(lines) + "\r\n").encode("latin-1")
            self._prefixes = {key or "": prefix}  # only the current key's prefix is kept
        return prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def _keys(self) -> list[str | None]:
        if self.caller is not None:
            return self.caller.keys
        return [self.fixed_key]

    # -- the run ------------------------------------------------------------------------------------------
    def execute(self) -> LoadResult:
        loop = _new_loop()
        try:
            t0 = time.perf_counter()
            loop.run_until_complete(self._main(t0))
            elapsed = time.perf_counter() - t0
        finally:
            loop.close()
        records = np.array(self.records, dtype=float).reshape(-1, 3)
        order = np.argsort(records[:, 0], kind="stable")
        records = records[order]
        return LoadResult(started=records[:, 0], latency=records[:, 1], status=records[:, 2].astype(int),
                          duration=elapsed, concurrency=self.concurrency, retried=self.retried,
                          ok_statuses=self.ok_statuses, errors=self.errors[:5], origin=t0)

    async def _main(self, t0: float) -> None:
        self.deadline = t0 + self.max_duration
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=None if self.max_requests == MAX_REQUESTS else self.max_requests,
                       desc="requests", unit="req", leave=False)
        workers = [asyncio.ensure_future(self._worker(t0, bar)) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            if bar is not None:
                bar.close()

    def _take(self) -> int | None:
        if self.issued >= self.max_requests or time.perf_counter() >= self.deadline:
            return None
        if self.stop is not None and self.stop.is_set():
            return None
        index = self.issued
        self.issued += 1
        return index

    async def _worker(self, t0: float, bar) -> None:
        connection: _Connection | None = None
        loop = asyncio.get_running_loop()
        while (index := self._take()) is not None:
            body = self.bodies[index % len(self.bodies)]
            start = time.perf_counter()
            status = 0
            keys = self._keys()
            key, tried, refreshed = keys[0], [], False
            while True:
                try:
                    if connection is None:
                        connection = await _Connection.open(self.host, self.port, self.timeout, self.tls)
                    status = await connection.send(self._request(body, key), self.timeout)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                    status = 0
                    if len(self.errors) < 20:
                        self.errors.append(f"{type(error).__name__}: {error}"[:200])
                    if connection is not None:
                        connection.close()
                        connection = None
                    break
                tried.append(key)
                if status != 401 or self.caller is None:
                    break
                # refused: pick the key up again (off the event loop), then try the keys known, newest first
                if not refreshed:
                    keys = await loop.run_in_executor(None, self.caller.refresh)
                    refreshed = True
                remaining = [k for k in keys if k not in tried]
                if not remaining:
                    break
                key = remaining[0]
            if len(tried) > 1 and status in self.ok_statuses:
                self.retried += 1
            self.records.append((start - t0, time.perf_counter() - start, status))
            if bar is not None:
                bar.update(1)
        if connection is not None:
            connection.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()


class _Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read the status and the body (length-delimited)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, timeout: float, tls=None) -> "_Connection":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None), timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes, timeout: float) -> int:
        self.writer.write(request)
        return await asyncio.wait_for(self._response(), timeout)

    async def _response(self) -> int:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        if close:
            raise ConnectionResetError(f"the server closed the connection after a {status}")
        return status

    def close(self) -> None:
        self.writer.close()


# =========================================================================================================
# 2. metrics
# =========================================================================================================

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


# =========================================================================================================
# 3. drift
# =========================================================================================================

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


# =========================================================================================================
# 4. canary
# =========================================================================================================

@dataclass(frozen=True)
class CanaryVerdict:
    """A canary's outcome: ``promote`` or not, the reasons, and the live metrics it was decided on."""

    promote: bool
    reasons: list[str]
    table: pd.DataFrame       # per segment and arm: rows, error rate, p50/p99 latency (ms), log loss

    @property
    def decision(self) -> str:
        return "promote" if self.promote else "roll back"

    def __str__(self) -> str:
        return f"{self.decision}: " + ("; ".join(self.reasons) if self.reasons else "no worse than stable anywhere")


def canary_verdict(live: pd.DataFrame, *, max_loss_increase: float = 0.02, max_error_increase: float = 0.01,
                   max_latency_ratio: float = 3.0, latency_slack_ms: float = 25.0,
                   min_rows: int = 50) -> CanaryVerdict:
    """Decide a canary from live traffic: promote only if the canary is no worse than stable in every segment.

    ``live`` has one row per row of traffic: ``arm`` ("stable" or "canary"), ``segment``, ``ok`` (its request
    succeeded), ``latency_ms`` (of its request) and, where outcomes are known, ``y`` (0/1) and ``p`` (the
    answering model's probability of 1). With ``p_stable``, the stable model's probability for the *same* row
    (a shadow request), the log losses are compared on the canary's own rows, which removes the luck of which
    rows each arm drew; without it, each arm's own rows are compared.

    Per segment, the canary is rolled back when its error rate exceeds stable's by more than
    ``max_error_increase``, its log loss exceeds stable's by more than ``max_loss_increase``, or its median
    latency exceeds ``max_latency_ratio`` times stable's plus ``latency_slack_ms`` (the median, not a tail
    quantile: a few dozen requests on a shared machine make p99 a coin toss; the table shows both); and
    when a segment gave the canary fewer than ``min_rows`` rows (no evidence is not good evidence).
    """
    from sklearn.metrics import log_loss

    def loss(y, p) -> float:
        keep = np.isfinite(np.asarray(p, dtype=float)) & np.isfinite(np.asarray(y, dtype=float))
        if not keep.any():
            return float("nan")
        return float(log_loss(np.asarray(y)[keep].astype(int), np.clip(np.asarray(p, dtype=float)[keep], 1e-6,
                                                                          1 - 1e-6), labels=[0, 1]))

    labelled = {"y", "p"} <= set(live.columns)
    paired = labelled and "p_stable" in live.columns
    rows = []
    for (segment, arm), part in live.groupby(["segment", "arm"], sort=True):
        ok = part["ok"].astype(bool)
        row = {"segment": segment, "arm": arm, "rows": len(part), "error rate": 1 - ok.mean(),
               "p50 ms": float(np.percentile(part["latency_ms"], 50)),
               "p99 ms": float(np.percentile(part["latency_ms"], 99)),
               "log loss": loss(part.loc[ok, "y"], part.loc[ok, "p"]) if labelled else float("nan")}
        if paired:
            row["stable, same rows"] = loss(part.loc[ok, "y"], part.loc[ok, "p_stable"]) if arm == "canary" else \
                row["log loss"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index(["segment", "arm"]).sort_index()
    reasons = []
    for segment in sorted(set(live["segment"])):
        if (segment, "stable") not in table.index or (segment, "canary") not in table.index:
            reasons.append(f"{segment}: one arm saw no traffic")
            continue
        stable, canary = table.loc[(segment, "stable")], table.loc[(segment, "canary")]
        if canary["rows"] < min_rows:
            reasons.append(f"{segment}: too few rows to judge ({int(canary['rows'])} on the canary)")
        if canary["error rate"] > stable["error rate"] + max_error_increase:
            reasons.append(f"{segment}: error rate {canary['error rate']:.1%} vs {stable['error rate']:.1%}")
        if canary["p50 ms"] > max_latency_ratio * stable["p50 ms"] + latency_slack_ms:
            reasons.append(f"{segment}: median latency {canary['p50 ms']:.0f} ms vs {stable['p50 ms']:.0f} ms")
        if labelled:
            baseline = canary["stable, same rows"] if paired else stable["log loss"]
            if not canary["log loss"] <= baseline + max_loss_increase:
                reasons.append(f"{segment}: log loss {canary['log loss']:.3f} vs {baseline:.3f}")
    return CanaryVerdict(not reasons, reasons, table)
