"""One-row latency of the course's model server against in-process ``predict_proba``, measured in one run.

    .venv/bin/python benchmarks/serving_latency.py [--requests 2000] [--model-dir DIR]

Starts the server as a child process (API key on, read from a key file, as in production; access log off),
then, sequentially over one keep-alive connection, sends one-row V2 inference requests and times them on the
client, and times ``model.predict_proba`` on the same row in this process. Prints p50/p99 of each and the
server's overhead over the in-process floor. A benchmark, not a test: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import orjson
from threadpoolctl import threadpool_limits


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _time(call, n: int, warmup: int = 200) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    from glassbox import artifacts
    from glassbox.data import load_credit, train_test
    from glassbox.serving import LocalServer

    # The row is an array in the model's column order; the feature-name warning is noise (and costs time).
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    model_dir = artifacts.build_course_model(args.model_dir)
    artifact = artifacts.load(model_dir)
    data = load_credit()
    _, X_test, _, _ = train_test(data)
    row_frame = X_test[artifact.feature_names].iloc[:1]
    row = row_frame.to_numpy(dtype=np.float64)

    key_file = Path(tempfile.mkstemp(prefix="glassbox-bench-key-")[1])
    key = secrets.token_urlsafe(32)
    key_file.write_text(key)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    body = orjson.dumps({"inputs": [{"name": "input-0", "shape": [1, row.shape[1]], "datatype": "FP64",
                                     "data": row.ravel().tolist()}], "outputs": [{"name": "predict_proba"}]})
    explain_body = orjson.dumps({"inputs": [{"name": "input-0", "shape": [1, row.shape[1]], "datatype": "FP64",
                                             "data": row.ravel().tolist()}],
                                 "outputs": [{"name": "predict_proba"}, {"name": "explanation"}]})
    n = args.requests
    results = {}
    with LocalServer({"GLASSBOX_MODEL_DIR": model_dir, "GLASSBOX_API_KEY_FILE": key_file,
                      "GLASSBOX_LOG_LEVEL": "warning"}) as server:
        connection = http.client.HTTPConnection(server.host, server.port)
        path = f"/v2/models/{artifact.name}/infer"

        def call(payload=body):
            connection.request("POST", path, payload, headers)
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {data[:200]!r}")
            return data

        served = np.asarray(orjson.loads(call())["outputs"][0]["data"])
        assert np.allclose(served, artifact.model.predict_proba(row).ravel(), rtol=0, atol=1e-12)
        results["server, one row (predict_proba)"] = _time(call, n)
        results["server, one row + explanation"] = _time(lambda: call(explain_body), max(n // 4, 100))
        try:
            import httpx

            with httpx.Client(base_url=server.url, headers=headers) as client:
                results["server via httpx client"] = _time(
                    lambda: client.post(path, content=body).raise_for_status(), max(n // 2, 100))
        except ImportError:
            pass
        connection.close()
    key_file.unlink(missing_ok=True)

    model = artifact.model
    results["in-process predict_proba, numpy row (default threads)"] = _time(lambda: model.predict_proba(row), n)
    with threadpool_limits(1):
        results["in-process predict_proba, numpy row (1 thread)"] = _time(lambda: model.predict_proba(row), n)
        results["in-process predict_proba, DataFrame row (1 thread)"] = _time(
            lambda: model.predict_proba(row_frame), max(n // 4, 100))

    print(f"\nOne-row latency, {n} sequential requests over one keep-alive connection "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})\n")
    print(f"{'':58s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for label, seconds in results.items():
        p50, p99 = _percentiles(seconds)
        print(f"{label:58s} {p50:8.3f} {p99:8.3f}")
    server_p50 = _percentiles(results["server, one row (predict_proba)"])[0]
    floor = min(_percentiles(results[k])[0] for k in results if k.startswith("in-process") and "numpy" in k)
    print(f"\nserver p50 - in-process floor p50 = {server_p50 - floor:+.3f} ms  (target: within 1 ms); "
          f"ratio {server_p50 / floor:.2f}")
    print(f"mean server latency {statistics.fmean(results['server, one row (predict_proba)']) * 1000:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
