"""Execute solution notebooks in place, in a fresh kernel whose working directory is the notebook's.

Cells tagged ``strip-output`` keep no output (for example LIME's 1 MB of HTML with random element ids).

    python -m glassbox.course.execute solutions/01-models-and-tradeoffs.ipynb [...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


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
    nbformat.write(notebook, path)


def main(argv: list[str]) -> int:
    for name in argv:
        print(f"executing {name}", flush=True)
        execute(Path(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
