"""Load client benchmark: the course's load generator with httpx (its default) and with the benchmarks' raw
asyncio sender (``raw_http.RawSender``), same server, same run.

    .venv/bin/python benchmarks/load_client.py [--duration 5]

Serves the course model with glassbox.serving.LocalServer behind a fresh key file, then at 1 and 8 connections
prints requests/s, p50 and p99 (ms) for each sender and the ratio httpx / raw. The ratio is why the bench drives
servers with the raw sender: with httpx, the client would be what is measured.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from pathlib import Path

from raw_http import RawSender


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per sender and concurrency")
    args = parser.parse_args(argv)

    from bench import MODEL_NAME, _rows  # the benchmark's model rows, run from benchmarks/
    from glassbox import artifacts, monitoring
    from glassbox.serving import LocalServer

    model_dir = artifacts.build_course_model()
    body = monitoring.v2_request(_rows(artifacts.load(model_dir))[:1], outputs=["predict_proba"])
    senders = {"raw": RawSender, "httpx": monitoring.HttpxSender}
    with tempfile.TemporaryDirectory() as tmp:
        key = secrets.token_urlsafe(32)
        key_file = Path(tmp) / "api-key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        with LocalServer({"GLASSBOX_MODEL_DIR": str(model_dir), "GLASSBOX_API_KEY_FILE": str(key_file)}) as server:
            url = server.url + f"/v2/models/{MODEL_NAME}/infer"
            print(f"{'conns':>5} {'sender':<6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}")
            for concurrency in (1, 8):
                rps = {}
                for name, sender in senders.items():
                    def load(duration):
                        return monitoring.run_load(url, body, concurrency=concurrency, duration=duration,
                                                   api_key=key, sender=sender)
                    load(1.0)  # warm-up
                    result = load(args.duration)
                    rps[name] = result.throughput
                    print(f"{concurrency:>5} {name:<6} {result.throughput:>8.0f} {result.percentile(50):>7.2f} "
                          f"{result.percentile(99):>7.2f} {result.failed:>6}")
                print(f"{concurrency:>5} ratio httpx/raw: {rps['httpx'] / rps['raw']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
