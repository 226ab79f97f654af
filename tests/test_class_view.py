"""The instructor's live class view, run by a REAL JupyterHub as its managed service, behind configurable-http-proxy.

The Hub here is the test's own (DummyAuthenticator with one password, four learners and an admin, no spawner
needed): learners' tokens come from the Hub's REST API with the scope a learner's server token carries
(``access:services!service=class-view``), admins and learners log in through the Hub's login form and the
service's real OAuth flow. Every request goes through the proxy, as in a workshop. Proved: a learner's post shows
under that learner only, and only an admin reads the view; bogus tokens and posts "as another learner" are
refused; the most-failed check and its latest feedback; the page's plot and table; a restarted service keeps
the room; a real check in a real Jupyter kernel posts its outcome, and a class view that never answers delays
a check by no more than the post's timeout.

The proxy is deploy/hub's own (``npm ci --prefix deploy/hub``); without it the module skips.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time

import httpx
import matplotlib.image
import nbformat
import numpy as np
import psutil
import pytest
from nbclient import NotebookClient

from glassbox.course import class_view, class_view_hub, progress
from glassbox.ports import free_ports
from helpers import REPO, eventually

PROXY = REPO / "deploy" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
LEARNERS = ("alice", "bob", "carol", "dave")
ADMIN = "teacher"
PASSWORD = secrets.token_urlsafe(12)
SERVICE = "/services/class-view/"
SCOPE = class_view_hub.ACCESS_SCOPE
COURSE = progress.exercises()
# The most-failed test's two checks: no other test posts to lab 02.
WORST, RUNNER_UP = COURSE["02"][0][0], COURSE["02"][1][0]

CONFIG = """\
c.JupyterHub.bind_url = "http://127.0.0.1:{public}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{root}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
c.JupyterHub.pid_file = "{root}/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {learners!r}
c.Authenticator.admin_users = {{{admin!r}}}
from glassbox.course import class_view_hub  # the workshop hub's roles and service entry
c.JupyterHub.load_roles = class_view_hub.roles() + [
    {{"name": "token-issuer", "scopes": ["admin:users", "tokens", {scope!r}], "services": ["tests"]}},
]
c.JupyterHub.services = [
    class_view_hub.service("http://127.0.0.1:{service}", cwd="{root}/class-view"),
    {{"name": "tests", "api_token": {issuer!r}}},
]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A running Hub: ``{"url", "issuer", "log", "root"}``; stopped (with its proxy and service) afterwards."""
    if not PROXY.exists():
        pytest.skip("configurable-http-proxy is not installed: run `npm ci --prefix deploy/hub`")
    root = tmp_path_factory.mktemp("class-view-hub")
    (root / "class-view").mkdir()
    public, hub_port, proxy_api, service = free_ports(4)
    issuer = secrets.token_hex(32)
    (root / "jupyterhub_config.py").write_text(CONFIG.format(
        public=public, hub=hub_port, proxy_api=proxy_api, service=service, proxy=str(PROXY), root=root,
        password=PASSWORD, learners=set(LEARNERS), admin=ADMIN, scope=SCOPE, issuer=issuer))
    log = root / "hub.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(root / "jupyterhub_config.py")],
                                   cwd=root, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{public}"
    started = time.monotonic()
    try:
        assert eventually(lambda: _service_answers(url), timeout=120), log.read_text()[-3000:]
        print(f"Hub, proxy and class view up in {time.monotonic() - started:.1f} s")
        yield {"url": url, "issuer": issuer, "log": log, "root": root}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _service_answers(url: str) -> bool:
    """The proxy routes to the class view and it answers (403 to an anonymous post: it is up and guarded)."""
    try:
        return httpx.post(url + SERVICE + "api/progress", timeout=5).status_code == 403
    except httpx.TransportError:
        return False


def _token(hub, user: str, scopes=(SCOPE,)) -> str:
    """A token of ``user``'s from the Hub's REST API, with the scopes a learner's server token has."""
    answer = httpx.post(f"{hub['url']}/hub/api/users/{user}/tokens", json={"scopes": list(scopes), "note": "test"},
                        headers={"Authorization": f"token {hub['issuer']}"}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


@pytest.fixture(scope="module")
def tokens(hub):
    return {user: _token(hub, user) for user in LEARNERS}


def _post(hub, token: str | None, body) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.post(hub["url"] + SERVICE + "api/progress", json=body, headers=headers, timeout=30)


def _outcome(lab: str, name: str, passed: bool, message: str = "well done.") -> dict:
    return {"lab": lab, "name": name, "passed": passed, "message": message}


@contextlib.contextmanager
def _login(hub, user: str):
    """A browser-like session logged in through the Hub's form, then into the class view by OAuth:
    ``(session, the class view's answer after the OAuth round trip)``."""
    with httpx.Client(base_url=hub["url"], follow_redirects=True, timeout=60) as session:
        form = session.get("/hub/login")
        xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', form.text)[1]
        answer = session.post("/hub/login", params={"next": SERVICE},
                              data={"username": user, "password": PASSWORD, "_xsrf": xsrf})
        assert any("/hub/api/oauth2/authorize" in str(step.url) for step in answer.history), answer.history
        yield session, answer


@pytest.fixture(scope="module")
def admin(hub):
    with _login(hub, ADMIN) as (session, landing):
        assert landing.status_code == 200, landing.text[:500]
        yield session


def _view(admin) -> dict:
    answer = admin.get(SERVICE + "api/class")
    assert answer.status_code == 200
    return answer.json()


def test_a_learners_post_shows_for_that_learner_only(hub, tokens, admin):
    lab, (name, _) = "00", COURSE["00"][0]
    before = _view(admin)
    assert sorted(before["learners"]) == sorted(LEARNERS)   # the Hub's learners, before any has posted; no admin
    answer = _post(hub, tokens["alice"], _outcome(lab, name, False, "`first_secret` is still the stub."))
    assert answer.status_code == 200, answer.text
    view = _view(admin)
    assert view["version"] == before["version"] + 1
    assert view["learners"]["alice"][lab][name] == {"state": "not yet", "attempts": 1, "failures": 1}
    assert all(view["learners"].get(user) == before["learners"].get(user) for user in ("bob", "carol"))
    # every check of the course is listed for her, the others as not tried
    assert {lab: sorted(checks) for lab, checks in view["learners"]["alice"].items()} == \
        {lab: sorted(name for name, _ in items) for lab, items in COURSE.items()}
    assert view["learners"]["alice"]["01"][COURSE["01"][0][0]]["state"] == "not tried"

    assert _post(hub, tokens["alice"], _outcome(lab, name, True)).status_code == 200
    assert _post(hub, tokens["alice"], _outcome(lab, name, False, "stub again")).status_code == 200
    assert _view(admin)["learners"]["alice"][lab][name] == {"state": "passed", "attempts": 3, "failures": 2}


def test_a_learner_cannot_read_the_view(hub, tokens):
    with _login(hub, "bob") as (bob, landing):
        assert landing.status_code == 403 and "alice" not in landing.text
        for path in ("api/class", "plot.png"):
            assert bob.get(SERVICE + path).status_code == 403
    for path in ("", "api/class", "plot.png"):  # nor with the token of her own server
        answer = httpx.get(hub["url"] + SERVICE + path, headers={"Authorization": f"token {tokens['bob']}"},
                           timeout=30, follow_redirects=True)
        assert answer.status_code == 403, (path, answer.status_code)


def test_posts_without_a_valid_token_of_the_service_are_refused(hub, tokens, admin):
    before = _view(admin)["version"]
    body = _outcome("00", COURSE["00"][0][0], True)
    assert _post(hub, None, body).status_code == 403
    assert _post(hub, secrets.token_hex(32), body).status_code == 403
    assert _post(hub, tokens["alice"][:-2] + "00", body).status_code == 403
    unscoped = _token(hub, "carol", scopes=("read:users:name!user=carol",))  # valid, but not for this service
    assert _post(hub, unscoped, body).status_code == 403
    assert _view(admin)["version"] == before


def test_a_learner_cannot_post_as_another(hub, tokens, admin):
    before = _view(admin)
    lab, name = "01", COURSE["01"][0][0]
    answer = _post(hub, tokens["alice"], _outcome(lab, name, True) | {"user": "bob"})
    assert answer.status_code == 400 and "token" in answer.json()["error"]
    for wrong in ({"lab": "99", "name": name}, {"name": "no-such-check"}, {"passed": "yes"}):
        assert _post(hub, tokens["alice"], _outcome(lab, name, True) | wrong).status_code == 400
    assert _view(admin) == before  # nothing was recorded, for bob or anyone


def test_the_most_failed_check_and_its_latest_feedback(hub, tokens, admin):
    posts = [("alice", WORST, False, "the importances were scored on `X_train`."),
             ("carol", RUNNER_UP, False, "`pd` is still the stub."),
             ("bob", WORST, False, "the importances were scored on `X_train`."),
             ("carol", RUNNER_UP, False, "`pd` is still the stub."),
             ("alice", WORST, True, "well done."),
             ("carol", RUNNER_UP, False, "a *different* mistake"),
             ("bob", WORST, False, "you used `n_repeats=1`: <script>alert(1)</script>"),
             ("carol", RUNNER_UP, True, "well done."),
             ("dave", WORST, True, "well done.")]
    for user, name, passed, message in posts:
        assert _post(hub, tokens[user], _outcome("02", name, passed, message)).status_code == 200
    view = _view(admin)
    assert view["most_failed"] == {"lab": "02", "name": WORST, "title": COURSE["02"][0][1], "failures": 3,
                                   "learners": 2, "feedback": "you used `n_repeats=1`: <script>alert(1)</script>"}
    states = {user: view["learners"][user]["02"][WORST]["state"] for user in ("alice", "bob", "dave")}
    assert states == {"alice": "passed", "bob": "not yet", "dave": "passed"}

    page = admin.get(SERVICE).text
    shown = re.search(r'<div class="worst" id="most-failed">(.*?)</div>', page, re.S)[1]
    assert COURSE["02"][0][1] in shown and '3 "not yet" from 2 learner(s)' in shown
    assert "you used <code>n_repeats=1</code>: &lt;script&gt;" in shown and "<script>alert" not in page


def test_the_page_has_its_plot_and_table_and_follows_the_room(hub, tokens, admin):
    page = admin.get(SERVICE)
    assert page.status_code == 200
    view = _view(admin)
    assert len(re.findall(r'<table class="lab" data-lab="(\d\d)">', page.text)) == len(COURSE)
    bob_row = re.search(r'<table class="lab" data-lab="02">.*?<tr data-user="bob">(.*?)</tr>', page.text, re.S)[1]
    assert re.search(rf'class="not-yet" data-check="{WORST}"', bob_row)
    assert len(re.findall(r'data-check=', bob_row)) == len(COURSE["02"])
    assert f'src="{SERVICE}plot.png?v={view["version"]}"' in page.text
    assert f'fetch("{SERVICE}api/class"' in page.text and "setInterval" in page.text  # it polls the JSON

    plot = admin.get(SERVICE + "plot.png")
    assert plot.headers["content-type"] == "image/png"
    pixels = matplotlib.image.imread(io.BytesIO(plot.content), format="png")[..., :3]
    for colour in class_view.COLOURS:   # passed, not yet and not tried cells are all drawn
        rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).max(axis=-1) < 0.02).sum() > 50, colour

    # live: a new outcome changes the JSON's version, so the polling page reloads and shows it
    assert _post(hub, tokens["dave"], _outcome("03", COURSE["03"][0][0], True)).status_code == 200
    assert _view(admin)["version"] == view["version"] + 1
    assert re.search(rf'<tr data-user="dave">.*?class="passed" data-check="{COURSE["03"][0][0]}"',
                     admin.get(SERVICE).text, re.S)


def test_the_page_follows_the_room_by_itself_in_a_browser(hub, tokens):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed: `make` installs requirements.lock")
    from playwright.sync_api import expect, sync_playwright
    from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (`apt-get install -y chromium`)")
    (first, _), (second, _) = COURSE["04"][:2]
    assert _post(hub, tokens["carol"], _outcome("04", first, True)).status_code == 200
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{hub['url']}/hub/login?next={SERVICE}")   # the admin's own login, then OAuth
        page.fill("#username_input", ADMIN)
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        expect(page.locator("h1")).to_have_text("Class view")
        cell = page.locator(f'table[data-lab="04"] tr[data-user="carol"] td[data-check="{second}"]')
        expect(cell).to_have_text("not tried")
        page.wait_for_function("document.getElementById('plot').naturalWidth > 0")   # the PNG loaded and decoded
        assert _post(hub, tokens["carol"], _outcome("04", second, False, "not yet")).status_code == 200
        expect(cell).to_have_text("not yet", timeout=15_000)   # no one reloaded the page: its polling did
        page.wait_for_function("document.getElementById('plot').naturalWidth > 0")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "class-view.png"), full_page=True)
        browser.close()


def test_a_restarted_service_keeps_the_room(hub, admin):
    before = _view(admin)
    (service,) = _class_view_processes(hub)
    service.kill()   # the Hub notices at its next poll (every 30 s) and starts the service again
    assert eventually(lambda: _class_view_processes(hub) not in ([], [service]), timeout=90)
    assert eventually(lambda: _service_answers(hub["url"]), timeout=60), hub["log"].read_text()[-3000:]
    assert "Service class-view exited" in hub["log"].read_text()
    assert _view(admin) == before   # (a new cookie secret: the session logs in again by OAuth, unseen)


def _class_view_processes(hub) -> list[psutil.Process]:
    """The class view's live processes (the Hub's child, a zombie once killed until the Hub reaps it)."""
    return [process for process in psutil.process_iter(["cmdline", "cwd", "status"])
            if process.info["cwd"] == str(hub["root"] / "class-view") and process.info["status"] != psutil.STATUS_ZOMBIE
            and "glassbox.course.class_view" in (process.info["cmdline"] or [])]


CHECK_CELL = """\
from glassbox.checks.lab01 import check_unreadable_weights
check_unreadable_weights({answer!r})
"""


def _run_check_in_kernel(monkeypatch, tmp_path, url: str, token: str, answer: str) -> str:
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "learner-home"))
    monkeypatch.setenv("GLASSBOX_CLASS_VIEW_URL", url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CHECK_CELL.format(answer=answer))])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    (output,) = notebook.cells[0].outputs
    return output["data"]["text/plain"]


def test_a_check_in_a_real_kernel_posts_its_outcome(hub, tokens, admin, monkeypatch, tmp_path):
    shown = _run_check_in_kernel(monkeypatch, tmp_path, hub["url"] + SERVICE, tokens["dave"], "c")  # a mistake
    assert shown.startswith("[NOT YET] Lab 01") and "`income`'s curve bends" in shown   # the learner is told
    cell = _view(admin)["learners"]["dave"]["01"]["unreadable-weights"]
    assert cell == {"state": "not yet", "attempts": 1, "failures": 1}
    room = class_view.Room(hub["root"] / "class-view" / "class-view.json")
    message = shown.split(": ", 1)[1].split("\n  Hint")[0]   # what the learner was told, as the view keeps it
    assert room.learners["dave"]["01"]["unreadable-weights"]["feedback"] == message
    assert tokens["dave"] not in (hub["root"] / "class-view" / "class-view.json").read_text()


def test_a_class_view_that_never_answers_does_not_hold_up_a_check(monkeypatch, tmp_path):
    with socket.socket() as silent:   # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        held = []   # the accepted connection stays open (a dropped one would be closed: a fast error)
        threading.Thread(target=lambda: held.append(silent.accept()), daemon=True).start()
        monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
        monkeypatch.setenv("GLASSBOX_CLASS_VIEW_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/")
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "a-token")
        from glassbox.checks.lab01 import check_unreadable_weights
        started = time.monotonic()
        feedback = check_unreadable_weights("z")
        took = time.monotonic() - started
    assert not feedback.passed and "not one of the options" in feedback.message
    assert progress.POST_TIMEOUT <= took, took   # it waited for the class view
    connection = held[0][0]
    connection.settimeout(10)   # a bound on what has already happened: the kernel closed its side when it gave up
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    assert received.startswith(b"POST ")   # then gave up: its side of the connection is closed, the check returned
    assert progress.load()["01"]["unreadable-weights"]["failures"] == 1   # and it was recorded locally
