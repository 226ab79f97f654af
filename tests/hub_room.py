"""The workshop hub for tests and benchmarks: the course image, a running Hub, and what a learner does on it.

    image = course_image()                           # `make course-image`: Docker's layer cache makes a rebuild quick
    with running_hub(tmp_path, image) as hub:        # deploy/hub/jupyterhub_config.py on free ports, its own prefix
        browser = httpx.Client(base_url=hub.url)
        sign_up(browser, "ada", password); log_in(browser, "ada", password)
        spawn(hub, "ada", own_token(browser, "ada"))

Used by tests/test_hub.py and benchmarks/hub_capacity.py.
"""

import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from glassbox import __version__
from glassbox.ports import free_ports
from helpers import REPO, eventually, require_engine

CONFIG = REPO / "deploy" / "hub" / "jupyterhub_config.py"
PROXY = REPO / "deploy" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_IMAGE = f"glassbox/course:{__version__}"


def course_image() -> str:
    """The course image (binder/Dockerfile: the learners', Binder's, the devcontainer's), built by `make course-image`;
    its tag."""
    require_engine()
    built = subprocess.run(["make", "--no-print-directory", "course-image"], cwd=REPO, capture_output=True, text=True)
    assert built.returncode == 0, f"make course-image failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    return COURSE_IMAGE


class Hub:
    """A running Hub: ``url`` (the proxy's public address on 127.0.0.1), ``prefix``, ``log()``."""

    def __init__(self, url: str, prefix: str, log_path: Path):
        self.url, self.prefix, self.log_path = url, prefix, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def container(self, name: str):
        return docker.from_env().containers.get(f"{self.prefix}-{name}")


@contextlib.contextmanager
def running_hub(root: Path, image: str, **settings):
    """``jupyterhub -f deploy/hub/jupyterhub_config.py`` with its state in ``root``, free ports and a prefix of its
    own; ``settings`` are further GLASSBOX_HUB_* values. Removes what it made, even on a failure."""
    if not PROXY.exists():
        pytest.skip("no configurable-http-proxy: run `npm ci --prefix deploy/hub`")
    client = require_engine()
    prefix = f"gbhubtest-{uuid.uuid4().hex[:8]}"
    port, api, proxy_api, class_view = free_ports(4)
    env = {**os.environ, "GLASSBOX_HOME": str(root / "home"), "GLASSBOX_HUB_DIR": str(root / "hub"),
           "GLASSBOX_HUB_PREFIX": prefix, "GLASSBOX_HUB_IMAGE": image, "GLASSBOX_HUB_PORT": str(port),
           "GLASSBOX_HUB_API_PORT": str(api), "GLASSBOX_HUB_PROXY_API_PORT": str(proxy_api),
           "GLASSBOX_HUB_CLASS_VIEW_PORT": str(class_view),
           **{f"GLASSBOX_HUB_{name}": value for name, value in settings.items()}}
    log_path = root / "hub.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(Path(sys.executable).with_name("jupyterhub")), "-f", str(CONFIG)],
                                   cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    hub = Hub(f"http://127.0.0.1:{port}", prefix, log_path)
    try:
        assert eventually(lambda: process.poll() is not None or _answers(f"{hub.url}/hub/api"), timeout=120)
        assert process.poll() is None, f"the Hub exited:\n{hub.log()[-4000:]}"
        yield hub
    finally:
        process.terminate()  # the Hub stops its servers (the containers go with them) and its proxy
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        for container in client.containers.list(all=True, filters={"label": f"org.glassbox.hub={prefix}"}):
            container.remove(force=True)
        for volume in client.volumes.list(filters={"name": prefix}):
            volume.remove(force=True)
        for network in client.networks.list(names=[prefix]):
            network.remove()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _xsrf(page: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)


def sign_up(browser: httpx.Client, name: str, password: str) -> str:
    """The sign-up form, filled in and posted as a browser does; the page it answers."""
    form = browser.get("/hub/signup")
    return browser.post("/hub/signup", data={"_xsrf": _xsrf(form.text), "username": name,
                                             "signup_password": password,
                                             "signup_password_confirmation": password}).text


def log_in(browser: httpx.Client, name: str, password: str) -> httpx.Response:
    """The login form, posted; a success redirects (302) and sets the Hub's login cookie."""
    form = browser.get("/hub/login")
    return browser.post("/hub/login", data={"_xsrf": _xsrf(form.text), "username": name, "password": password})


def own_token(browser: httpx.Client, name: str) -> str:
    """A token the logged-in learner makes for themselves through the REST API (cookie and XSRF header)."""
    made = browser.post(f"/hub/api/users/{name}/tokens", json={"note": "test_hub", "expires_in": 3600},
                        headers={"X-XSRFToken": browser.cookies["_xsrf"]})
    assert made.status_code == 201, made.text
    return made.json()["token"]


def api(hub: Hub, token: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Authorization": f"token {token}"}, timeout=60)


def spawn(hub: Hub, name: str, token: str, timeout: float = 240) -> float:
    """Start the learner's server through the REST API and wait until the Hub calls it ready; seconds taken."""
    started = time.monotonic()
    with api(hub, token) as client:
        answer = client.post(f"/hub/api/users/{name}/server")
        assert answer.status_code in (201, 202), answer.text
        ready = eventually(lambda: client.get(f"/hub/api/users/{name}").json()["servers"].get("", {}).get("ready"),
                           timeout=timeout)
    assert ready, f"{name}'s server did not start:\n{hub.log()[-4000:]}"
    return time.monotonic() - started


def stop(hub: Hub, name: str, token: str) -> None:
    with api(hub, token) as client:
        assert client.delete(f"/hub/api/users/{name}/server").status_code in (202, 204)
        assert eventually(lambda: not client.get(f"/hub/api/users/{name}").json()["servers"], timeout=120)
