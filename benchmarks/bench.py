"""Benchmark: the course's model server against MLServer 1.7.1, serving the same model, driven by the same load.

    .venv/bin/python benchmarks/bench.py             (make bench)   a few minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick     shorter measurements, for a smoke run

What it does, in order (never two servers or two loads at once):

1. builds the course model as a skops artifact in ``.bench/model`` (reused when already there);
2. gets MLServer 1.7.1's own virtual environment from :mod:`glassbox.peers` (installed once per machine, the
   one lab 07 uses), and converts the artifact to ``model.joblib`` *inside that environment's own process* —
   the format MLServer's scikit-learn runtime loads — checking that both predict the same probabilities;
3. starts each server as a local process on a loopback port and sends both the same HTTP/JSON V2 request
   (one row, one ``[1, 11]`` FP64 tensor, output ``predict_proba``), with :func:`glassbox.monitoring.run_load`
   at 1 and at 8 concurrent keep-alive connections, after a warm-up; the course server also with the
   ``explanation`` output (SHAP contributions), which MLServer's scikit-learn runtime has no counterpart for;
4. measures the floor: ``predict_proba`` on one row in this process (scikit-learn, one thread);
5. prints the table, writes ``.bench/bench.csv`` and ``.bench/bench.png``.

Targets: at least twice MLServer's throughput at 8 connections, and p50 at one connection within 1 ms of the
in-process floor. This is a benchmark, not a test: it prints figures and exits 0 unless something broke
(``--check`` makes a missed target exit 1).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import time
import warnings
import sys
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".bench"
MODEL_NAME = "credit"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement (default 6)")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of warm-up per server and setting")
    parser.add_argument("--quick", action="store_true", help="2 s measurements, for a smoke run")
    parser.add_argument("--skip-mlserver", action="store_true", help="measure the course server only")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 2.0, 0.5
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # arrays carry no feature names; the columns are in the model's order (as the servers receive them)
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    BENCH.mkdir(exist_ok=True)

    from glassbox import artifacts, monitoring

    started = time.perf_counter()
    _say(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    model_dir = artifacts.build_course_model(BENCH / "model")
    art = artifacts.load(model_dir)
    rows = _rows(art)
    body = monitoring.v2_request(rows[:1], outputs=["predict_proba"])
    bodies = [monitoring.v2_request(rows[i:i + 1], outputs=["predict_proba"]) for i in range(len(rows))]
    explain_bodies = [monitoring.v2_request(rows[i:i + 1], outputs=["predict_proba", "explanation"])
                      for i in range(len(rows))]

    floor = _floor(art.model, rows)
    _say(f"floor: in-process predict_proba, one row: {floor['sklearn_ms']:.3f} ms (scikit-learn)")

    results: dict[str, dict] = {}
    key = secrets.token_urlsafe(32)
    key_file = BENCH / "api-key"
    key_file.write_text(key)
    key_file.chmod(0o600)
    from glassbox.serving import LocalServer

    with LocalServer({"GLASSBOX_MODEL_DIR": str(model_dir), "GLASSBOX_API_KEY_FILE": str(key_file),
                      "GLASSBOX_LOG_LEVEL": "warning"}, log_path=BENCH / "glassbox-server.log") as server:
        url = server.url + f"/v2/models/{MODEL_NAME}/infer"
        _check_answer(url, body, key, art.model, rows[:1])
        results["glassbox"] = _measure(url, bodies, key, args)
        results["glassbox + explanation"] = _measure(url, explain_bodies, key, args)

    if not args.skip_mlserver:
        from glassbox import peers

        python = peers.mlserver_venv()
        ml_dir = peers.to_mlserver(python, model_dir, BENCH / "mlserver-model", rows[:20], name=MODEL_NAME)
        with peers.MLServer(python, ml_dir, log=BENCH / "mlserver.log") as ml:
            url = ml.url + f"/v2/models/{MODEL_NAME}/infer"
            _check_answer(url, body, None, art.model, rows[:1])
            results[f"MLServer {peers.MLSERVER_VERSION}"] = _measure(url, bodies, None, args)

    table, rows_out, verdicts = _table(results, floor, args, len(art.feature_names))
    print()
    print(table)
    _write_csv(rows_out)
    _plot(results, floor)
    _say(f"wrote {(BENCH / 'bench.csv').relative_to(REPO)} and {(BENCH / 'bench.png').relative_to(REPO)} "
         f"in {time.perf_counter() - started:.0f} s")
    return 1 if args.check and not all(verdicts) else 0


# -- measuring ---------------------------------------------------------------------------------------------

def _rows(art) -> np.ndarray:
    """200 held-out rows of the course data, in the model's feature order (the same for every server)."""
    from glassbox.data import load_credit, train_test

    data = load_credit(n_samples=4000, seed=0)
    _, X_test, _, _ = train_test(data, test_size=0.25, seed=0)
    return X_test[art.feature_names].to_numpy(dtype=np.float64)[:200]


def _floor(model, rows: np.ndarray) -> dict:
    """Median time of ``predict_proba`` on one row in this process, one thread (after a warm-up)."""
    from threadpoolctl import threadpool_limits

    one = [rows[i:i + 1] for i in range(len(rows))]
    times = []
    with threadpool_limits(1):
        for x in one[:50]:
            model.predict_proba(x)
        for i in range(1500):
            t = time.perf_counter()
            model.predict_proba(one[i % len(one)])
            times.append(time.perf_counter() - t)
    return {"sklearn_ms": float(np.median(times) * 1000)}


def _measure(url: str, bodies, key, args) -> dict:
    from glassbox import monitoring

    figures = {}
    for concurrency in (1, 8):
        monitoring.run_load(url, bodies, concurrency=concurrency, duration=args.warmup, api_key=key)
        result = monitoring.run_load(url, bodies, concurrency=concurrency, duration=args.duration, api_key=key)
        if result.failed:
            raise SystemExit(f"{url}: {result.failed} of {result.requests} requests failed at {concurrency} "
                             f"connection(s): {result.statuses} {result.errors[:2]}")
        figures[concurrency] = {"throughput": result.throughput, "p50": result.percentile(50),
                                "p99": result.percentile(99), "requests": result.requests}
        _say(f"  {url.split('/v2')[0]} c={concurrency}: {result}")
    return figures


def _check_answer(url: str, body: bytes, key, model, row) -> None:
    """Both servers must give the model's own probabilities for the benchmark's request."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    output = next(o for o in answer["outputs"] if o["name"] == "predict_proba")
    np.testing.assert_allclose(np.ravel(output["data"]), model.predict_proba(row).ravel(), rtol=1e-9)


# -- reporting -----------------------------------------------------------------------------------------------

def _table(results: dict, floor: dict, args, n_features: int) -> tuple[str, list[dict], list[bool]]:
    ours = results["glassbox"]
    explained = results["glassbox + explanation"]
    peer_name = next((name for name in results if name.startswith("MLServer")), None)
    peer = results.get(peer_name) if peer_name else None
    metrics = [
        ("throughput at 8 connections (req/s)", lambda r: r[8]["throughput"], "{:.0f}"),
        ("p50 latency at 1 connection (ms)", lambda r: r[1]["p50"], "{:.2f}"),
        ("p99 latency at 1 connection (ms)", lambda r: r[1]["p99"], "{:.2f}"),
        ("p50 latency at 8 connections (ms)", lambda r: r[8]["p50"], "{:.2f}"),
        ("p99 latency at 8 connections (ms)", lambda r: r[8]["p99"], "{:.2f}"),
    ]
    header = f"{'':38}{'glassbox':>11}{'+ explain':>11}"
    if peer:
        header += f"{peer_name:>16}{'glassbox/MLS':>14}{'explain/MLS':>13}"
    lines = [
        f"Same model (HistGradientBoosting, {n_features} features), same V2 JSON request (1 row, "
        f"output predict_proba), {args.duration:.0f} s per measurement after {args.warmup:.1f} s warm-up; "
        f"{os.cpu_count()} cores shared by load generator and server.",
        "",
        header,
        "-" * len(header),
    ]
    csv_rows = []
    for label, get, fmt in metrics:
        line = f"{label:38}{fmt.format(get(ours)):>11}{fmt.format(get(explained)):>11}"
        row = {"metric": label, "glassbox": round(get(ours), 3), "glassbox_explain": round(get(explained), 3)}
        if peer:
            line += f"{fmt.format(get(peer)):>16}{get(ours) / get(peer):>13.2f}x{get(explained) / get(peer):>12.2f}x"
            row.update({"mlserver": round(get(peer), 3), "ratio": round(get(ours) / get(peer), 3),
                        "explain_ratio": round(get(explained) / get(peer), 3)})
        lines.append(line)
        csv_rows.append(row)
    explain_cost = explained[1]["p50"] - ours[1]["p50"]
    explain_share = explained[8]["throughput"] / ours[8]["throughput"]
    gap = ours[1]["p50"] - floor["sklearn_ms"]
    if peer:
        lines.append("(ratios: each figure divided by MLServer's; above 1 is better for throughput, below 1 for "
                     "latency)")
    lines += [
        "",
        f"explanation output's cost: +{explain_cost:.2f} ms at p50 (1 connection); throughput at 8 connections "
        f"{explain_share:.0%} of the plain request's",
        f"floor: predict_proba on one row in-process (scikit-learn, 1 thread): {floor['sklearn_ms']:.3f} ms",
        "",
        "targets:",
    ]
    verdicts = []
    if peer:
        ratio = ours[8]["throughput"] / peer[8]["throughput"]
        verdicts.append(ratio >= 2)
        lines.append(f"  throughput >= 2x MLServer at 8 connections: {ratio:.2f}x  "
                     f"{'MET' if ratio >= 2 else 'MISSED'}")
    verdicts.append(gap <= 1.0)
    lines.append(f"  p50 at 1 connection within 1 ms of the floor: {ours[1]['p50']:.3f} - "
                 f"{floor['sklearn_ms']:.3f} = {gap:+.3f} ms  {'MET' if gap <= 1.0 else 'MISSED'}")
    csv_rows += [
        {"metric": "explanation cost p50 at 1 connection (ms)", "glassbox": round(explain_cost, 3)},
        {"metric": "floor: in-process predict_proba, one row (ms)", "glassbox": round(floor["sklearn_ms"], 4)},
    ]
    return "\n".join(lines), csv_rows, verdicts


def _write_csv(rows: list[dict]) -> None:
    fields = ["metric", "glassbox", "glassbox_explain", "mlserver", "ratio", "explain_ratio"]
    with open(BENCH / "bench.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _plot(results: dict, floor: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    colours = ["#1f6feb", "#8957e5", "#bf8700"][:len(names)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(names, [results[n][8]["throughput"] for n in names], color=colours)
    left.set_ylabel("requests / s")
    left.set_title("Throughput at 8 connections (one row per request)")
    left.tick_params(axis="x", labelsize=8)
    width = 0.2
    positions = np.arange(4)
    for i, name in enumerate(names):
        values = [results[name][1]["p50"], results[name][1]["p99"], results[name][8]["p50"],
                  results[name][8]["p99"]]
        right.bar(positions + (i - (len(names) - 1) / 2) * width, values, width, label=name, color=colours[i])
    right.axhline(floor["sklearn_ms"], color="black", linestyle="--", linewidth=1,
                  label="in-process predict_proba (floor)")
    right.set_xticks(positions, ["p50, 1 conn", "p99, 1 conn", "p50, 8 conn", "p99, 8 conn"])
    right.set_yscale("log")
    right.set_ylabel("latency (ms, log scale)")
    right.set_title("Latency")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(BENCH / "bench.png", dpi=120)
    plt.close(fig)


def _say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
