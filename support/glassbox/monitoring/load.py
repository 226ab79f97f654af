"""Load: bounded Open Inference Protocol requests against a server on this machine."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import orjson
import pandas as pd

MAX_REQUESTS = 200_000
MAX_DURATION = 120.0  # seconds
MAX_CONCURRENCY = 64


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


def _loopback(url: str) -> None:
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


class AiohttpSender:
    """Every worker's requests through one ``aiohttp.ClientSession``: a keep-alive pool of ``concurrency`` connections.

    aiohttp rather than httpx (which the labs call the server with): measured with ``benchmarks/load_client.py``,
    httpx's asyncio client reaches about a fifth of what the server answers at 8 connections, and its own queueing
    shows up as latency; aiohttp reaches 0.7 to 1.2 times the benchmarks' raw sender.

    A sender is what :func:`run_load` sends with. Another one (the benchmarks' raw asyncio client) needs the same
    three things: ``failures`` (the exceptions that mean "the connection failed": status 0), ``send`` (one
    request on the worker ``slot``'s connection, returning the HTTP status) and ``aclose``.
    """

    failures: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, asyncio.TimeoutError)

    def __init__(self, url: str, method: str, concurrency: int, timeout: float, tls: ssl.SSLContext | None):
        connector = aiohttp.TCPConnector(limit=concurrency, ssl=tls if tls is not None else True)
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout),
                                              headers={"Content-Type": "application/json"})
        self._url, self._method = url, method

    async def send(self, slot: int, body: bytes, key: str | None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else None
        async with self._session.request(self._method, self._url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def aclose(self) -> None:
        await self._session.close()


def run_load(url: str, bodies: Sequence[bytes] | bytes, *, concurrency: int = 8, requests: int | None = None,
             duration: float | None = None, api_key: str | KeyCaller | None = None, method: str = "POST",
             timeout: float = 10.0, ok_statuses: Iterable[int] = (200,), stop: threading.Event | None = None,
             progress: bool = False, ca_file=None, sender: type = AiohttpSender) -> LoadResult:
    """Send requests to ``url`` over ``concurrency`` keep-alive connections and measure every one.

    ``bodies`` are sent in turn (one body or a list: different rows, or traffic to replay in order);
    the run stops after ``requests`` requests or ``duration`` seconds, whichever comes first (at least one
    is required; at most :data:`MAX_REQUESTS` and :data:`MAX_DURATION`), or when ``stop`` is set.
    ``api_key`` is a fixed key or a :class:`KeyCaller` that picks up a rotated key on a 401.
    Only loopback addresses are accepted; an ``https`` URL is verified against ``ca_file`` (the course CA).
    Requests go through aiohttp (:class:`AiohttpSender`); ``sender`` swaps in another client.
    """
    _loopback(url)
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
    run = _Run(lambda: sender(url, method, concurrency, timeout, tls), bodies, concurrency,
               requests or MAX_REQUESTS, min(duration or MAX_DURATION, MAX_DURATION), api_key, tuple(ok_statuses),
               stop, progress)
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
    """One load run: an event loop of its own, ``concurrency`` workers sharing one sender."""

    def __init__(self, make_sender, bodies, concurrency, max_requests, max_duration, api_key, ok_statuses, stop,
                 progress):
        self.make_sender = make_sender
        self.bodies, self.concurrency = bodies, concurrency
        self.max_requests, self.max_duration = max_requests, max_duration
        self.caller = api_key if isinstance(api_key, KeyCaller) else None
        self.fixed_key = api_key if isinstance(api_key, str) else None
        self.ok_statuses, self.stop = ok_statuses, stop
        self.progress = progress
        self.issued = 0
        self.retried = 0
        self.errors: list[str] = []
        self.records: list[tuple[float, float, int]] = []

    def _keys(self) -> list[str | None]:
        if self.caller is not None:
            return self.caller.keys
        return [self.fixed_key]

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
        sender = self.make_sender()
        try:
            await asyncio.gather(*(self._worker(slot, sender, t0, bar) for slot in range(self.concurrency)))
        finally:
            await sender.aclose()
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

    async def _worker(self, slot: int, sender, t0: float, bar) -> None:
        loop = asyncio.get_running_loop()
        while (index := self._take()) is not None:
            body = self.bodies[index % len(self.bodies)]
            start = time.perf_counter()
            keys = self._keys()
            key, tried, refreshed = keys[0], [], False
            while True:
                try:
                    status = await sender.send(slot, body, key)
                except sender.failures as error:
                    status = 0
                    if len(self.errors) < 20:
                        self.errors.append(_describe(error))
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


def _describe(error: BaseException) -> str:
    """``Type: message``, with the operating system's error underneath it (``ConnectionRefusedError``, say)."""
    chain, seen = [], error
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    system = [e for e in chain[1:] if isinstance(e, OSError) and type(e) is not OSError]
    text = f"{type(error).__name__}: {error}"
    if system:
        text += f" ({type(system[-1]).__name__}: {system[-1]})"
    return text[:200]


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()
