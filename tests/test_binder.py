"""Binder: repo2docker takes binder/Dockerfile, the course image that the hub and the devcontainer run too, and a
launch of that image runs the labs within Binder's 2 GB.

mybinder.org builds with repo2docker, which takes binder/Dockerfile when there is one (the repository is the build
context, NB_USER and NB_UID the build arguments), and runs ``jupyterhub-singleuser`` as the image's command. Here:

1. repo2docker itself (pinned, in its own environment) says which Dockerfile it builds: ``--no-build`` needs no
   engine, and its build step needs Docker's buildx plugin, which Debian's packages do not carry;
2. the real engine builds that Dockerfile as repo2docker asks, with Binder's build arguments: the image is the
   one `make course-image` makes for the hub, layer for layer;
3. its container runs as a Binder launch does: a 2 GB memory limit and no swap, no Docker inside, the image's
   entrypoint (binder/start) before the command.

Set ``GLASSBOX_BINDER_LABS`` to a comma-separated list of globs (``00-*``) to run fewer labs. The launch prints
its costs: launch-to-ready, and the container's peak memory while the labs run (against Binder's 2 GB).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

import docker
import pytest
import requests

from glassbox import peers
from helpers import REPO, pick_free_port, require_engine
from hub_room import course_image

REPO2DOCKER = "jupyter-repo2docker==2026.4.0"
BINDER_BUILD_ARGS = {"NB_USER": "jovyan", "NB_UID": "1000"}  # what mybinder.org passes
BINDER_MEMORY = 2 * 1024**3  # mybinder.org's limit per launch
MiB = 1024**2


@pytest.fixture(scope="module")
def costs(pytestconfig):
    measured: dict[str, str] = {}
    yield measured
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and measured:
        with capture.global_and_fixture_disabled():  # figures to read, not assertions (no timed tests)
            reporter.write_line("\nBinder launch of the course image, measured:")
            for name, value in measured.items():
                reporter.write_line(f"  {name}: {value}")


@pytest.fixture(scope="module")
def binder_image() -> str:
    """The image the engine builds from binder/Dockerfile as repo2docker asks for it; its id."""
    image, _ = require_engine().images.build(path=str(REPO), dockerfile="binder/Dockerfile",
                                             buildargs=BINDER_BUILD_ARGS, network_mode="host", rm=True)
    return image.id


def test_repo2docker_builds_binder_dockerfile_as_it_is(tmp_path):
    """`--no-build` prints the Dockerfile repo2docker would build: ours, with nothing of its own added."""
    repo2docker = peers.venv("repo2docker", [REPO2DOCKER]).parent / "jupyter-repo2docker"  # the machine's cache
    result = subprocess.run([repo2docker, "--no-build", "--debug", str(REPO)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == (REPO / "binder" / "Dockerfile").read_text().strip()


def test_binder_the_hub_and_the_devcontainer_run_one_image(binder_image):
    engine = require_engine()
    hub = engine.images.get(course_image())
    assert binder_image == hub.id, "Binder's build and `make course-image` made different images"
    devcontainer = json.loads((REPO / ".devcontainer" / "devcontainer.json").read_text())["build"]
    # both paths are relative to devcontainer.json: the one Dockerfile, the repository as the context, every stage
    assert (REPO / ".devcontainer" / devcontainer["dockerfile"]).resolve() == REPO / "binder" / "Dockerfile"
    assert (REPO / ".devcontainer" / devcontainer["context"]).resolve() == REPO and "target" not in devcontainer
    config = hub.attrs["Config"]
    assert config["Entrypoint"] == ["/opt/course/binder/start"] and config["Cmd"] == ["jupyterhub-singleuser"]
    uid = engine.containers.run(binder_image, ["id", "-u"], entrypoint=[], remove=True).decode().strip()
    assert uid == BINDER_BUILD_ARGS["NB_UID"] and config["User"] == "learner"  # Binder runs as uid 1000


@contextlib.contextmanager
def binder_launch(image: str, command: list[str], environment: dict | None = None, **options):
    """The image's container as a Binder launch runs it: 2 GB and no swap, no Docker engine inside, mybinder.org's
    BINDER_LAUNCH_HOST, the entrypoint before ``command``. Removed afterwards."""
    container = require_engine().containers.run(
        image, command, detach=True, mem_limit=BINDER_MEMORY, memswap_limit=BINDER_MEMORY,
        environment={"BINDER_LAUNCH_HOST": "https://mybinder.org/", **(environment or {})}, **options)
    try:
        yield container
    finally:
        container.remove(force=True)


def _in(container, code: str) -> str:
    result = container.exec_run(["python", "-c", code])
    assert result.exit_code == 0, result.output.decode()[-2000:]
    return result.output.decode()


_KERNELS_ENVIRONMENT = """import json, psutil
print(json.dumps([p.environ() for p in psutil.process_iter() if "ipykernel_launcher" in " ".join(p.cmdline())]))
"""


def test_a_launch_syncs_the_labs_and_gives_every_kernel_vault_but_not_its_token(binder_image, costs):
    port, token = pick_free_port(), secrets.token_hex(16)
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
    started = time.monotonic()
    with binder_launch(binder_image, ["jupyter", "lab", "--no-browser", "--ServerApp.ip=0.0.0.0",
                                      "--ServerApp.port=8888", f"--IdentityProvider.token={token}"],
                       ports={"8888/tcp": ("127.0.0.1", port)}) as container:
        while True:
            try:
                if requests.get(f"{url}/api/status", headers=headers, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            container.reload()
            assert container.status != "exited", container.logs().decode()[-3000:]
            assert time.monotonic() - started < 180, "JupyterLab did not answer within 180 s"
            time.sleep(0.2)
        costs["launch to JupyterLab ready"] = f"{time.monotonic() - started:.1f} s"

        listed = {item["name"] for item in requests.get(f"{url}/api/contents", headers=headers, timeout=10)
                  .json()["content"]}
        shipped = {lab.name for lab in (REPO / "labs").glob("*.ipynb")}
        assert shipped and shipped <= listed, f"the labs are not in the workspace: {sorted(listed)}"
        assert {"deploy", "benchmarks"} <= listed
        badge = re.search(r"mybinder\.org/v2/gh/[^)]*\?urlpath=lab/tree/([^)]+)\)", (REPO / "README.md").read_text())
        assert badge and badge.group(1) in listed, "the README's Binder badge opens a file the launch does not have"

        requests.post(f"{url}/api/kernels", headers=headers, json={"name": "python3"}, timeout=30).raise_for_status()
        deadline = time.monotonic() + 60
        while not (kernels := json.loads(_in(container, _KERNELS_ENVIRONMENT))):
            assert time.monotonic() < deadline, "no kernel process appeared"
            time.sleep(0.5)
        state = json.loads(container.exec_run(["cat", "/home/learner/.glassbox/vault.json"]).output)
        assert state["backend"] == "embedded" and state["addr"].startswith("http://127.0.0.1:")
        assert kernels[0].get("VAULT_ADDR") == state["addr"]
        assert "VAULT_TOKEN" not in kernels[0] and state["token"] not in json.dumps(kernels)
        health = container.exec_run(["python", "-c", f"import hvac; print(hvac.Client(url={state['addr']!r}, "
                                     f"token={state['token']!r}).is_authenticated())"])
        assert health.output.decode().strip() == "True"
        deadline = time.monotonic() + 120  # the culler starts with the first kernel: the image's server config
        while "Culling kernels with idle durations > 1200 seconds" not in container.logs().decode():
            assert time.monotonic() < deadline, "the kernel culling configuration was not applied"
            time.sleep(0.2)


def test_a_launch_without_a_vault_still_hands_over(binder_image):
    """A launch whose Vault cannot start is degraded, not dead: the command runs and the labs say what is wrong."""
    squat = ("import socket, subprocess; s = socket.socket(); s.bind(('127.0.0.1', 8200)); s.listen(); "
             "raise SystemExit(subprocess.call(['/opt/course/binder/start', 'python', '-c', "
             "'import os; print(\"VAULT_ADDR\", os.environ.get(\"VAULT_ADDR\"))']))")
    with binder_launch(binder_image, ["-c", squat], entrypoint=["python"],
                       environment={"GLASSBOX_VAULT_PORT": "8200"}) as container:
        assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()[-2000:]
        output = container.logs().decode()
    assert "VAULT_ADDR None" in output
    assert "the dev Vault did not start; continuing without it" in output
    assert "is taken by another program" in output  # glassbox says why


_CHECK_VAULT = """import os, sys, hvac
from glassbox import vault
addr = os.environ.get("VAULT_ADDR")
assert addr and "VAULT_TOKEN" not in os.environ, "VAULT_ADDR only must reach this child process"
server = vault.up()  # as the labs' kernels do: the token comes from the state file, into this process only
client = hvac.Client(url=server.addr, token=server.token)
assert server.addr == addr and client.is_authenticated()
assert not client.sys.read_health_status(method="GET")["sealed"]
print(f"vault-check: ok, {addr}", flush=True)
"""


class _PeakMemory(threading.Thread):
    """The container's memory use, sampled from the engine's statistics until stopped; ``peak`` in bytes."""

    def __init__(self, container):
        super().__init__(daemon=True)
        self.container, self.peak, self._done = container, 0, threading.Event()

    def run(self):
        while not self._done.wait(1):
            try:
                memory = self.container.stats(stream=False)["memory_stats"]
            except docker.errors.APIError:  # the container ended between two samples
                return
            self.peak = max(self.peak, memory.get("max_usage", 0), memory.get("usage", 0))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def _labs_to_run() -> list[str]:
    labs = sorted(lab.name for lab in (REPO / "labs").glob("*.ipynb"))
    wanted = [pattern.strip() for pattern in os.environ.get("GLASSBOX_BINDER_LABS", "").split(",") if pattern.strip()]
    if wanted:
        labs = [lab for lab in labs if any(Path(lab).match(pattern) or Path(lab).match(pattern + ".ipynb")
                                           for pattern in wanted)]
    return labs


def test_the_labs_run_under_nbval_within_binders_memory(binder_image, costs):
    labs = _labs_to_run()
    if not labs:
        pytest.skip("labs/ has no notebooks (or none match GLASSBOX_BINDER_LABS) yet")
    command = ["bash", "-c", 'python -c "$0" && exec python -m pytest -q -p no:cacheprovider --nbval-lax "$@"',
               _CHECK_VAULT, *labs]
    started = time.monotonic()
    with binder_launch(binder_image, command) as container:
        sampler = _PeakMemory(container)
        sampler.start()
        try:
            status = container.wait(timeout=60 * 30)["StatusCode"]
        finally:
            peak = sampler.stop()
        container.reload()
        oom_killed = container.attrs["State"]["OOMKilled"]
        text = container.logs().decode(errors="replace")
    costs[f"{len(labs)} lab(s) under nbval"] = f"{time.monotonic() - started:.0f} s"
    costs["the container's peak memory"] = f"{peak / MiB:.0f} MiB of Binder's {BINDER_MEMORY / MiB:.0f}"
    assert not oom_killed, "the labs went past Binder's 2 GB"
    assert status == 0, f"the labs failed in a Binder launch:\n{text[-4000:]}"
    assert "vault-check: ok, http://127.0.0.1:" in text
    assert re.search(r"\b\d+ passed\b", text) and not re.search(r"\b\d+ (failed|errors?)\b", text), text[-2000:]
