"""The workshop hub (deploy/hub/): the real JupyterHub, its real configurable-http-proxy and DockerSpawner, three
learners in containers of the course image on a real Docker engine.

Learners sign up through NativeAuthenticator's form and the instructor approves them; each learner's server
spawns through the REST API and runs code in its kernel (tests/hub_kernel.py); every way from one learner to
another is tried and refused; a kernel past its memory limit is killed and restarted while the others run on; an
idle server is culled; an edited notebook survives a restart of its server. The course image is built by `make
course-image` (tests/hub_room.py), as an instructor builds it. Every container, volume and network a hub made is
removed afterwards (its prefix names them all).
"""

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import docker
import httpx
import pytest

from glassbox.course import progress
from helpers import REPO, eventually
from hub_kernel import KernelDied, execute, start_kernel
from hub_room import Hub, api, course_image, log_in, own_token, running_hub, sign_up, spawn, stop

LEARNERS = ("ada", "ben", "cleo")
MEM_LIMIT = "800M"
PASSWORD = "a-long-workshop-passphrase-"  # + the learner's name: each learner has a password of their own


class Room:
    """The module's hub with an approved instructor and three learners, each logged in with a server running."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.browsers, self.tokens, self.startup = {}, {}, {}

    def server(self, name: str) -> str:
        return f"{self.hub.url}/user/{name}/"

    def run(self, name: str, code: str, kernel: str | None = None) -> str:
        """What ``code`` prints in a kernel of ``name``'s server (a new kernel unless one is given)."""
        kernel = kernel or start_kernel(self.server(name), self.tokens[name])
        return execute(self.server(name), kernel, self.tokens[name], code)


@pytest.fixture(scope="module")
def image():
    return course_image()


@pytest.fixture(scope="module")
def room(tmp_path_factory, image):
    with running_hub(tmp_path_factory.mktemp("hub"), image, MEM_LIMIT=MEM_LIMIT) as hub:
        room = Room(hub)
        for name in ("instructor", *LEARNERS):
            room.browsers[name] = httpx.Client(base_url=hub.url, timeout=60)
            sign_up(room.browsers[name], name, PASSWORD + name)
        for name in ("instructor", *LEARNERS):
            if name != "instructor":   # the instructor approves each learner: the form's link, as on the page
                assert room.browsers["instructor"].get(f"/hub/authorize/{name}").status_code == 302
            assert log_in(room.browsers[name], name, PASSWORD + name).status_code == 302, name
            room.tokens[name] = own_token(room.browsers[name], name)
        with ThreadPoolExecutor(len(LEARNERS)) as pool:
            took = pool.map(lambda name: spawn(hub, name, room.tokens[name]), LEARNERS)
            room.startup = dict(zip(LEARNERS, took))
        print(f"\nservers started (3 at once), seconds each: {room.startup}")
        try:
            yield room
        finally:
            for browser in room.browsers.values():
                browser.close()


# -- 1. signing up and logging in ------------------------------------------------------------------------------

def test_each_learner_logs_in_with_their_own_password_and_a_wrong_one_is_refused(room):
    ada = httpx.Client(base_url=room.hub.url, timeout=60)
    refused = log_in(ada, "ada", PASSWORD + "ben")     # another learner's password
    assert refused.status_code == 200 and "Invalid username or password" in refused.text
    assert "jupyterhub-hub-login" not in ada.cookies
    accepted = log_in(ada, "ada", PASSWORD + "ada")
    assert accepted.status_code == 302 and "jupyterhub-hub-login" in ada.cookies
    assert ada.get("/hub/api/user", headers={"X-XSRFToken": ada.cookies["_xsrf"]}).json()["name"] == "ada"


def test_a_learner_the_instructor_has_not_approved_cannot_log_in(room):
    dana = httpx.Client(base_url=room.hub.url, timeout=60)
    assert "information has been sent to the admin" in sign_up(dana, "dana", PASSWORD + "dana")
    refused = log_in(dana, "dana", PASSWORD + "dana")
    assert refused.status_code == 200 and "has not been authorized" in refused.text
    assert "jupyterhub-hub-login" not in dana.cookies


# -- 2. a server per learner, code in its kernel ---------------------------------------------------------------

def test_each_learner_runs_code_in_a_container_of_their_own_with_their_own_vault(room):
    probe = ("import json, os; from glassbox import vault; s = vault.status(); print(json.dumps({"
             "'user': os.environ['JUPYTERHUB_USER'], 'uid': os.getuid(), 'home': os.environ['GLASSBOX_HOME'],"
             "'vault': [s.healthy, s.backend, s.addr], 'labs': sorted(os.listdir('/home/learner/work'))}))")
    for name in LEARNERS:
        seen = json.loads(room.run(name, probe))
        assert seen["user"] == name and seen["uid"] == 1000
        assert seen["home"] == "/home/learner/work/.glassbox"
        assert seen["vault"] == [True, "embedded", "http://127.0.0.1:8200"]
        assert "00-setup.ipynb" in seen["labs"] and "deploy" in seen["labs"]
        config = room.hub.container(name).attrs["HostConfig"]
        assert config["Memory"] == 800 * 2**20 and config["MemorySwap"] == config["Memory"]
        assert config["CpuQuota"] == config["CpuPeriod"] and config["PidsLimit"] == 512


def test_the_learners_jupyterlab_has_the_course_settings_and_stops_left_behind_kernels(room):
    with api(room.hub, room.tokens["ada"]) as client:
        settings = client.get(f"{room.server('ada')}lab/api/settings/@jupyterlab/apputils-extension:notification")
        assert settings.status_code == 200, settings.text[:300]
        defaults = settings.json()["schema"]["properties"]
        assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False
    start_kernel(room.server("ada"), room.tokens["ada"])   # the server's kernel culler starts with a first kernel
    assert eventually(lambda: "Culling kernels with idle durations > 1200 seconds"
                      in room.hub.container("ada").logs().decode(errors="replace"), timeout=60)


# -- 3. isolation: every way from ada to ben is refused --------------------------------------------------------

def test_ada_cannot_reach_bens_server_with_her_cookie_or_token(room):
    ada, bens = room.browsers["ada"], room.server("ben")
    with_cookie = ada.get(f"{bens}api/contents", follow_redirects=True)
    assert with_cookie.status_code == 403, with_cookie.text[:500]
    with api(room.hub, room.tokens["ada"]) as client:
        assert client.get(f"{bens}api/contents").status_code == 403
        assert client.get(f"{room.server('ada')}api/contents").status_code == 200   # her own: allowed
        assert client.get("/hub/api/users/ben").status_code == 404                # to her, ben does not exist
        assert client.post("/hub/api/users/ben/tokens", json={}).status_code in (403, 404)
        assert client.delete("/hub/api/users/ben/server").status_code in (403, 404)
    with api(room.hub, room.tokens["ben"]) as client:
        assert client.get("/hub/api/users/ben").json()["servers"][""]["ready"]   # ben's server still runs


def test_from_her_kernel_ada_finds_no_trace_of_bens_files_vault_or_server(room):
    marker = f"marker-{uuid.uuid4().hex}.txt"
    room.run("ben", f"open('/home/learner/work/{marker}', 'w').write('ben was here')")
    ben = room.hub.container("ben")
    ben_ip = ben.attrs["NetworkSettings"]["Networks"][room.hub.prefix]["IPAddress"]
    probe = f"""
import json, os, httpx
walked = [(d, files) for d, _, files in os.walk('/') if not d.startswith(('/proc', '/sys'))]
found = [d for d, files in walked if {marker!r} in files]
vaults = [d for d, files in walked if 'vault.json' in files]   # the dev Vault's record, with its root token
mounts = open('/proc/self/mountinfo').read()
def answer(url):
    try:
        return httpx.get(url, timeout=3).status_code
    except httpx.TransportError as error:
        return type(error).__name__
print(json.dumps({{'found': found, 'vaults': vaults, 'own_volume': {room.hub.prefix + '-work-ada'!r} in mounts,
                   'ben_volume': {room.hub.prefix + '-work-ben'!r} in mounts,
                   'ben_vault': answer('http://{ben_ip}:8200/v1/sys/health'),
                   'ben_server': answer('http://{ben_ip}:8888/user/ben/api/contents'),
                   'hub': answer(os.environ['JUPYTERHUB_API_URL'])}}))
"""
    seen = json.loads(room.run("ada", probe))
    assert seen["found"] == [] and seen["own_volume"] and not seen["ben_volume"]
    assert seen["vaults"] == ["/home/learner/work/.glassbox"]                # her own Vault's record, not ben's
    assert seen["ben_vault"] in ("ConnectError", "ConnectTimeout"), seen     # no route to ben's container at all
    assert seen["ben_server"] in ("ConnectError", "ConnectTimeout"), seen
    assert seen["hub"] == 200                                                # while the Hub answers her
    assert room.run("ben", "print(open(" + repr(f"/home/learner/work/{marker}") + ").read())") == "ben was here\n"


def test_bens_progress_reaches_the_instructor_and_not_ada(room):
    lab, [(name, _), *_] = next(iter(progress.exercises().items()))
    post = f"""
import os, httpx
answer = httpx.post(os.environ['GLASSBOX_CLASS_VIEW_URL'] + 'api/progress', timeout=30,
                    headers={{'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}},
                    json={{'lab': {lab!r}, 'name': {name!r}, 'passed': False, 'message': 'ben tried'}})
print(answer.status_code)
"""
    assert eventually(lambda: room.run("ben", post).strip() == "200", timeout=60), room.hub.log()[-3000:]
    as_ada = room.run("ada", "import os, httpx; print(httpx.get(os.environ['GLASSBOX_CLASS_VIEW_URL'] + 'api/class', "
                             "headers={'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}).status_code)")
    assert as_ada.strip() == "403"
    with api(room.hub, room.tokens["instructor"]) as client:
        seen = client.get("/services/class-view/api/class")
        assert seen.status_code == 200
        learners = seen.json()["learners"]
        assert learners["ben"][lab][name]["state"] == "not yet"
        assert learners["ada"][lab][name]["state"] == "not tried"        # ben's post is his alone


# -- 4. the memory limit ----------------------------------------------------------------------------------------

def test_a_kernel_past_the_memory_limit_is_killed_and_restarted_while_the_others_run_on(room):
    server, token = room.server("cleo"), room.tokens["cleo"]
    kernel = start_kernel(server, token)
    before = int(execute(server, kernel, token, "import os; print(os.getpid())"))
    bens_kernel = start_kernel(room.server("ben"), room.tokens["ben"])
    bens_pid = room.run("ben", "import os; print(os.getpid())", bens_kernel)
    with pytest.raises(KernelDied):
        execute(server, kernel, token, "hog = b'x' * (1200 * 2**20)")      # 1.2 GB in a 800 MB container
    # the same kernel, restarted by the server: a new process
    assert eventually(lambda: _pid(server, kernel, token) not in (None, before), timeout=90)
    killed = execute(server, kernel, token, "import pathlib; print(''.join(p.read_text() for p in map(pathlib.Path, ["
                                            "'/sys/fs/cgroup/memory/memory.oom_control', '/sys/fs/cgroup/memory.events'])"
                                            " if p.exists()))")                # cgroup v1, v2
    assert int(re.search(r"oom_kill (\d+)", killed).group(1)) >= 1        # the kernel's end: the OOM killer
    assert room.run("ben", "print(os.getpid())", bens_kernel) == bens_pid  # ben's kernel never noticed
    with api(room.hub, token) as client:
        assert client.get(f"{server}api/status").status_code == 200      # cleo's server itself runs on


def _pid(server: str, kernel: str, token: str) -> int | None:
    try:
        return int(execute(server, kernel, token, "import os; print(os.getpid())", timeout=20))
    except Exception:  # still restarting
        return None


# -- 6. the workspace survives a restart -------------------------------------------------------------------------

def test_an_edited_notebook_survives_a_restart_of_the_learners_server(room):
    name, token = "ada", room.tokens["ada"]
    path = f"{room.server(name)}api/contents/00-setup.ipynb"
    with api(room.hub, token) as client:
        notebook = client.get(path).json()
        notebook["content"]["cells"][0]["source"] += "\n\nada's note"
        assert client.put(path, json={"type": "notebook", "content": notebook["content"]}).status_code == 200
        before = room.hub.container(name).id
        stop(room.hub, name, token)
        with pytest.raises(docker.errors.NotFound):
            room.hub.container(name)                                       # the container went, the volume stayed
        took = spawn(room.hub, name, token)
        print(f"\nada's server restarted in {took:.1f} s")
        assert room.hub.container(name).id != before
        kept = client.get(path).json()["content"]["cells"][0]["source"]
        assert kept.endswith("ada's note")
        listed = {item["name"] for item in client.get(f"{room.server(name)}api/contents").json()["content"]}
        assert {lab.name for lab in (REPO / "labs").glob("*.ipynb")} <= listed      # and every other lab is there


# -- 5. culling ---------------------------------------------------------------------------------------------------

def test_the_culler_stops_an_idle_server(tmp_path, image):
    with running_hub(tmp_path, image, CULL_TIMEOUT="10", OPEN_SIGNUP="1") as hub:
        erin = httpx.Client(base_url=hub.url, timeout=60)
        sign_up(erin, "erin", PASSWORD + "erin")
        assert log_in(erin, "erin", PASSWORD + "erin").status_code == 302      # open sign-up: no approval
        token = own_token(erin, "erin")
        spawn(hub, "erin", token)
        with api(hub, token) as client:
            assert eventually(lambda: not client.get("/hub/api/users/erin").json()["servers"], timeout=90)
        assert "Culling server erin" in hub.log()
        with pytest.raises(docker.errors.NotFound):
            hub.container("erin")
