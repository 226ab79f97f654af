"""How many learners one machine holds: N simulated learners on the workshop hub (deploy/hub/), each running labs.

    .venv/bin/python benchmarks/hub_capacity.py                        # N = 2, 4, 8, 12, labs 00-03
    .venv/bin/python benchmarks/hub_capacity.py --learners 4 --labs 00 01

Needs a Docker engine and `npm ci --prefix deploy/hub`; builds the course image with `make course-image`. For
each N, a fresh Hub (open sign-up): N learners sign up and log in through the real forms, and their servers
start at once through the Hub's REST API (a learner's start-up time: until the Hub calls the server ready). Then
every learner, at the same time, runs each code cell of solutions/NN-*.ipynb, lab after lab, one kernel per lab,
through the Jupyter kernel API (websocket), as a room that follows the instructor does; each lab's kernel is shut
down after its last cell. Printed per N: start-up per learner (mean, max), cells run and failed, cell latency p50,
p95 and max, each learner's peak memory (their container's cgroup high-water mark), the room's time from the
first spawn to the last cell, and the load average. The largest N with no failed cell is what this machine holds;
the p95 says how it feels. Stops at the first N where a cell fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the hub's test helpers: one way to start a hub and its learners
from hub_kernel import CellError, KernelDied, aexecute, start_kernel  # noqa: E402
from hub_room import course_image, log_in, own_token, running_hub, sign_up, spawn  # noqa: E402

PEAK = ("import pathlib\n"
        "for name in ('/sys/fs/cgroup/memory.peak', '/sys/fs/cgroup/memory/memory.max_usage_in_bytes'):\n"
        "    if pathlib.Path(name).exists():\n"
        "        print(int(pathlib.Path(name).read_text()) // 2**20)\n"
        "        break\n")


def cells(lab: str) -> list[str]:
    """The code cells of the lab's solution, in order."""
    notebook = nbformat.read(next((REPO / "solutions").glob(f"{lab}-*.ipynb")), as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


async def learner(server: str, token: str, labs: list[str]) -> dict:
    """One learner's session: every cell of every lab; the latencies, the failures and the peak memory."""
    latencies, failures = [], []
    for lab in labs:
        kernel = await asyncio.to_thread(start_kernel, server, token)
        for number, source in enumerate(cells(lab), 1):
            started = time.monotonic()
            try:
                await aexecute(server, kernel, token, source, timeout=900)
            except (CellError, KernelDied, asyncio.TimeoutError, OSError) as error:
                failures.append(f"lab {lab} cell {number}: {type(error).__name__}: {str(error)[:200]}")
                break  # the lab's later cells need this one
            latencies.append(time.monotonic() - started)
        async with httpx.AsyncClient(headers={"Authorization": f"token {token}"}) as client:
            await client.delete(f"{server}api/kernels/{kernel}")
    kernel = await asyncio.to_thread(start_kernel, server, token)
    peak = int((await aexecute(server, kernel, token, PEAK)).strip() or 0)
    return {"latencies": latencies, "failures": failures, "peak_mb": peak}


def room(image: str, count: int, labs: list[str]) -> dict:
    """Start a hub with ``count`` learners, run the labs in every learner's server at once; the figures."""
    with tempfile.TemporaryDirectory(prefix="gb-capacity-") as root, \
            running_hub(Path(root), image, OPEN_SIGNUP="1") as hub:
        names, tokens = [f"learner{n:02d}" for n in range(count)], {}
        for name in names:
            browser = httpx.Client(base_url=hub.url, timeout=60)
            sign_up(browser, name, f"capacity-passphrase-{name}")
            assert log_in(browser, name, f"capacity-passphrase-{name}").status_code == 302, name
            tokens[name] = own_token(browser, name)

        async def everyone():
            startups = await asyncio.gather(*(asyncio.to_thread(spawn, hub, name, tokens[name]) for name in names))
            sessions = await asyncio.gather(*(learner(f"{hub.url}/user/{name}/", tokens[name], labs)
                                              for name in names))
            return startups, sessions

        began = time.monotonic()
        startups, sessions = asyncio.run(everyone())
        took = time.monotonic() - began
    latencies = sorted(t for session in sessions for t in session["latencies"])
    return {"startup": startups, "latencies": latencies, "peaks": [s["peak_mb"] for s in sessions],
            "failures": [f for s in sessions for f in s["failures"]], "load": os.getloadavg()[0], "took": took}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[2, 4, 8, 12])
    parser.add_argument("--labs", nargs="+", default=["00", "01", "02", "03"])
    args = parser.parse_args()
    image = course_image()
    print(f"labs {' '.join(args.labs)}: {sum(len(cells(lab)) for lab in args.labs)} code cells per learner; "
          f"{os.cpu_count()} cores")
    print(f"{'N':>3} {'start s (mean/max)':>19} {'cells':>6} {'failed':>6} {'p50 s':>6} {'p95 s':>6} "
          f"{'max s':>6} {'peak MB/learner (mean/max)':>27} {'room s':>7} {'load':>5}")
    for count in args.learners:
        found = room(image, count, args.labs)
        lat, peaks = found["latencies"], found["peaks"]
        print(f"{count:>3} {statistics.mean(found['startup']):>10.1f} / {max(found['startup']):>5.1f} "
              f"{len(lat):>6} {len(found['failures']):>6} {percentile(lat, 50):>6.2f} {percentile(lat, 95):>6.2f} "
              f"{max(lat, default=0):>6.1f} {statistics.mean(peaks):>17.0f} / {max(peaks):>5} "
              f"{found['took']:>7.0f} {found['load']:>5.1f}", flush=True)
        for failure in found["failures"][:5]:
            print(f"      {failure}")
        if found["failures"]:
            break


if __name__ == "__main__":
    main()
