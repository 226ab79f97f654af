"""Generate learner notebooks (labs/) from the solutions (solutions/), and detect a stale labs/.

In a solution's code cell, a block between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` is replaced in
the lab by its ``# STUB: `` lines (prefix removed, indentation kept), or by ``# YOUR CODE HERE`` when it
has none. Cells tagged ``solution-only`` are dropped. Labs carry no outputs and no execution counts.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from glassbox.errors import GlassboxError

BEGIN, END, STUB = "# BEGIN SOLUTION", "# END SOLUTION", "# STUB: "
_MARKER_LIKE = re.compile(r"#\s*(begin|end)\s*_?sol", re.I)


class MarkerError(GlassboxError, ValueError):
    """A solution block that does not close, closes without opening, or a misspelled marker."""


def lab_source(source: str) -> str:
    """The lab version of one code cell's source."""
    out: list[str] = []
    block: list[str] | None = None
    indent = ""
    for line in source.splitlines():
        stripped = line.strip()
        if _MARKER_LIKE.match(stripped) and not stripped.startswith((BEGIN, END)):
            raise MarkerError(f"{stripped!r} looks like a solution marker but is misspelled: write {BEGIN!r} or "
                              f"{END!r}")
        if stripped.startswith(BEGIN):
            if block is not None:
                raise MarkerError(f"nested {BEGIN!r}")
            block, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped.startswith(END):
            if block is None:
                raise MarkerError(f"{END!r} without {BEGIN!r}")
            out.extend(block or [f"{indent}# YOUR CODE HERE"])
            block = None
        elif block is not None:
            if stripped.startswith(STUB):
                block.append(indent + stripped[len(STUB):])
        else:
            out.append(line)
    if block is not None:
        raise MarkerError(f"{BEGIN!r} is never closed")
    return "\n".join(out)


def to_lab(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The lab notebook for a solution notebook (``name`` only labels errors)."""
    lab = copy.deepcopy(solution)
    lab.metadata = {key: lab.metadata[key] for key in ("kernelspec",) if key in lab.metadata}
    cells = []
    for number, cell in enumerate(lab.cells, start=1):
        if "solution-only" in cell.metadata.get("tags", []):
            continue
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            try:
                cell.source = lab_source(cell.source)
            except MarkerError as error:
                raise MarkerError(f"{name}, cell {number}: {error}") from None
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    lab.cells = cells
    return lab


def _render(solution_path: Path) -> str:
    solution = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(to_lab(solution, solution_path.name)) + "\n"


def build(solutions: Path = Path("solutions"), labs: Path = Path("labs")) -> list[Path]:
    """Write ``labs/NN-name.ipynb`` for every solution; returns the labs that changed."""
    labs.mkdir(exist_ok=True)
    changed = []
    for solution_path in sorted(solutions.glob("*.ipynb")):
        target = labs / solution_path.name
        text = _render(solution_path)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            changed.append(target)
    return changed


def stale(solutions: Path = Path("solutions"), labs: Path = Path("labs")) -> list[str]:
    """Why labs/ does not match solutions/: one line per notebook, empty when in sync."""
    problems = []
    wanted = {path.name: path for path in sorted(solutions.glob("*.ipynb"))}
    for name, solution_path in wanted.items():
        target = labs / name
        if not target.exists():
            problems.append(f"labs/{name} is missing")
        elif target.read_text() != _render(solution_path):
            problems.append(f"labs/{name} is stale: it differs from what solutions/{name} generates")
    for extra in sorted(set(path.name for path in labs.glob("*.ipynb")) - set(wanted)):
        problems.append(f"labs/{extra} has no solution in solutions/")
    return problems
