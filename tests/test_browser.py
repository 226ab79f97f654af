"""The learner's JupyterLab in a real browser: each lab opened from the file browser, Run All, what renders.

`glassbox lab` (what `make lab` runs) starts the dev Vault and JupyterLab on a COPY of labs/ in a temporary
folder (the browser saves there, never into the tracked labs/), with a private course home, Vault port and
Jupyter config and runtime folders. Playwright (PyPI) drives Debian's Chromium (`/usr/bin/chromium`; no
browser is downloaded). For every lab:

- it is opened by double-clicking its name in the file browser, and run with the Run menu's "Run All Cells";
- the test waits until every code cell has an execution count, and no longer than that;
- no cell shows a traceback, in the page or in the notebook JupyterLab saves;
- every exercise's "not yet" box renders as HTML in that exercise's own cell, with a hint (a lab as first
  opened holds only stubs);
- every cell that draws in the solution shows a PNG image here too;
- a full-page screenshot goes to ``$GLASSBOX_ARTIFACTS`` (default ``.artifacts/browser/`` in the repository);
- the notebook is closed and its kernel shut down before the next lab.

In lab 02 a learner's catalogued wrong answer is typed into an exercise cell (the "not yet" box names the
mistake), then the solution's answer (the pass box shows).

Chromium runs with ``CHROMIUM`` (default ``/usr/bin/chromium``); `.ci/run` installs Debian's package. A machine
without it skips, and in CI a skip is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nbformat
import pytest

from glassbox.course import progress
from glassbox.course.build import BEGIN, END, STUB
from helpers import REPO, pick_free_port
from labruns import exercise_cells, replace_blocks, solution

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As root on this machine's closed network: no sandbox, no GPU, nothing Chromium would fetch by itself.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("GLASSBOX_ARTIFACTS") or REPO / ".artifacts" / "browser")
LABS = sorted(path.name for path in (REPO / "labs").glob("[0-9][0-9]-*.ipynb"))
RUN_ALL_TIMEOUT_S = float(os.environ.get("GLASSBOX_BROWSER_LAB_TIMEOUT", 900))  # an upper bound per lab, not a wait
TIMES: dict[str, float] = {}     # seconds of Run All per lab, printed at the end of the module

pytest.importorskip("playwright.sync_api", reason="playwright is not installed: `make` installs requirements.lock")
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """`glassbox lab --no-browser` on a copy of labs/: ``(base URL, token, folder)``; stopped afterwards."""
    root = tmp_path_factory.mktemp("browser")
    folder = root / "labs"
    shutil.copytree(REPO / "labs", folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "deploy").symlink_to(REPO / "deploy")   # lab 09 reads deploy/k8s/ from a folder above the labs
    env = dict(os.environ, GLASSBOX_HOME=str(root / "home"), GLASSBOX_VAULT_PORT=str(pick_free_port()),
               GLASSBOX_VAULT_BACKEND="embedded", JUPYTER_CONFIG_DIR=str(root / "jupyter"),
               JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    for name in ("VAULT_ADDR", "VAULT_TOKEN"):
        env.pop(name, None)
    printed = root / "glassbox-lab.out"      # a file, not a pipe: nothing JupyterLab prints can block it
    with printed.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "glassbox", "lab", "--no-browser", "--port",
                                    str(pick_free_port()), "--dir", str(folder)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"(http://127\.0\.0\.1:\d+)/lab\?token=(\S+)", printed.read_text())):
            assert time.monotonic() < deadline and process.poll() is None, printed.read_text()[-3000:]
            time.sleep(0.5)
        base, token = found.groups()
        while True:
            try:
                if httpx.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, printed.read_text()[-3000:]
            time.sleep(0.5)
        yield base, token, folder
    finally:
        process.terminate()
        try:
            stopped = process.wait(timeout=60) is not None
        except subprocess.TimeoutExpired:
            stopped = False
            process.kill()
            process.wait(timeout=30)
        subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True)
        assert stopped, f"JupyterLab did not stop on SIGTERM within 60 s:\n{printed.read_text()[-3000:]}"
        if TIMES:
            print("\nRun All in the browser, seconds per lab: "
                  + ", ".join(f"{lab} {seconds:.0f}" for lab, seconds in TIMES.items()))


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (`apt-get install -y chromium`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, jupyterlab):
    """One browser tab on the learner's JupyterLab for every lab, as a learner works."""
    base, token, _ = jupyterlab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{base}/lab?token={token}")
    expect(page.locator(".jp-DirListing-content")).to_be_visible(timeout=120_000)
    # The launcher's kernel card appears once JupyterLab has the kernel specs. A notebook opened before that
    # asks "Select Kernel" (JupyterLab finds no spec to start yet), as it would a learner who clicks that fast.
    expect(page.locator(".jp-LauncherCard[title*='Python 3']").first).to_be_visible(timeout=120_000)
    yield page
    context.close()


def _api(jupyterlab, path: str):
    base, token, _ = jupyterlab
    return httpx.get(f"{base}{path}", headers={"Authorization": f"token {token}"}).json()


def _open(page: Page, name: str):
    """Double-click ``name`` in the file browser; the notebook's panel once its kernel is connected, idle."""
    page.locator(".jp-DirListing-item", has_text=name).dblclick()
    panel = page.locator('.jp-NotebookPanel:has(.jp-Notebook) >> visible=true')
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")).to_have_text(name, timeout=60_000)
    # The kernel is connected once the status bar says "Idle" (a Run All before that asks "Select Kernel")
    idle = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle$"))
    expect(idle).to_be_visible(timeout=120_000)
    return panel


def _menu(page: Page, menu: str, item: str):
    """Click ``menu`` in the menu bar, then its item labelled ``item`` (with "…" where the item asks first)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}…?$"))
    page.locator(".lm-Menu .lm-Menu-item", has=label).click()


# The state of a Run All, read from the page: cells still waiting or running ("[*]"), cells with an execution
# count, and whether an output shows a traceback (JupyterLab stops a Run All at the first error).
_STATE = """panel => {
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  const traceback = [...panel.querySelectorAll('.jp-OutputArea-output')].some(o =>
      o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr' && o.textContent.includes('Traceback'));
  return {cells: prompts.length, busy: prompts.filter(p => p.includes('*')).length,
          counted: prompts.filter(p => /^\\[\\d+\\]:$/.test(p)).length, traceback};
}"""


# Each code cell's execution count as its prompt shows it ("" where it has none).
_COUNTS = """panel => [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(
  p => (p.textContent.trim().match(/^\\[(\\d+)\\]:$/) || ['', ''])[1])"""


def _run(page: Page, panel, until: float) -> dict:
    """Wait until no cell is busy and either every code cell has run or an output shows a traceback."""
    handle = panel.element_handle()
    while True:
        state = page.evaluate(_STATE, handle)
        if state["busy"] == 0 and (state["counted"] == state["cells"] or state["traceback"]):
            return state
        if time.monotonic() > until:
            _screenshot(page, panel, f"timeout-{time.time():.0f}")
            raise AssertionError(f"Run All did not finish in time: {state}")
        page.wait_for_timeout(500)


def _tracebacks(panel) -> list[str]:
    outputs = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [text[-3000:] for text in outputs.all_text_contents() if "Traceback" in text]   # the tail says why


_BOX = ".jp-OutputArea-output[data-mime-type='text/html'] div[style*='border-left']"


def _boxes(panel, lab: str) -> dict[str, dict]:
    """``{exercise: its box}``: the self-check box in each exercise's own cell, as rendered.

    JupyterLab renders a cell's outputs once it has scrolled into view (a notebook taller than the window
    never shows its last boxes otherwise), so each exercise's cell is scrolled to, then its box read: the mark
    (the bold "✔ Passed"/"✘ Not yet"), the title after it, and the whole text (``textContent``).
    """
    cells = panel.locator(".jp-Notebook .jp-Cell")
    found = {}
    for exercise, index in exercise_cells(solution(lab), lab).items():
        cells.nth(index).scroll_into_view_if_needed()
        box = cells.nth(index).locator(_BOX, has_text=f"Lab {lab} ·")
        expect(box, f"cell {index} ({exercise}) shows no self-check box").to_have_count(1, timeout=30_000)
        found[exercise] = box.evaluate("""box => {
            const mark = box.querySelector(':scope > b'), body = box.querySelector(':scope > div');
            let head = '';
            for (let node = mark && mark.nextSibling; node && node !== body; node = node.nextSibling)
                head += node.textContent;
            return {mark: mark ? mark.textContent : '', head: head.trim(), text: box.textContent};
        }""")
    return found


def _screenshot(page: Page, panel, name: str):
    """The whole notebook in one PNG: the window made as tall as the notebook's content for the shot."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("panel => panel.querySelector('.jp-WindowedPanel-outer').scrollHeight",
                           panel.element_handle())
    page.set_viewport_size({"width": 1400, "height": min(max(1000, height + 200), 30_000)})
    panel.evaluate("panel => { panel.querySelector('.jp-WindowedPanel-outer').scrollTop = 0; }")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def _save(page: Page, panel, folder: Path, name: str) -> nbformat.NotebookNode:
    """File > Save Notebook (into the copy); the notebook as saved once it holds every count the page shows.

    JupyterLab's autosave (every 120 s) snapshots the notebook when it starts, and marks the tab clean when it
    ends, even if a cell finished in between: a clean tab does not mean the file holds what the page shows. So
    the file is read until its execution counts are the page's, for up to 60 s after this save.
    A save whose request the browser could not send ("File Save Error ... Failed to fetch", seen here once on
    a loaded machine, before the request reached the server) is dismissed and tried again, as a learner would.
    """
    shown = [int(count) if count.isdigit() else None for count in page.evaluate(_COUNTS, panel.element_handle())]
    clean = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current:not(.jp-mod-dirty)")
    failed = page.locator(".jp-Dialog", has_text="File Save Error")
    for attempt in range(3):
        panel.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
        _menu(page, "File", "Save Notebook")
        expect(clean.or_(failed).first).to_be_visible(timeout=60_000)
        if not failed.count():
            deadline = time.monotonic() + 60
            while True:
                saved = nbformat.read(folder / name, as_version=4)
                counts = [cell.execution_count for cell in saved.cells if cell.cell_type == "code"]
                if counts == shown or time.monotonic() > deadline:
                    assert counts == shown, f"{name} as saved {counts} is not what the page shows {shown}"
                    return saved
                time.sleep(0.5)
        message = failed.text_content()
        failed.locator(".jp-mod-accept, .jp-mod-reject").first.click()
    raise AssertionError(f"JupyterLab could not save {name}: {message}")


def _shut_down(page: Page, jupyterlab):
    """File > Close and Shut Down Notebook, confirmed; then the server runs no kernel."""
    while page.locator(".jp-Dialog").count():        # a dialog left by a failure before
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
    _menu(page, "File", "Close and Shut Down Notebook")
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible(timeout=30_000)
    dialog.locator(".jp-mod-accept").click()
    deadline = time.monotonic() + 60
    while _api(jupyterlab, "/api/kernels"):
        assert time.monotonic() < deadline, "the notebook's kernel still runs after Close and Shut Down"
        time.sleep(0.5)


def _draws(notebook) -> list[int]:
    """Indexes of the code cells with a PNG among their outputs."""
    return [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            and any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))]


@pytest.mark.parametrize("name", LABS)
def test_run_all_in_the_browser_shows_no_error_every_check_box_and_the_plots(page, jupyterlab, name):
    lab = name[:2]
    panel = _open(page, name)
    started = time.monotonic()
    _menu(page, "Run", "Run All Cells")
    state = _run(page, panel, started + RUN_ALL_TIMEOUT_S)
    TIMES[lab] = time.monotonic() - started
    try:
        _screenshot(page, panel, name)     # first: the window as tall as the notebook lays out every cell
        assert not _tracebacks(panel), _tracebacks(panel)
        assert state["counted"] == state["cells"] > 0, state

        boxes = _boxes(panel, lab)
        titles = dict(progress.exercises()[lab])
        assert {exercise: box["head"] for exercise, box in boxes.items()} == {
            exercise: f"— Lab {lab} · {title}" for exercise, title in titles.items()}, boxes
        assert all(box["mark"] == "✘ Not yet" and "Hint:" in box["text"] for box in boxes.values()), boxes

        saved = _save(page, panel, jupyterlab[2], name)
        code = [cell for cell in saved.cells if cell.cell_type == "code"]
        assert all(cell.execution_count for cell in code), [
            index for index, cell in enumerate(saved.cells) if cell.cell_type == "code" and not cell.execution_count]
        errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
        assert not errors, [f"{error.ename}: {error.evalue}" for error in errors]

        # Plots: the lab as first opened draws where its cells do not wait for an exercise's answer (lab 07's
        # one plot waits for one), and only where the solution draws; each plot the kernel sent renders here.
        drawn, in_solution = _draws(saved), _draws(solution(lab))
        assert set(drawn) <= set(in_solution), (drawn, in_solution)
        cells = panel.locator(".jp-Notebook .jp-Cell")
        for index in drawn:                 # JupyterLab renders a cell's outputs once it scrolls into view
            cells.nth(index).scroll_into_view_if_needed()
            image = cells.nth(index).locator(".jp-OutputArea-output[data-mime-type='image/png'] img").first
            expect(image, f"cell {index} of {name} shows no plot").to_have_attribute(
                "src", re.compile(r"^data:image/png;base64,."), timeout=10_000)
    finally:
        _shut_down(page, jupyterlab)       # a failure here is reported after the test's own


def _solution_block(source: str) -> str:
    """The code between a cell's solution markers, without its ``# STUB:`` lines."""
    lines = source.split(BEGIN, 1)[1].split(END, 1)[0].splitlines()[1:]
    return "\n".join(line for line in lines if not line.strip().startswith(STUB.strip()))


def _type_into(page: Page, cell, text: str):
    cell.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    expect(cell.locator(".cm-content")).to_have_text(text.replace("\n", ""), timeout=10_000)  # CodeMirror's lines
    page.keyboard.press("Shift+Enter")


def test_lab02_feedback_changes_from_not_yet_to_passed_as_the_learner_types(page, jupyterlab):
    from mistakes.lab02 import MISTAKES

    name = next(lab for lab in LABS if lab.startswith("02"))
    exercise = "read-interaction"
    index = exercise_cells(solution("02"), "02")[exercise]
    source = solution("02").cells[index].source
    wrong = next(mistake for mistake in MISTAKES if mistake.exercise == exercise and mistake.code == 'answer = "b"')
    title = dict(progress.exercises()["02"])[exercise]

    panel = _open(page, name)
    cells = panel.locator(".jp-Notebook .jp-Cell")
    try:
        cells.nth(index).locator(".jp-InputPrompt").click()               # select the exercise's cell
        started = time.monotonic()
        _menu(page, "Run", "Run All Above Selected Cell")
        until = started + RUN_ALL_TIMEOUT_S
        while True:   # every cell above has its count (the exercise's own and those below have not run)
            prompts = cells.locator(".jp-InputPrompt").all_text_contents()[:index]
            code = [p for p, cell in zip(prompts, solution("02").cells) if cell.cell_type == "code"]
            if all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in code):
                break
            assert time.monotonic() < until and not _tracebacks(panel), _tracebacks(panel) or prompts
            page.wait_for_timeout(500)

        cell = cells.nth(index)
        _type_into(page, cell, replace_blocks(source, wrong.code))
        box = cell.locator(_BOX)
        expect(box).to_contain_text("✘ Not yet", timeout=60_000)
        expect(box).to_contain_text(title)
        for phrase in wrong.says:                                          # it names the learner's mistake
            expect(box).to_contain_text(re.compile(re.escape(phrase), re.IGNORECASE))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cell.screenshot(path=str(ARTIFACTS / "02-feedback-not-yet.png"))

        _type_into(page, cell, replace_blocks(source, _solution_block(source)))
        expect(box).to_contain_text("✔ Passed", timeout=60_000)
        expect(box).not_to_contain_text("Not yet")
        expect(box).to_contain_text(title)
        assert not _tracebacks(panel)
        cell.screenshot(path=str(ARTIFACTS / "02-feedback-passed.png"))
        saved = _save(page, panel, jupyterlab[2], name).cells[index]       # what the kernel ran last
    finally:
        _shut_down(page, jupyterlab)
    assert saved.source == replace_blocks(source, _solution_block(source))
    assert [o.data["text/plain"].split(" ·")[0] for o in saved.outputs if o.output_type == "execute_result"] \
        == ["[PASSED] Lab 02"]
