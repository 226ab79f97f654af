"""The lab generator: solution markers become stubs that run, and a stale labs/ is caught."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from glassbox.course import build

REPO = Path(__file__).resolve().parents[1]

SOLUTION_CELL = """\
import math
# BEGIN SOLUTION
# STUB: area = ...  # compute the area of the unit circle
area = math.pi * 1.0 ** 2
# END SOLUTION
print(area)"""


def _solution_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"},
                                            "language_info": {"name": "python", "version": "3.11.7"}})
    answer = nbformat.v4.new_code_cell(SOLUTION_CELL, execution_count=3,
                                       outputs=[nbformat.v4.new_output("stream", name="stdout", text="3.14\n")])
    explained = nbformat.v4.new_markdown_cell("The area is pi.", metadata={"tags": ["solution-only"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab"), answer, explained]
    return nb


def test_block_becomes_its_stub_lines_with_indentation():
    source = "for i in range(2):\n    # BEGIN SOLUTION\n    # STUB: x = ...\n    x = i * 2\n    # END SOLUTION\n"
    assert build.lab_source(source) == "for i in range(2):\n    x = ..."


def test_block_without_stub_becomes_a_placeholder_that_runs():
    lab = build.lab_source("# BEGIN SOLUTION\nsecret_answer = 42\n# END SOLUTION\nprint('next')")
    assert "secret_answer" not in lab
    exec(compile(lab, "<lab>", "exec"), {})  # the stub still runs


@pytest.mark.parametrize("source", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION",
                                    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_unbalanced_markers_are_refused(source):
    with pytest.raises(build.MarkerError):
        build.lab_source(source)


def test_lab_has_stub_no_outputs_no_solution_only_cells():
    lab = build.to_lab(_solution_notebook())
    code = [cell for cell in lab.cells if cell.cell_type == "code"]
    assert [cell.source for cell in code] == ["import math\narea = ...  # compute the area of the unit circle\n"
                                              "print(area)"]
    assert code[0].outputs == [] and code[0].execution_count is None
    assert all("The area is pi" not in cell.source for cell in lab.cells)
    assert "language_info" not in lab.metadata


def test_stale_labs_are_named_and_build_fixes_them(tmp_path):
    solutions, labs = tmp_path / "solutions", tmp_path / "labs"
    solutions.mkdir()
    nbformat.write(_solution_notebook(), solutions / "00-demo.ipynb")
    assert build.stale(solutions, labs) == ["labs/00-demo.ipynb is missing"]
    assert build.build(solutions, labs) == [labs / "00-demo.ipynb"]
    assert build.stale(solutions, labs) == [] and build.build(solutions, labs) == []

    edited = nbformat.read(solutions / "00-demo.ipynb", as_version=4)
    edited.cells[1].source = edited.cells[1].source.replace("area)", "round(area, 2))")
    nbformat.write(edited, solutions / "00-demo.ipynb")
    assert build.stale(solutions, labs) == [
        "labs/00-demo.ipynb is stale: it differs from what solutions/00-demo.ipynb generates"]

    (labs / "99-orphan.ipynb").write_text("{}")
    assert "labs/99-orphan.ipynb has no solution in solutions/" in build.stale(solutions, labs)


def test_cli_check_fails_naming_the_edited_notebook(tmp_path):
    solutions, labs = tmp_path / "solutions", tmp_path / "labs"
    solutions.mkdir()
    nbformat.write(_solution_notebook(), solutions / "00-demo.ipynb")
    command = [sys.executable, "-m", "glassbox", "labs"]
    paths = ["--solutions", str(solutions), "--labs", str(labs)]
    subprocess.run(command + ["build"] + paths, check=True, capture_output=True)
    assert subprocess.run(command + ["check"] + paths, capture_output=True).returncode == 0

    edited = nbformat.read(solutions / "00-demo.ipynb", as_version=4)
    edited.cells[0].source += "\nA new sentence."
    nbformat.write(edited, solutions / "00-demo.ipynb")
    result = subprocess.run(command + ["check"] + paths, capture_output=True, text=True)
    assert result.returncode == 1 and "labs/00-demo.ipynb is stale" in result.stderr


def test_the_repository_labs_are_in_sync_and_carry_no_outputs():
    assert build.stale(REPO / "solutions", REPO / "labs") == []
    for path in sorted((REPO / "labs").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        assert not any(cell.get("outputs") for cell in notebook.cells), f"{path.name} carries outputs"


@pytest.mark.parametrize("marker", ["# END SOLUTON", "# BEGIN SOLUTON", "#END SOLUTION", "# end solution"])
def test_a_misspelled_marker_is_one_line_naming_the_notebook_and_the_cell(tmp_path, marker):
    solutions, labs = tmp_path / "solutions", tmp_path / "labs"
    solutions.mkdir()
    nbformat.write(_solution_notebook(), solutions / "00-demo.ipynb")
    build.build(solutions, labs)
    notebook = _solution_notebook()
    notebook.cells[1].source = notebook.cells[1].source.replace(
        "# END SOLUTION" if "END" in marker.upper() else "# BEGIN SOLUTION", marker)
    nbformat.write(notebook, solutions / "00-demo.ipynb")
    for action in ("build", "check"):
        result = subprocess.run([sys.executable, "-m", "glassbox", "labs", action, "--solutions", str(solutions),
                                 "--labs", str(labs)], capture_output=True, text=True)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "00-demo.ipynb, cell 2" in result.stderr
        assert f"{marker!r} looks like a solution marker but is misspelled" in result.stderr
