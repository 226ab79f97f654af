"""Run the README's test command while a bounded CPU hog keeps every core busy, and print each run's result.

    python3 benchmarks/suite_under_load.py                   # three runs of `make test`
    python3 benchmarks/suite_under_load.py --runs 1 -- make test

The hog is one spinning process per core, at normal priority, for as long as a run lasts and never longer than
``--hog-minutes``. It stops between runs, so each run starts on the same footing. Each run's output goes to
``.bench/under-load-N.log``. Printed per run: its exit code, its wall time, the load average sampled every 10 s
(mean and max), and pytest's summary line. Only the standard library is used, so this runs before `.venv` exists.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"=+ (.*(passed|failed|error).*) in [\d.]+s")


def _spin(deadline: float) -> None:
    while time.monotonic() < deadline:
        pass


def _run_once(index: int, command: list[str], hog_minutes: float) -> dict:
    deadline = time.monotonic() + hog_minutes * 60
    hogs = [multiprocessing.Process(target=_spin, args=(deadline,), daemon=True) for _ in range(os.cpu_count() or 1)]
    for hog in hogs:
        hog.start()
    loads: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(10):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    log = REPO / ".bench" / f"under-load-{index}.log"
    log.parent.mkdir(exist_ok=True)
    start = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    stop.set()
    for hog in hogs:
        hog.terminate()
        hog.join()
    found = SUMMARY.findall(log.read_text(errors="replace"))
    return {
        "run": index,
        "exit": code,
        "wall min": round(wall / 60, 1),
        "load mean": round(sum(loads) / len(loads), 1) if loads else None,
        "load max": round(max(loads), 1) if loads else None,
        "pytest": found[-1][0] if found else "(no pytest summary: see the log)",
        "log": str(log.relative_to(REPO)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hog-minutes", type=float, default=120.0, help="the hog's limit per run")
    parser.add_argument("command", nargs="*", default=["make", "test"], help="default: make test")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, one spinning process each; command: {' '.join(args.command)}", flush=True)
    failed = 0
    for index in range(1, args.runs + 1):
        result = _run_once(index, args.command, args.hog_minutes)
        print("  ".join(f"{key}: {value}" for key, value in result.items()), flush=True)
        failed += result["exit"] != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
