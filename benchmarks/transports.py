"""The benchmark's matrix: one server, three transports, three batch sizes, at a fixed number of connections.

Transports: ``REST JSON`` (the protocol's JSON tensors, driven by :func:`glassbox.monitoring.run_load` with :class:`raw_http.RawSender`),
``REST binary`` (Triton's binary tensor extension, in and out, as ``tritonclient.http`` sends it by default) and
``gRPC`` (``tritonclient.grpc``, raw tensor contents). The two tritonclient loads run one client per connection,
each in a thread of its own, sending the same prepared request again and again for the measurement's duration.

Every cell is first checked: one request of two rows must give the model's own probabilities; a server that
refuses the transport gets the cell marked unsupported, with its one-line reason, instead of figures.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from raw_http import RawSender

TRANSPORTS = ("REST JSON", "REST binary", "gRPC")
BATCHES = (1, 64, 1024)


@dataclass
class Server:
    """A server under test: its addresses, its model's name, the output it answers ``predict_proba`` under
    (``None``: ask for no output by name, the server's default), its API key (or none), and whether it serves
    the course's ``explanation`` output."""

    name: str
    url: str
    grpc_target: str | None
    model: str
    output: str | None
    key: str | None = None
    explains: bool = False


def measure_matrix(server: Server, rows: np.ndarray, expected, *, concurrency: int, duration: float,
                   warmup: float, done: dict | None = None, say=print) -> dict:
    """``{(transport, batch, explained): figures or {"unsupported": reason}}`` for ``server``.

    ``rows`` is the pool the batches are cut from, ``expected(x)`` the model's ``predict_proba``; ``done`` holds
    cells already measured elsewhere in the run (reused, not measured twice). With ``server.explains``, the JSON
    cells are measured a second time with the ``explanation`` output.
    """
    cells = dict(done or {})
    for transport in TRANSPORTS:
        reason = _check(server, transport, rows[:2], expected(rows[:2]))
        for batch in BATCHES:
            for explained in ((False, True) if server.explains and transport == "REST JSON" else (False,)):
                cell = (transport, batch, explained)
                if cell in cells:
                    continue
                if reason:
                    cells[cell] = {"unsupported": reason}
                    continue
                batches = _batches(rows, batch)
                _load(server, transport, batches, explained, concurrency, warmup)
                cells[cell] = _load(server, transport, batches, explained, concurrency, duration) | {"batch": batch}
                f = cells[cell]
                say(f"  {server.name:>9} {transport:<11} {batch:>5} rows{' +explain' if explained else '':9} "
                    f"{f['rows_s']:>9.0f} rows/s  p50 {f['p50']:7.2f} ms  p99 {f['p99']:7.2f} ms")
    return cells


def figures(result, batch: int) -> dict:
    """A :class:`glassbox.monitoring.LoadResult` as a matrix cell: rows/s, requests/s, p50 and p99 (ms)."""
    if result.failed:
        raise SystemExit(f"{result.failed} of {result.requests} requests failed: {result.statuses} "
                         f"{result.errors[:2]}")
    return {"rows_s": result.throughput * batch, "throughput": result.throughput, "p50": result.percentile(50),
            "p99": result.percentile(99), "requests": result.requests, "batch": batch}


def _batches(rows: np.ndarray, batch: int, count: int = 8) -> list[np.ndarray]:
    """``count`` different batches of ``batch`` rows, cut from ``rows`` in turn (wrapping around)."""
    order = np.arange(batch * count) % len(rows)
    return [rows[order[i * batch:(i + 1) * batch]] for i in range(count)]


def _outputs(server: Server, explained: bool) -> list[str] | None:
    if server.output is None:
        return None
    return [server.output, "explanation"] if explained else [server.output]


def _load(server: Server, transport: str, batches, explained: bool, concurrency: int, duration: float) -> dict:
    batch = len(batches[0])
    if transport == "REST JSON":
        from glassbox import monitoring

        bodies = [monitoring.v2_request(x, outputs=_outputs(server, explained)) for x in batches]
        result = monitoring.run_load(f"{server.url}/v2/models/{server.model}/infer", bodies,
                                     concurrency=concurrency, duration=duration, api_key=server.key, timeout=60,
                                     sender=RawSender)
        return figures(result, batch)
    return _triton_load(server, transport, batches, concurrency, duration)


def _client(server: Server, transport: str):
    """A tritonclient module and client for ``transport``, and the headers that carry the API key."""
    if transport == "gRPC":
        import tritonclient.grpc as triton

        client = triton.InferenceServerClient(server.grpc_target)
    else:
        import tritonclient.http as triton

        client = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=60)
    headers = {"authorization": f"Bearer {server.key}"} if server.key else None
    return triton, client, headers


def _request(triton, server: Server, x: np.ndarray):
    """tritonclient's inputs and outputs for ``x``: binary tensors both ways (its default)."""
    tensor = triton.InferInput("input-0", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x)
    outputs = [triton.InferRequestedOutput(server.output)] if server.output else None
    return [tensor], outputs


def _check(server: Server, transport: str, x: np.ndarray, expected: np.ndarray) -> str | None:
    """``None`` when one request by ``transport`` gets the model's probabilities, else the reason, one line."""
    if transport == "REST JSON":
        return None          # the run's answer check (bench.py) covers JSON
    if transport == "gRPC" and not server.grpc_target:
        return "no gRPC endpoint"
    try:
        triton, client, headers = _client(server, transport)
        inputs, outputs = _request(triton, server, x)
        answer = client.infer(server.model, inputs, outputs=outputs, headers=headers)
        response = answer.get_response()
        first = response.outputs[0].name if transport == "gRPC" else response["outputs"][0]["name"]
        name = server.output or first
        np.testing.assert_allclose(answer.as_numpy(name), expected, rtol=1e-9)
    except AssertionError:
        raise SystemExit(f"{server.name} over {transport}: the probabilities differ from the model's")
    except Exception as error:          # a refusal: the server does not speak this transport
        return " ".join(str(error).split())[:120]
    return None


def _triton_load(server: Server, transport: str, batches, concurrency: int, duration: float) -> dict:
    """``concurrency`` threads, one tritonclient each, each sending its prepared request for ``duration``."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    deadline = [0.0]
    ready = threading.Barrier(concurrency + 1, action=lambda: deadline.__setitem__(0, time.perf_counter() + duration))

    def work(i: int) -> None:
        triton, client, headers = _client(server, transport)
        inputs, outputs = _request(triton, server, batches[i % len(batches)])
        ready.wait()
        mine = latencies[i]
        while (started := time.perf_counter()) < deadline[0]:
            try:
                client.infer(server.model, inputs, outputs=outputs, headers=headers)
            except Exception as error:
                errors.append(str(error)[:200])
                return
            mine.append(time.perf_counter() - started)
        client.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - (deadline[0] - duration)
    if errors:
        raise SystemExit(f"{server.name} over {transport}: {len(errors)} requests failed: {errors[0]}")
    times = np.concatenate([np.array(t) for t in latencies]) * 1000
    batch = len(batches[0])
    return {"rows_s": len(times) * batch / elapsed, "throughput": len(times) / elapsed,
            "p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)),
            "requests": len(times), "batch": batch}
