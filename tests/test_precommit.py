"""The pre-commit configuration: learner notebooks lose their outputs, solutions keep theirs, a stale labs/ and
the package's lint errors stop a commit.

pre-commit runs for real in a throwaway git repository laid out like this one; it installs its hooks' tools
(nbstripout, ruff) from PyPI into its own cache, so the first run takes a few seconds more.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from glassbox.course import build

REPO = Path(__file__).resolve().parents[1]
PRE_COMMIT = "pre-commit==4.7.0"


@pytest.fixture(scope="session")
def pre_commit(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("pre-commit") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", PRE_COMMIT],
                            capture_output=True, text=True)
    if result.returncode != 0:
        reason = f"cannot install {PRE_COMMIT}: {result.stderr.strip().splitlines()[-1:]}"
        pytest.skip(reason)
    return venv / "bin" / "pre-commit"


def _solution() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    code = nbformat.v4.new_code_cell("# BEGIN SOLUTION\n# STUB: answer = ...\nanswer = 42\n# END SOLUTION\nprint(answer)",
                                     execution_count=1,
                                     outputs=[nbformat.v4.new_output("stream", name="stdout", text="42\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab 00 – Demo"), code]
    return nb


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def project(tmp_path) -> Path:
    """A git repository with this configuration, a solution, its lab (run by a learner: outputs) and code."""
    repo = tmp_path / "project"
    (repo / "solutions").mkdir(parents=True)
    shutil.copy(REPO / ".pre-commit-config.yaml", repo)
    shutil.copy(REPO / "pyproject.toml", repo)  # ruff reads its rules there
    (repo / ".venv").symlink_to(Path(sys.executable).parents[1])  # the hook runs .venv/bin/glassbox
    nbformat.write(_solution(), repo / "solutions" / "00-demo.ipynb")
    build.build(repo / "solutions", repo / "labs")
    lab = nbformat.read(repo / "labs" / "00-demo.ipynb", as_version=4)
    lab.cells[1].execution_count = 7
    lab.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="Ellipsis\n")]
    nbformat.write(lab, repo / "labs" / "00-demo.ipynb")
    for folder, name in (("support/glassbox", "util.py"), ("tests", "test_util.py"), ("scripts", "tool.py")):
        (repo / folder).mkdir(parents=True)
        (repo / folder / name).write_text("import os\n")  # an unused import: F401
    (repo / ".gitignore").write_text(".venv\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    return repo


def _run(pre_commit: Path, repo: Path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PRE_COMMIT")}
    return subprocess.run([pre_commit, "run", "--all-files", "--color=never"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_configuration_is_valid(pre_commit):
    result = subprocess.run([pre_commit, "validate-config", REPO / ".pre-commit-config.yaml"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lab_outputs_are_stripped_solutions_keep_theirs_and_the_package_is_linted(pre_commit, project):
    solution_before = (project / "solutions" / "00-demo.ipynb").read_bytes()
    first = _run(pre_commit, project)
    assert first.returncode != 0
    report = first.stdout
    lab = nbformat.read(project / "labs" / "00-demo.ipynb", as_version=4)
    assert lab.cells[1].outputs == [] and lab.cells[1].execution_count is None
    assert (project / "solutions" / "00-demo.ipynb").read_bytes() == solution_before  # outputs kept
    assert "F401" in report and "support/glassbox/util.py:1:8" in report and "tests/test_util.py:1:8" in report
    assert "scripts/tool.py" not in report  # only support/ and tests/ are linted

    # Stripping gives back exactly the generated lab, so once the code is fixed everything passes.
    assert build.stale(project / "solutions", project / "labs") == []
    for name in ("support/glassbox/util.py", "tests/test_util.py"):
        (project / name).write_text("import os\n\nprint(os.sep)\n")
    _git(project, "add", ".")
    second = _run(pre_commit, project)
    assert second.returncode == 0, second.stdout


def test_a_stale_lab_stops_the_commit(pre_commit, project):
    build.build(project / "solutions", project / "labs")  # no outputs: only the staleness is at fault
    solution = nbformat.read(project / "solutions" / "00-demo.ipynb", as_version=4)
    solution.cells[0].source += "\n\nA new sentence that labs/ does not have yet."
    nbformat.write(solution, project / "solutions" / "00-demo.ipynb")
    for name in ("support/glassbox/util.py", "tests/test_util.py"):
        (project / name).write_text("")
    _git(project, "add", ".")
    result = _run(pre_commit, project)
    assert result.returncode != 0
    assert "labs/00-demo.ipynb is stale" in result.stdout and "make labs" in result.stdout
