"""`glassbox progress`: the learner sees which checks pass, in a terminal and in a notebook, and sees a reset.

Everything runs as a learner would: the check in a separate Python process (as in a kernel), the real
`glassbox` command in another, both with their own GLASSBOX_HOME, against the session's real dev Vault.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from glassbox.course import progress

LAB00_CHECK_TITLE = "Read your first secret back"
SECRET_PATH = "glassbox/tests/progress/first-secret"

# What a learner's kernel does in Lab 00: read the secret back (or leave the stub), then run the self-check.
LEARNER = """\
import sys, hvac
from glassbox.checks.lab00 import check_first_secret
client = hvac.Client()  # VAULT_ADDR and VAULT_TOKEN, as in the course's kernels
PATH = sys.argv[2]
if sys.argv[1] == "stub":
    first_secret = ...
else:
    first_secret = client.secrets.kv.v2.read_secret_version(path=PATH, mount_point="secret",
                                                            raise_on_deleted_version=True)["data"]["data"]
print(repr(check_first_secret(first_secret, client, PATH)))
"""


def _glassbox() -> list[str]:
    script = Path(sys.executable).parent / "glassbox"
    return [str(script)] if script.exists() else [sys.executable, "-m", "glassbox"]


@pytest.fixture
def learner(tmp_path, vault_server, vault_client):
    """A learner's environment: a fresh progress store of its own, the dev Vault's address and token."""
    vault_client.secrets.kv.v2.create_or_update_secret(
        path=SECRET_PATH, secret={"username": "learner", "password": "not-printed-anywhere"}, mount_point="secret")
    env = {name: value for name, value in os.environ.items() if name != "GLASSBOX_HOME"}
    env.update(GLASSBOX_HOME=str(tmp_path / "learner-home"), VAULT_ADDR=vault_server.addr,
               VAULT_TOKEN=vault_server.token)
    return env


def _run_check(env: dict, answer: str) -> str:
    result = subprocess.run([sys.executable, "-c", LEARNER, answer, SECRET_PATH], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _progress_cli(env: dict, *args: str) -> str:
    result = subprocess.run(_glassbox() + ["progress", *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _parse(summary: str) -> dict:
    """``{lab: {"passed": n, "total": n, "checks": {title: state}}}`` from the summary's text."""
    labs, current = {}, None
    for line in summary.splitlines():
        heading = re.fullmatch(r"Lab (\d\d): (\d+)/(\d+) checks passed", line)
        if heading:
            current = labs[heading[1]] = {"passed": int(heading[2]), "total": int(heading[3]), "checks": {}}
            continue
        row = re.fullmatch(r"\s*(not tried|not yet|passed)  (.+)", line)
        if row and current is not None:
            current["checks"][row[2]] = row[1]
    return labs


def test_a_new_learner_sees_every_lab_with_nothing_tried(learner):
    shown = _parse(_progress_cli(learner))
    course = progress.exercises()
    assert sorted(shown) == sorted(course) and "00" in shown
    for lab, items in course.items():
        assert shown[lab]["passed"] == 0 and shown[lab]["total"] == len(items)
        assert shown[lab]["checks"] == {title: "not tried" for _, title in items}


def test_progress_follows_a_check_from_stub_to_pass_and_forgets_a_reset_lab(learner):
    assert "[NOT YET]" in _run_check(learner, "stub")
    lab00 = _parse(_progress_cli(learner))["00"]
    assert lab00["passed"] == 0 and lab00["checks"][LAB00_CHECK_TITLE] == "not yet"

    assert "[PASSED]" in _run_check(learner, "solution")
    lab00 = _parse(_progress_cli(learner))["00"]
    assert lab00["passed"] == 1 and lab00["checks"][LAB00_CHECK_TITLE] == "passed"

    other = _progress_cli(learner, "--reset", "01")  # another lab's reset leaves Lab 00 alone
    assert "Lab 01: 0 recorded check(s) forgotten" in other and _parse(other)["00"]["passed"] == 1

    reset = _progress_cli(learner, "--reset", "00")
    assert "Lab 00: 1 recorded check(s) forgotten" in reset
    assert _parse(reset)["00"]["checks"][LAB00_CHECK_TITLE] == "not tried"
    assert _parse(_progress_cli(learner))["00"]["passed"] == 0  # and it stays forgotten


def test_a_notebook_cell_shows_the_same_progress(learner, monkeypatch):
    for name in ("GLASSBOX_HOME", "VAULT_ADDR", "VAULT_TOKEN"):
        monkeypatch.setenv(name, learner[name])  # the kernel inherits them, as under `glassbox lab` or Binder
    summary_cell = "from glassbox.course import progress\n\nprint(progress.summary())"
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(summary_cell),
        nbformat.v4.new_code_cell(LEARNER.replace("sys.argv[1]", '"solution"').replace("sys.argv[2]",
                                                                                          repr(SECRET_PATH))),
        nbformat.v4.new_code_cell(summary_cell),
    ])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    before, check, after = ("".join(output.get("text", "") for output in cell.outputs) for cell in notebook.cells)
    assert _parse(before)["00"]["checks"][LAB00_CHECK_TITLE] == "not tried"
    assert "[PASSED]" in check
    assert _parse(after)["00"]["checks"][LAB00_CHECK_TITLE] == "passed"
    assert after.strip() == _progress_cli(learner).strip()  # the terminal and the notebook agree

    _progress_cli(learner, "--reset", "00")
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    assert _parse("".join(output.get("text", "") for output in notebook.cells[0].outputs))["00"]["passed"] == 0


def test_running_the_untouched_lab_again_keeps_an_earlier_pass(learner):
    assert "[PASSED]" in _run_check(learner, "solution")
    assert "[NOT YET]" in _run_check(learner, "stub")      # a fresh copy of the lab, run top to bottom
    lab00 = _parse(_progress_cli(learner))["00"]
    assert lab00["passed"] == 1 and lab00["checks"][LAB00_CHECK_TITLE] == "passed"


def test_a_reader_that_stops_early_gets_no_broken_pipe_traceback(learner):
    result = subprocess.run(" ".join(_glassbox()) + " progress | head -1", shell=True, env=learner,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("Lab 00:") and "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
