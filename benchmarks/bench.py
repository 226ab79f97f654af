"""Benchmark: the course's model server against MLServer 1.7.1 and KServe 0.21, serving the same model, driven
by the same load, all in one run.

    .venv/bin/python benchmarks/bench.py             (make bench)   about 5 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick     shorter measurements, for a smoke run (under 2 minutes)

What it does, in order (never two servers or two loads at once):

1. builds the course model as a skops artifact in ``.bench/model`` (reused when already there);
2. gets each peer's own virtual environment from :mod:`glassbox.peers` (installed once per machine: MLServer's
   is the one lab 07 uses, KServe's the one the SDK tests use), and converts the artifact to ``model.joblib``
   *inside that environment's own process*, checking that both predict the same probabilities; MLServer serves
   it with its scikit-learn runtime, KServe with ``benchmarks/kserve_model.py`` (a ``kserve.Model`` written as
   KServe's sklearnserver is);
3. starts each server as a local process on loopback ports and sends all of them the same HTTP/JSON V2
   request (one row, one ``[1, n_features]`` FP64 tensor), with :func:`glassbox.monitoring.run_load` and the
   benchmarks' raw asyncio sender (:mod:`raw_http`) at 1 and at 8 concurrent keep-alive connections, after a warm-up; the course server also with the ``explanation``
   output (SHAP contributions), which neither peer has a counterpart for;
4. then, at 8 connections, the matrix of :mod:`transports`: REST with JSON tensors, REST with Triton's binary
   tensors, gRPC; batches of 1, 64 and 1024 rows (rows/s, p50, p99); the course server's JSON cells also with
   the explanation, for its cost per row;
5. measures the floor: ``predict_proba`` on one row in this process (scikit-learn, one thread);
6. prints the tables, writes ``.bench/bench.csv``, ``.bench/bench-matrix.csv`` and ``.bench/bench.png``.

Targets: at least twice the best peer's throughput at 8 connections on one-row requests, p50 at one
connection within 1 ms of the in-process floor, and at least 1.5 times the best peer's rows/s on 1024-row JSON
batches. This is a benchmark, not a test: it prints figures and exits 0 unless something broke (``--check``
makes a missed target exit 1).
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

import transports
from raw_http import RawSender

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".bench"
MODEL_NAME = "credit"
ONE_ROW_BODIES = 200      # distinct one-row requests, sent in turn


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement (default 6)")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of warm-up per server and setting")
    parser.add_argument("--quick", action="store_true", help="2 s measurements, for a smoke run")
    parser.add_argument("--skip-peers", action="store_true",
                        help="measure the course server only (no MLServer, no KServe)")
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
    bodies = [monitoring.v2_request(rows[i:i + 1], outputs=["predict_proba"]) for i in range(ONE_ROW_BODIES)]
    explain_bodies = [monitoring.v2_request(rows[i:i + 1], outputs=["predict_proba", "explanation"])
                      for i in range(ONE_ROW_BODIES)]

    floor = _floor(art.model, rows)
    _say(f"floor: in-process predict_proba, one row: {floor['sklearn_ms']:.3f} ms (scikit-learn)")

    results: dict[str, dict] = {}
    matrix: dict[str, dict] = {}
    key = secrets.token_urlsafe(32)
    key_file = BENCH / "api-key"
    key_file.write_text(key)
    key_file.chmod(0o600)
    from glassbox.serving import LocalServer

    with LocalServer({"GLASSBOX_MODEL_DIR": str(model_dir), "GLASSBOX_API_KEY_FILE": str(key_file),
                      "GLASSBOX_LOG_LEVEL": "warning"}, log_path=BENCH / "glassbox-server.log", grpc=True) as server:
        url = server.url + f"/v2/models/{MODEL_NAME}/infer"
        _check_answer(url, body, key, art.model, rows[:1])
        results["glassbox"] = _measure(url, bodies, key, args)
        results["glassbox + explanation"] = _measure(url, explain_bodies, key, args)
        matrix["glassbox"] = _matrix(transports.Server("glassbox", server.url, server.grpc_target, MODEL_NAME,
                                                       "predict_proba", key, explains=True),
                                     art.model, rows, args, results["glassbox"], results["glassbox + explanation"])

    if not args.skip_peers:
        from glassbox import peers

        python = peers.mlserver_venv()
        ml_dir = peers.to_mlserver(python, model_dir, BENCH / "mlserver-model", rows[:20], name=MODEL_NAME)
        with peers.MLServer(python, ml_dir, log=BENCH / "mlserver.log") as ml:
            url = ml.url + f"/v2/models/{MODEL_NAME}/infer"
            _check_answer(url, body, None, art.model, rows[:1])
            name = f"MLServer {peers.MLSERVER_VERSION}"
            results[name] = _measure(url, bodies, None, args)
            matrix[name] = _matrix(transports.Server(name, ml.url, ml.grpc_target, MODEL_NAME, "predict_proba"),
                                   art.model, rows, args, results[name])
        matrix[f"KServe {peers.KSERVE_VERSION}"] = _kserve(model_dir, art.model, rows, args, results)

    table, rows_out, verdicts = _table(results, floor, args, len(art.feature_names))
    matrix_table, matrix_verdicts = _matrix_table(matrix, results, args)
    print()
    print(table)
    print()
    print(matrix_table)
    _write_csv(rows_out)
    _write_matrix_csv(matrix)
    _plot(results, floor)
    _say(f"wrote {(BENCH / 'bench.csv').relative_to(REPO)} and {(BENCH / 'bench.png').relative_to(REPO)} "
         f"in {time.perf_counter() - started:.0f} s")
    return 1 if args.check and not all(verdicts + matrix_verdicts) else 0


# -- measuring ---------------------------------------------------------------------------------------------

def _rows(art) -> np.ndarray:
    """2000 held-out rows of the course data, in the model's feature order (the same for every server)."""
    from glassbox.data import load_credit, train_test

    data = load_credit(n_samples=8000, seed=0)
    _, X_test, _, _ = train_test(data, test_size=0.25, seed=0)
    return X_test[art.feature_names].to_numpy(dtype=np.float64)


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
        monitoring.run_load(url, bodies, concurrency=concurrency, duration=args.warmup, api_key=key, sender=RawSender)
        result = monitoring.run_load(url, bodies, concurrency=concurrency, duration=args.duration, api_key=key,
                                     sender=RawSender)
        if result.failed:
            raise SystemExit(f"{url}: {result.failed} of {result.requests} requests failed at {concurrency} "
                             f"connection(s): {result.statuses} {result.errors[:2]}")
        figures[concurrency] = {"throughput": result.throughput, "p50": result.percentile(50),
                                "p99": result.percentile(99), "requests": result.requests}
        _say(f"  {url.split('/v2')[0]} c={concurrency}: {result}")
    return figures


def _check_answer(url: str, body: bytes, key, model, row, name: str | None = "predict_proba") -> None:
    """Every server must give the model's own probabilities for the benchmark's request (under output ``name``,
    or in its first output when ``None``)."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    output = next(o for o in answer["outputs"] if name in (None, o["name"]))
    np.testing.assert_allclose(np.ravel(output["data"]), model.predict_proba(row).ravel(), rtol=1e-9)


# -- the matrix: peers, transports and batch sizes (benchmarks/transports.py) ------------------------------

MATRIX_CONNECTIONS = 8


def _kserve(model_dir: Path, model, rows: np.ndarray, args, results: dict) -> dict:
    """KServe's model server on the course model: one-row JSON at 1 and 8 connections, then the matrix."""
    from glassbox import monitoring, peers

    python = peers.kserve_venv()
    kserve_dir = peers.to_mlserver(python, model_dir, BENCH / "kserve-model", rows[:20], name=MODEL_NAME)
    name = f"KServe {peers.KSERVE_VERSION}"
    # sklearnserver answers predict_proba as its one output, "output-0": its requests name no output
    bodies = [monitoring.v2_request(rows[i:i + 1]) for i in range(ONE_ROW_BODIES)]
    with peers.KServe(python, REPO / "benchmarks" / "kserve_model.py", kserve_dir, log=BENCH / "kserve.log",
                      model_name=MODEL_NAME) as ks:
        url = ks.url + f"/v2/models/{MODEL_NAME}/infer"
        _check_answer(url, bodies[0], None, model, rows[:1], name=None)
        results[name] = _measure(url, bodies, None, args)
        return _matrix(transports.Server(name, ks.url, ks.grpc_target, MODEL_NAME, None), model, rows, args,
                       results[name])


def _matrix(server, model, rows: np.ndarray, args, plain: dict, explained: dict | None = None) -> dict:
    """The matrix for one running server; its one-row JSON cells are the run's 8-connection measurements."""
    done = {("REST JSON", 1, False): _cell(plain[MATRIX_CONNECTIONS])}
    if explained:
        done[("REST JSON", 1, True)] = _cell(explained[MATRIX_CONNECTIONS])
    return transports.measure_matrix(server, rows, model.predict_proba, concurrency=MATRIX_CONNECTIONS,
                                     duration=args.duration, warmup=args.warmup, done=done, say=_say)


def _cell(figures: dict) -> dict:
    return {"rows_s": figures["throughput"], "throughput": figures["throughput"], "p50": figures["p50"],
            "p99": figures["p99"], "requests": figures["requests"], "batch": 1}


def _matrix_table(matrix: dict, results: dict, args) -> tuple[str, list[bool]]:
    """The matrix as a table (rows/s, p50, p99 per server, transport and batch), explanation cost per row,
    what binary tensors add, and the two peer targets."""
    header = f"{'server':<17}{'transport':<16}{'rows':>6}{'rows/s':>11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    lines = [f"Matrix at {MATRIX_CONNECTIONS} connections: every server, transport and batch size "
             f"({args.duration:.0f} s per cell after {args.warmup:.1f} s warm-up).", "", header, "-" * len(header)]
    for server, cells in matrix.items():
        for (transport, batch, explained), f in cells.items():
            label = transport + (" +expl" if explained else "")
            if "unsupported" in f:
                lines.append(f"{server:<17}{label:<16}{batch:>6}   unsupported: {f['unsupported'][:60]}")
            else:
                lines.append(f"{server:<17}{label:<16}{batch:>6}{f['rows_s']:>11.0f}{f['throughput']:>9.0f}"
                             f"{f['p50']:>9.2f}{f['p99']:>9.2f}")
    ours = matrix["glassbox"]
    lines += ["", "explanation output's cost per row (machine time at 8 connections, 1000/rows_s with "
              "explanation - 1000/rows_s without):"]
    for batch in transports.BATCHES:
        plain, explained = ours[("REST JSON", batch, False)], ours[("REST JSON", batch, True)]
        cost = 1000 / explained["rows_s"] - 1000 / plain["rows_s"]
        lines.append(f"  {batch:>5} rows per request: {cost:+.3f} ms per row "
                     f"({explained['rows_s'] / plain['rows_s']:.0%} of the plain rows/s)")
    lines += ["", "what binary tensors add (rows/s over REST JSON's, same server and batch):"]
    for server, cells in matrix.items():
        gains = []
        for transport in ("REST binary", "gRPC"):
            for batch in transports.BATCHES:
                f, base = cells[(transport, batch, False)], cells[("REST JSON", batch, False)]
                gains.append(f"{transport} {batch}: " + ("n/a" if "unsupported" in f
                                                         else f"{f['rows_s'] / base['rows_s']:.2f}x"))
        lines.append(f"  {server}: " + ", ".join(gains))
    verdicts = []
    peers_ = [name for name in matrix if name != "glassbox"]
    if peers_:
        lines += ["", "target against the best peer (the one-row target is in the table above):"]
        for label, cell, need in (("1024-row batches, REST JSON, 8 connections", ("REST JSON", 1024, False), 1.5),):
            best = max(peers_, key=lambda name: matrix[name][cell]["rows_s"])
            ratio = ours[cell]["rows_s"] / matrix[best][cell]["rows_s"]
            verdicts.append(ratio >= need)
            lines.append(f"  {label}: {ratio:.2f}x {best} (target >= {need}x)  {'MET' if ratio >= need else 'MISSED'}")
    return "\n".join(lines), verdicts


def _write_matrix_csv(matrix: dict) -> None:
    fields = ["server", "transport", "batch", "explanation", "rows_s", "throughput", "p50", "p99", "requests",
              "unsupported"]
    with open(BENCH / "bench-matrix.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for server, cells in matrix.items():
            for (transport, batch, explained), f in cells.items():
                writer.writerow({"server": server, "transport": transport, "batch": batch,
                                 "explanation": explained, **{k: (round(v, 3) if isinstance(v, float) else v)
                                                              for k, v in f.items() if k != "batch"}})


# -- reporting -----------------------------------------------------------------------------------------------

def _table(results: dict, floor: dict, args, n_features: int) -> tuple[str, list[dict], list[bool]]:
    ours = results["glassbox"]
    explained = results["glassbox + explanation"]
    peer_names = [name for name in results if not name.startswith("glassbox")]
    best = max(peer_names, key=lambda name: results[name][8]["throughput"]) if peer_names else None
    metrics = [
        ("throughput at 8 connections (req/s)", lambda r: r[8]["throughput"], "{:.0f}"),
        ("p50 latency at 1 connection (ms)", lambda r: r[1]["p50"], "{:.2f}"),
        ("p99 latency at 1 connection (ms)", lambda r: r[1]["p99"], "{:.2f}"),
        ("p50 latency at 8 connections (ms)", lambda r: r[8]["p50"], "{:.2f}"),
        ("p99 latency at 8 connections (ms)", lambda r: r[8]["p99"], "{:.2f}"),
    ]
    header = f"{'':38}{'glassbox':>11}{'+ explain':>11}" + "".join(f"{name:>15}" for name in peer_names)
    if best:
        header += f"{'glassbox/best':>15}"
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
        for name in peer_names:
            line += f"{fmt.format(get(results[name])):>15}"
            row[name] = round(get(results[name]), 3)
        if best:
            line += f"{get(ours) / get(results[best]):>14.2f}x"
            row["ratio_to_best_peer"] = round(get(ours) / get(results[best]), 3)
        lines.append(line)
        csv_rows.append(row)
    explain_cost = explained[1]["p50"] - ours[1]["p50"]
    explain_share = explained[8]["throughput"] / ours[8]["throughput"]
    gap = ours[1]["p50"] - floor["sklearn_ms"]
    if best:
        lines.append(f"(best peer: the one with the highest throughput at 8 connections, {best}; above 1 is "
                     "better for throughput, below 1 for latency)")
    lines += [
        "",
        f"explanation output's cost: +{explain_cost:.2f} ms at p50 (1 connection); throughput at 8 connections "
        f"{explain_share:.0%} of the plain request's",
        f"floor: predict_proba on one row in-process (scikit-learn, 1 thread): {floor['sklearn_ms']:.3f} ms",
        "",
        "targets:",
    ]
    verdicts = []
    if best:
        ratio = ours[8]["throughput"] / results[best][8]["throughput"]
        verdicts.append(ratio >= 2)
        lines.append(f"  throughput >= 2x the best peer ({best}) at 8 connections: {ratio:.2f}x  "
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
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(BENCH / "bench.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _plot(results: dict, floor: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    colours = ["#1f6feb", "#8957e5", "#bf8700", "#1a7f37"][:len(names)]
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
