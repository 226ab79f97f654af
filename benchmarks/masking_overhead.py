"""What secret masking costs a cell: the same cells in a kernel with and without the course's kernel hooks.

    .venv/bin/python benchmarks/masking_overhead.py [--cells 200] [--secrets 50]

Both kernels run the same ``--cells`` cells, each printing 2 KB and displaying a 20-row DataFrame (text and
HTML). The masked kernel imports ``glassbox`` (which installs the hooks) and remembers ``--secrets`` secret
values first, none of which the cells print, so every output is scanned in full. Reported: the median and p95
time per cell, measured by the kernel's own busy/idle timestamps, and the ratio between the two kernels (both
run from this one process, one after the other: compare the ratio, not the figures); then the cost of masking
one such cell's outputs, timed in-process, which is steadier than a kernel round trip on a busy machine.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import timeit
from datetime import datetime

import nbformat
from nbclient import NotebookClient

SETUP = "import pandas as pd\nframe = pd.DataFrame({'a': range(20), 'b': ['some text'] * 20})"
HOOKED = "import glassbox\nfrom glassbox import masking\nfor i in range({n}):\n    masking.remember(f'secret-value-{{i:04d}}', 'benchmark')"
CELL = "print('x' * 2000)\ndisplay(frame)"


def _seconds(cell) -> float:
    timing = cell.metadata["execution"]
    start = datetime.fromisoformat(timing["iopub.status.busy"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(timing["iopub.status.idle"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def per_cell(setup: list[str], cells: int) -> list[float]:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in [*setup, *[CELL] * cells]])
    NotebookClient(notebook, timeout=120, kernel_name="python3", record_timing=True).execute()
    return [_seconds(cell) for cell in notebook.cells[len(setup):]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--secrets", type=int, default=50)
    args = parser.parse_args()
    plain = per_cell([SETUP], args.cells)
    masked = per_cell([SETUP, HOOKED.format(n=args.secrets)], args.cells)
    print(f"{'kernel':<28}{'median ms':>10}{'p95 ms':>10}")
    for name, times in [("plain", plain), (f"masking, {args.secrets} secrets", masked)]:
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{name:<28}{statistics.median(times) * 1e3:>10.2f}{p95 * 1e3:>10.2f}")
    masking = importlib.import_module("glassbox.masking")
    for i in range(args.secrets):
        masking.remember(f"secret-value-{i:04d}", "benchmark")
    import pandas as pd

    frame = pd.DataFrame({"a": range(20), "b": ["some text"] * 20})
    content = {"data": {"text/plain": repr(frame), "text/html": frame._repr_html_()}, "text": "x" * 2000}
    calls = 2000
    each = timeit.timeit(lambda: masking.mask(content), number=calls) / calls
    print(f"masking.mask on one cell's outputs (2 KB of text and the frame's text and HTML): {each * 1e6:.1f} µs")
    ratio = statistics.median(masked) / statistics.median(plain)
    print(f"masking adds {(statistics.median(masked) - statistics.median(plain)) * 1e3:+.2f} ms per cell "
          f"(median ratio {ratio:.2f})")


if __name__ == "__main__":
    main()
