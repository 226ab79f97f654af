"""Load client benchmark: the hand-written asyncio HTTP/1.1 client against httpx (async), same server, same run.

    python benchmarks/load_client.py [--duration 5]

Serves the course model with glassbox.serving.LocalServer behind a fresh key file, then at 1 and 8 connections
prints requests/s, p50 and p99 (ms) for each client and the ratio httpx / hand-written.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np


def _httpx_load(url: str, body: bytes, key: str, concurrency: int, duration: float) -> dict:
    """``concurrency`` tasks sharing one httpx.AsyncClient, each posting ``body`` until ``duration`` is up."""
    import httpx

    async def run() -> dict:
        latencies: list[float] = []
        failed = 0
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, headers=headers, timeout=10.0) as client:
            start = time.perf_counter()
            deadline = start + duration

            async def worker():
                nonlocal failed
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    response = await client.post(url, content=body)
                    latencies.append(time.perf_counter() - t0)
                    failed += response.status_code != 200

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
        ms = np.asarray(latencies) * 1000
        return {"rps": len(ms) / elapsed, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                "failed": failed}

    return asyncio.run(run())


def _hand_load(url: str, body: bytes, key: str, concurrency: int, duration: float) -> dict:
    from glassbox import monitoring

    result = monitoring.run_load(url, [body], concurrency=concurrency, duration=duration, api_key=key)
    return {"rps": result.throughput, "p50": result.percentile(50), "p99": result.percentile(99),
            "failed": result.failed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per client and concurrency")
    args = parser.parse_args(argv)

    from bench import MODEL_NAME, _rows  # the benchmark's model rows, run from benchmarks/
    from glassbox import artifacts, monitoring
    from glassbox.serving import LocalServer

    model_dir = artifacts.build_course_model()
    body = monitoring.v2_request(_rows(artifacts.load(model_dir))[:1], outputs=["predict_proba"])
    with tempfile.TemporaryDirectory() as tmp:
        key = secrets.token_urlsafe(32)
        key_file = Path(tmp) / "api-key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        with LocalServer({"GLASSBOX_MODEL_DIR": str(model_dir), "GLASSBOX_API_KEY_FILE": str(key_file)}) as server:
            url = server.url + f"/v2/models/{MODEL_NAME}/infer"
            print(f"{'conns':>5} {'client':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}")
            for concurrency in (1, 8):
                figures = {}
                for name, load in (("hand-written", _hand_load), ("httpx", _httpx_load)):
                    load(url, body, key, concurrency, 1.0)  # warm-up
                    figures[name] = f = load(url, body, key, concurrency, args.duration)
                    print(f"{concurrency:>5} {name:<12} {f['rps']:>8.0f} {f['p50']:>7.2f} {f['p99']:>7.2f} "
                          f"{f['failed']:>6}")
                print(f"{concurrency:>5} ratio httpx/hand-written: {figures['httpx']['rps'] / figures['hand-written']['rps']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
