"""Run variants of a lab in real kernels: every exercise left as its stub, catalogued wrong answers, all wrong.

A *variant* is the lab as a learner has it (the solution notebook without its ``solution-only`` cells), with
chosen exercise cells changed: to their stub (what ``labs/`` holds) or to a catalogued mistake (see
``tests/mistakes``). Every run gets a fresh kernel with its cwd in ``labs/`` (as in JupyterLab) and a private
course home and Vault port, so runs can go two at a time on two cores without sharing Vault state. Runs of a
lab that drives the Docker engine (lab 08) go one at a time.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from glassbox.course.build import BEGIN, END, lab_source
from helpers import REPO, pick_free_port

SOLUTIONS, LABS = REPO / "solutions", REPO / "labs"
ONE_AT_A_TIME = {"08"}          # labs whose runs share the Docker engine's names and ports
_CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")


def lab_numbers() -> list[str]:
    return sorted(path.name[:2] for path in SOLUTIONS.glob("[0-9][0-9]-*.ipynb"))


def solution(lab: str) -> nbformat.NotebookNode:
    """The solution notebook of ``lab`` as a learner sees its cells (no ``solution-only`` cells)."""
    path = next(SOLUTIONS.glob(f"{lab}-*.ipynb"))
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if "solution-only" not in cell.metadata.get("tags", [])]
    return notebook


def checks(lab: str) -> dict[str, object]:
    """``{exercise name: check function}`` of ``glassbox.checks.labNN``."""
    module = importlib.import_module(f"glassbox.checks.lab{lab}")
    return {item.exercise[1]: item for item in vars(module).values() if hasattr(item, "exercise")}


def exercise_cells(notebook, lab: str) -> dict[str, int]:
    """``{exercise name: index}`` of the code cell that holds the exercise's solution and calls its check."""
    by_function = {check.__name__: name for name, check in checks(lab).items()}
    found = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and BEGIN in cell.source:
            for function in _CHECK_CALL.findall(cell.source):
                if function in by_function:
                    found.setdefault(by_function[function], index)
    return found


def replace_blocks(source: str, code: str | tuple[str, ...]) -> str:
    """``source`` with its solution block(s) replaced by ``code`` (one string per block, indented like it)."""
    blocks = [code] if isinstance(code, str) else list(code)
    out, inside, indent = [], False, ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            if not blocks:
                raise ValueError("the mistake has fewer blocks than the cell")
            out.extend(indent + text if text.strip() else text for text in blocks.pop(0).splitlines())
        elif stripped.startswith(END):
            inside = False
        elif not inside:
            out.append(line)
    if blocks:
        raise ValueError("the mistake has more blocks than the cell")
    return "\n".join(out)


@dataclass
class Run:
    """One executed variant: its cells with their outputs, and what it was."""

    lab: str
    label: str
    cells: list = field(default_factory=list)
    crash: str | None = None     # the harness's own failure (a kernel that died, a timeout)


def errors(cells) -> list[str]:
    """Every error output and every traceback printed on stderr, as ``cell N: text``."""
    found = []
    for number, cell in enumerate(cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {number}: {output['ename']}: {output['evalue']}")
            elif output.get("name") == "stderr" and "Traceback (most recent call last)" in output.get("text", ""):
                found.append(f"cell {number}: a traceback on stderr: {output['text'][-300:]}")
    return found


def feedback_texts(cell, lab: str, title: str) -> list[str]:
    """The plain text of every self-check result for exercise ``title`` that ``cell`` shows."""
    return [output["data"]["text/plain"] for output in cell.get("outputs", [])
            if output.get("output_type") in ("execute_result", "display_data")
            and f"Lab {lab} · {title}:" in output.get("data", {}).get("text/plain", "")]


def _environment(home: Path) -> dict[str, str]:
    # GLASSBOX_PEERS=off: the serving lab's MLServer section is the untouched solution's (nbval runs it), not a
    # variant's concern, and it would start MLServer in every run
    env = dict(os.environ, GLASSBOX_HOME=str(home), GLASSBOX_VAULT_PORT=str(pick_free_port()),
               GLASSBOX_VAULT_BACKEND="embedded", GLASSBOX_PEERS="off")
    env.pop("VAULT_ADDR", None)
    env.pop("VAULT_TOKEN", None)
    return env


def _stop_vault(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "glassbox.cli", "vault", "down"], env=env, capture_output=True,
                   timeout=60)


async def execute(lab: str, label: str, sources: list, on_cell=None, timeout: int = 300) -> Run:
    """Run ``sources`` (one list of source variants per cell, each run in turn) in one fresh kernel.

    ``on_cell(index, variant, cell)`` is told of each executed variant. Returns the :class:`Run` whose cells
    are the last variant of each position, with outputs.
    """
    run = Run(lab, label)
    home = Path(tempfile.mkdtemp(prefix=f"glassbox-run-{lab}-"))
    env = _environment(home)
    notebook = nbformat.v4.new_notebook(metadata=solution(lab).metadata,
                                        cells=[nbformat.v4.new_code_cell("") for _ in sources])
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(LABS)}})
    try:
        async with client.async_setup_kernel(env=env):
            for index, variants in enumerate(sources):
                for number, source in enumerate(variants):
                    cell = nbformat.v4.new_code_cell(source)
                    await client.async_execute_cell(cell, index)
                    if on_cell is not None:
                        on_cell(index, number, cell)
                run.cells.append(cell)
    except Exception as error:  # the harness reports a dead kernel or a timeout as the run's failure
        run.crash = f"{type(error).__name__}: {error}"
    finally:
        await asyncio.to_thread(_stop_vault, env)
        shutil.rmtree(home, ignore_errors=True)
    return run


def code_sources(notebook) -> list[list[str]]:
    """One single-variant list per code cell (markdown cells are not run)."""
    return [[cell.source] for cell in notebook.cells if cell.cell_type == "code"]


def code_index(notebook, index: int) -> int:
    """The position of notebook cell ``index`` among the code cells."""
    return sum(1 for cell in notebook.cells[:index] if cell.cell_type == "code")


async def run_all(jobs: list, workers: int = 2) -> list[Run]:
    """Run ``jobs`` (coroutine factories with a ``lab`` attribute), ``workers`` at a time.

    The runs of lab 08 (one at a time) start at once on the first worker, which helps with the rest when they
    are done; so the longest chain never waits for the others.
    """
    serial = [job for job in jobs if job.lab in ONE_AT_A_TIME]
    rest = [job for job in jobs if job.lab not in ONE_AT_A_TIME]
    results = []

    async def worker(own: list) -> None:
        while own or rest:
            job = own.pop(0) if own else rest.pop(0)
            results.append(await job())

    await asyncio.gather(worker(serial), *(worker([]) for _ in range(workers - 1)))
    return results


class Job:
    """A deferred :func:`execute` call, so :func:`run_all` can schedule it."""

    def __init__(self, lab: str, label: str, sources: list, on_cell=None):
        self.lab, self.label, self.sources, self.on_cell = lab, label, sources, on_cell

    def __call__(self):
        return execute(self.lab, self.label, self.sources, self.on_cell)


def with_cell(notebook, index: int, source: str):
    """A copy of ``notebook`` with cell ``index`` holding ``source``."""
    changed = copy.deepcopy(notebook)
    changed.cells[index].source = source
    return changed


def stub_of(source: str) -> str:
    return lab_source(source)
