"""Load client benchmark: the course's load generator with aiohttp (its default), with httpx, and with the
benchmarks' raw asyncio sender (``raw_http.RawSender``), same server, same run.

    .venv/bin/python benchmarks/load_client.py [--duration 5]

Serves the course model with glassbox.serving.LocalServer behind a fresh key file, then at 1 and 8 connections
prints requests/s, p50 and p99 (ms) for each sender and its ratio to the raw one. The ratios are why the generator
sends with aiohttp rather than httpx, and why the bench drives servers with the raw sender.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from pathlib import Path

import httpx
from raw_http import RawSender


class HttpxSender:
    """httpx's asyncio client, one pool of ``concurrency`` keep-alive connections: the peer the default is measured against."""

    failures = (httpx.HTTPError, OSError)

    def __init__(self, url, method, concurrency, timeout, tls):
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(limits=limits, timeout=timeout, verify=tls or True,
                                         headers={"Content-Type": "application/json"})
        self._url, self._method = url, method

    async def send(self, slot, body, key):
        headers = {"Authorization": f"Bearer {key}"} if key else None
        return (await self._client.request(self._method, self._url, content=body, headers=headers)).status_code

    async def aclose(self):
        await self._client.aclose()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per sender and concurrency")
    args = parser.parse_args(argv)

    from bench import MODEL_NAME, _rows  # the benchmark's model rows, run from benchmarks/
    from glassbox import artifacts, monitoring
    from glassbox.serving import LocalServer

    model_dir = artifacts.build_course_model()
    body = monitoring.v2_request(_rows(artifacts.load(model_dir))[:1], outputs=["predict_proba"])
    senders = {"raw": RawSender, "aiohttp": monitoring.AiohttpSender, "httpx": HttpxSender}
    with tempfile.TemporaryDirectory() as tmp:
        key = secrets.token_urlsafe(32)
        key_file = Path(tmp) / "api-key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        with LocalServer({"GLASSBOX_MODEL_DIR": str(model_dir), "GLASSBOX_API_KEY_FILE": str(key_file)}) as server:
            url = server.url + f"/v2/models/{MODEL_NAME}/infer"
            print(f"{'conns':>5} {'sender':<7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}")
            for concurrency in (1, 8):
                rps = {}
                for name, sender in senders.items():
                    def load(duration):
                        return monitoring.run_load(url, body, concurrency=concurrency, duration=duration,
                                                   api_key=key, sender=sender)
                    load(1.0)  # warm-up
                    result = load(args.duration)
                    rps[name] = result.throughput
                    print(f"{concurrency:>5} {name:<7} {result.throughput:>8.0f} {result.percentile(50):>7.2f} "
                          f"{result.percentile(99):>7.2f} {result.failed:>6}")
                print(f"{concurrency:>5} ratio to raw: " + ", ".join(
                    f"{name} {rps[name] / rps['raw']:.2f}" for name in senders if name != "raw"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
