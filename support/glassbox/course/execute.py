"""Execute solution notebooks in place, in a fresh kernel whose working directory is the notebook's.

Cells tagged ``strip-output`` keep no output (for example LIME's 1 MB of HTML with random element ids). The
state of widgets is kept only when an output shows one (a progress bar hidden with ``capture_output`` leaves none).

    python -m glassbox.course.execute solutions/01-models-and-tradeoffs.ipynb [...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def execute(path: Path, timeout: int = 600) -> None:
    """Run every cell of ``path`` and write the outputs back into it."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    ).execute()
    for cell in notebook.cells:
        if "strip-output" in cell.metadata.get("tags", []):
            cell.outputs = []
    if not any(_WIDGET_VIEW in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", [])):
        notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)


def main(argv: list[str]) -> int:
    for name in argv:
        print(f"executing {name}", flush=True)
        execute(Path(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
