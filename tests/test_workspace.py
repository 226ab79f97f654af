"""The learner's workspace: `glassbox workspace sync` and `glassbox lab` copy labs/ out of the tracked tree, and a
course update never overwrites what the learner edited (nbgitpuller's rule, see glassbox.course.workspace)."""

import json
import re
import shutil
import subprocess
import sys

import httpx
import nbformat
import pytest

from helpers import REPO, check_outcomes, lab_env, pick_free_port, wait_for_lab

LABS = sorted(path.name for path in (REPO / "labs").glob("*.ipynb"))


@pytest.fixture
def course(tmp_path):
    """A copy of the course (solutions/ and labs/) whose labs/ the test updates as a course update would."""
    root = tmp_path / "course"
    for folder in ("solutions", "labs"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return root


def _glassbox(course, *args):
    return subprocess.run([sys.executable, "-m", "glassbox", *args], cwd=course, capture_output=True, text=True,
                          timeout=120)


def _sync(course) -> str:
    """Run `glassbox workspace sync` in ``course`` and return the one line it prints."""
    done = _glassbox(course, "workspace", "sync")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and f"Your copies of the labs are in {course / 'workspace'}" in lines[0], done.stdout
    return lines[0]


def _change(path, text: str) -> bytes:
    """Append a markdown cell to the notebook at ``path`` (a course update, or a learner's note); its new bytes."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell(text))
    nbformat.write(notebook, path)
    return path.read_bytes()


def _answer(path) -> bytes:
    """Fill the notebook's first stub with an answer and save it, as JupyterLab's autosave does; its new bytes."""
    notebook = nbformat.read(path, as_version=4)
    stub = next(cell for cell in notebook.cells if cell.cell_type == "code" and "= ..." in cell.source)
    stub.source = "answer = 42  # the learner's own answer"
    stub.outputs, stub.execution_count = [nbformat.v4.new_output("stream", name="stdout", text="42\n")], 7
    nbformat.write(notebook, path)
    return path.read_bytes()


def test_the_first_sync_copies_every_lab_byte_for_byte(course):
    line = _sync(course)

    assert line.endswith(f"first copy of {len(LABS)} labs")
    for name in LABS:
        assert (course / "workspace" / name).read_bytes() == (course / "labs" / name).read_bytes()
    assert _sync(course).endswith(": up to date")


def test_an_untouched_lab_gets_the_course_update(course):
    _sync(course)
    updated = _change(course / "labs" / LABS[2], "A paragraph the course added.")

    assert _sync(course).endswith(": 1 lab updated")
    assert (course / "workspace" / LABS[2]).read_bytes() == updated


def test_an_edited_lab_is_kept_byte_for_byte_and_the_new_version_lands_beside_it(course):
    _sync(course)
    name = next(lab for lab in LABS if lab.startswith("03"))
    mine = _answer(course / "workspace" / name)
    updated = _change(course / "labs" / name, "A paragraph the course added.")

    line = _sync(course)

    beside = name.replace(".ipynb", ".new.ipynb")
    assert line.endswith(f": 1 kept (you edited it; the new version is {beside})")
    assert (course / "workspace" / name).read_bytes() == mine
    assert (course / "workspace" / beside).read_bytes() == updated
    assert _sync(course).endswith(": up to date")             # offered once, not again at every start

    newer = _change(course / "labs" / name, "A second update.")   # an untouched new version follows the course
    _sync(course)
    assert (course / "workspace" / beside).read_bytes() == newer
    assert (course / "workspace" / name).read_bytes() == mine

    _change(course / "workspace" / beside, "The learner wrote in the new version too.")
    notes = (course / "workspace" / beside).read_bytes()
    latest = _change(course / "labs" / name, "A third update.")
    _sync(course)
    set_aside = [path for path in (course / "workspace").iterdir() if re.fullmatch(
        re.escape(beside.removesuffix(".ipynb")) + r"__\d{14}\.ipynb", path.name)]
    assert [path.read_bytes() for path in set_aside] == [notes]   # nbgitpuller's timestamped name, never lost
    assert (course / "workspace" / beside).read_bytes() == latest


def test_a_deleted_lab_comes_back_as_the_course_has_it_now(course):
    _sync(course)
    (course / "workspace" / LABS[0]).unlink()
    updated = _change(course / "labs" / LABS[0], "A paragraph the course added.")

    assert _sync(course).endswith(f": 1 deleted lab restored ({LABS[0]})")
    assert (course / "workspace" / LABS[0]).read_bytes() == updated


def test_the_learners_own_files_are_never_touched(course):
    _sync(course)
    workspace = course / "workspace"
    scratch = workspace / "scratch.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), scratch)
    (workspace / "data").mkdir()
    (workspace / "data" / "mine.csv").write_text("a,b\n1,2\n")
    own = workspace / "10-extra.ipynb"
    own.write_text(scratch.read_text().replace("1 + 1", "2 + 2"))
    mine = {path: path.read_bytes() for path in (scratch, workspace / "data" / "mine.csv", own)}
    new_lab = _change(shutil.copy(course / "labs" / LABS[0], course / "labs" / own.name), "A new lab.")

    line = _sync(course)

    assert ": 1 new lab (10-extra.ipynb); your own 10-extra.ipynb renamed 10-extra__" in line
    renamed = [path for path in workspace.glob("10-extra__*.ipynb") if re.fullmatch(r"10-extra__\d{14}\.ipynb",
                                                                                    path.name)]
    assert len(renamed) == 1 and renamed[0].read_bytes() == mine.pop(own)
    assert own.read_bytes() == new_lab
    assert all(path.read_bytes() == content for path, content in mine.items())


def test_a_lab_the_course_drops_goes_when_untouched_and_stays_when_edited(course):
    _sync(course)
    mine = _answer(course / "workspace" / LABS[1])
    for name in LABS[:2]:
        (course / "labs" / name).unlink()

    assert _sync(course).endswith(": 1 untouched lab no longer in the course removed")
    assert not (course / "workspace" / LABS[0]).exists()
    assert (course / "workspace" / LABS[1]).read_bytes() == mine
    manifest = json.loads((course / "workspace" / ".glassbox-workspace.json").read_text())
    assert LABS[1] not in manifest["copied"]                  # the learner's own file from now on


def test_labs_check_passes_while_the_workspace_holds_answers(course):
    _sync(course)
    tracked = {name: (course / "labs" / name).read_bytes() for name in LABS}
    for name in LABS[:4]:
        _answer(course / "workspace" / name)

    done = _glassbox(course, "labs", "check")
    assert done.returncode == 0, done.stderr
    assert {name: (course / "labs" / name).read_bytes() for name in LABS} == tracked

    _answer(course / "labs" / LABS[0])   # what JupyterLab's autosave did before the workspace: labs/ goes stale
    stale = _glassbox(course, "labs", "check")
    assert stale.returncode == 1 and f"labs/{LABS[0]} is stale" in stale.stderr


def test_a_lab_run_in_the_workspace_records_its_checks_for_glassbox_progress(course, tmp_path):
    from glassbox.course.build import BEGIN, END, STUB

    _sync(course)
    lab = course / "workspace" / LABS[0]
    solved = next(cell.source for cell in nbformat.read(course / "solutions" / LABS[0], as_version=4).cells
                  if "check_made_up_token(prediction)" in cell.source)
    notebook = nbformat.read(lab, as_version=4)
    answer = next(cell for cell in notebook.cells if "check_made_up_token(prediction)" in cell.source)
    answer.source = "\n".join(line for line in solved.splitlines()       # the learner answers as the solution does
                              if not line.lstrip().startswith((BEGIN, END, STUB.strip())))
    nbformat.write(notebook, lab)
    env = lab_env(tmp_path)
    try:
        ran = subprocess.run([sys.executable, "-m", "glassbox.course.execute", lab.name], cwd=lab.parent, env=env,
                             capture_output=True, text=True, timeout=300)
        progress = subprocess.run([sys.executable, "-m", "glassbox", "progress"], env=env, capture_output=True,
                                  text=True, timeout=120)
    finally:
        subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True)

    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Lab 00: 1/3 checks passed" in progress.stdout, progress.stdout
    assert progress.stdout.count("not yet") >= 2                         # the stubs left open were tried too
    assert len(check_outcomes(nbformat.read(lab, as_version=4), "00")) == 3   # its outputs: in the learner's copy
    assert (course / "labs" / LABS[0]).read_bytes() == (REPO / "labs" / LABS[0]).read_bytes()


def test_glassbox_lab_serves_the_workspace_and_autosaves_there(course):
    _sync(course)
    mine = _answer(course / "workspace" / LABS[1])
    _change(course / "labs" / LABS[1], "A paragraph the course added.")
    env = lab_env(course.parent)
    process = subprocess.Popen([sys.executable, "-m", "glassbox", "lab", "--no-browser", "--port",
                                str(pick_free_port())], cwd=course, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        workspace_line, _vault_line, lab_line = (process.stdout.readline() for _ in range(3))
        lab_url = re.search(r"(http://127\.0\.0\.1:\d+/lab\?token=\S+)", lab_line).group(1)
        wait_for_lab(lab_url, process)
        base, token = lab_url.split("/lab?token=")
        contents = httpx.get(f"{base}/api/contents", headers={"Authorization": f"token {token}"}).json()
        answered = json.loads(_answer(shutil.copy(REPO / "labs" / LABS[0], course.parent / "answered.ipynb")))
        saved = httpx.put(f"{base}/api/contents/{LABS[0]}", headers={"Authorization": f"token {token}"},
                          json={"type": "notebook", "format": "json", "content": answered})   # as autosave does
    finally:
        process.terminate()
        process.wait(timeout=30)
        subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True)

    beside = LABS[1].replace(".ipynb", ".new.ipynb")
    assert workspace_line.strip() == (f"Your copies of the labs are in {course / 'workspace'}: "
                                      f"1 kept (you edited it; the new version is {beside})")
    assert {item["name"] for item in contents["content"]} == {*LABS, beside}    # the workspace, not labs/
    assert saved.status_code == 200
    assert "the learner's own answer" in (course / "workspace" / LABS[0]).read_text()
    assert (course / "workspace" / LABS[1]).read_bytes() == mine
    assert (course / "labs" / LABS[0]).read_bytes() == (REPO / "labs" / LABS[0]).read_bytes()   # tracked: untouched
