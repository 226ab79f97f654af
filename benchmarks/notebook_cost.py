"""Print each notebook's execution time and peak memory, measured on its kernel process tree.

    .venv/bin/python benchmarks/notebook_cost.py                      # every notebook in solutions/
    .venv/bin/python benchmarks/notebook_cost.py solutions/02-*.ipynb

Each notebook runs in a fresh kernel with its own directory as the working directory (as CI runs it); nothing is
written back. Reported per notebook:

- ``wall s``: from asking for a kernel to the end of the last cell (kernel start-up included);
- ``cpu s``: user + system CPU time of the kernel and all its child processes — steadier than wall time on a
  shared or busy machine;
- ``peak MB``: the largest total resident memory (RSS) of the kernel and its children, sampled every 20 ms;
- ``kernel HWM MB``: the kernel's own exact peak RSS (``VmHWM`` from /proc), which no sampling can miss.

The course's budget per lab: at most 90 s and under 1.5 GB. The load average is printed too, since a busy
machine stretches wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

BUDGET_SECONDS, BUDGET_MB = 90.0, 1536.0


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _hwm_mb(pid: int) -> float:
    """Peak resident memory of one process (``VmHWM``), in MB; 0 where /proc is not available."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Sampler(threading.Thread):
    """Polls the kernel's process tree: peak total RSS, and CPU time of every process seen."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_bytes = 0
        self.cpu: dict[int, float] = {}  # latest cpu time per pid (children that exit keep their last value)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def sample(self) -> None:
        total = 0
        for process in _tree(self.pid):
            try:
                with process.oneshot():
                    total += process.memory_info().rss
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
            except psutil.Error:
                continue
        self.peak_bytes = max(self.peak_bytes, total)

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.sample()


def measure(path: Path, timeout: int = 600) -> dict:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    status, sampler, hwm = "ok", None, 0.0
    started = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        sampler = _Sampler(pid)
        sampler.start()
        try:
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as error:
            status = f"error in cell {index + 1}: {str(error).strip().splitlines()[-1][:80]}"
        wall = time.perf_counter() - started
        hwm = _hwm_mb(pid)
        sampler.stop()
    return {
        "notebook": str(path), "wall": wall, "cpu": sum(sampler.cpu.values()),
        "peak_mb": sampler.peak_bytes / 2**20, "hwm_mb": hwm, "status": status,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in solutions/")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(Path("solutions").glob("*.ipynb"))
    if not paths:
        print("no notebooks given and none in solutions/", file=sys.stderr)
        return 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} cores, load average {load:.2f} at start; budget {BUDGET_SECONDS:.0f} s, "
          f"{BUDGET_MB:.0f} MB per notebook")
    header = f"{'notebook':<44} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'kernel HWM MB':>14}  status"
    print(header)
    print("-" * len(header))
    worst = 0
    for path in paths:
        row = measure(path, args.timeout)
        over = row["wall"] > BUDGET_SECONDS or max(row["peak_mb"], row["hwm_mb"]) > BUDGET_MB
        status = row["status"] + (" (over budget)" if over else "")
        worst = max(worst, 1 if row["status"] != "ok" else 0)
        print(f"{row['notebook']:<44} {row['wall']:7.1f} {row['cpu']:7.1f} {row['peak_mb']:8.0f} "
              f"{row['hwm_mb']:14.0f}  {status}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end" if hasattr(os, "getloadavg") else "")
    return worst


if __name__ == "__main__":
    sys.exit(main())
