"""Binder: repo2docker recognises binder/, and a simulated launch runs the labs.

The simulated launch does what repo2docker does with this repository, without Docker (Binder's image cannot
be built here: its base image and conda packages come from registries this machine does not reach):

1. a fresh virtual environment, built only from binder/'s files: ``pip install -r binder/requirements.txt`` from
   a copy of the repository, then ``binder/postBuild`` (about 2-3 minutes: it installs the whole lock);
2. ``binder/start <command>`` with a private ``GLASSBOX_HOME``, a free Vault port, a fresh ``HOME`` and no Docker
   engine (as on Binder), where the command is a real JupyterLab server, or nbval over every lab.

Set ``GLASSBOX_BINDER_LABS`` to a comma-separated list of globs (``00-*``) to run fewer labs, and
``GLASSBOX_BINDER_CACHE`` to a folder to reuse the environment while binder/requirements.txt and the lock are
unchanged (by default it is built afresh in a temporary folder). The launch prints its costs: environment build,
launch-to-ready, peak memory of the kernel and Vault while the labs run (against Binder's 2 GB).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import psutil
import pytest
import requests

from helpers import pick_free_port
from glassbox import peers

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
REPO2DOCKER = "jupyter-repo2docker==2026.4.0"
BINDER_MEMORY = 2 * 1024**3  # mybinder.org's limit per launch
MiB = 1024**2


def _run(command, what: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise AssertionError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result


# --- repo2docker ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def repo2docker() -> Path:
    return peers.venv("repo2docker", [REPO2DOCKER]).parent / "jupyter-repo2docker"  # the machine's cache


def test_binder_files_are_executable_scripts_that_fail_on_errors():
    for name in ("postBuild", "start"):
        script = BINDER / name
        assert os.access(script, os.X_OK), f"binder/{name} is not executable"
        assert script.read_text().startswith("#!/usr/bin/env bash\n"), f"binder/{name} needs a bash shebang"
    assert "\nset -euo pipefail\n" in (BINDER / "postBuild").read_text()
    assert (BINDER / "start").read_text().rstrip().endswith('exec "$@"')
    requirements = (BINDER / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.lock" in requirements  # the editable package: postBuild (test_supply_chain)


def test_repo2docker_builds_from_binder_requirements_postbuild_and_start(repo2docker, tmp_path):
    """`--no-build` prints the Dockerfile repo2docker would build; it needs no Docker engine."""
    result = _run([repo2docker, "--no-build", "--debug", str(REPO)], "jupyter-repo2docker --no-build",
                  cwd=tmp_path, timeout=300)
    dockerfile, log = result.stdout, result.stderr
    assert "Building conda environment for python=3.11" in log, log  # binder/runtime.txt, as pyproject requires
    lines = dockerfile.splitlines()

    def where(pattern: str) -> int:
        found = [number for number, line in enumerate(lines) if re.search(pattern, line)]
        assert found, f"no line matches {pattern!r} in the Dockerfile"
        return found[0]

    copy_repo = where(r"^COPY .* src/ \$\{REPO_DIR\}/$")
    install = where(r'^RUN \$\{KERNEL_PYTHON_PREFIX\}/bin/pip install --no-cache-dir -r "binder/requirements.txt"$')
    post_build = where(r"^RUN \./binder/postBuild$")
    entrypoint = where(r'^ENV R2D_ENTRYPOINT="\$\{REPO_DIR\}/binder/start"$')
    # -r ../requirements.lock is a local reference: the install must wait for the repository's copy.
    assert copy_repo < install < post_build < entrypoint
    assert not re.search(r"(?m)^RUN .*pip install --no-cache-dir \.$", dockerfile), "root pyproject used, not binder/"


# --- the simulated launch -------------------------------------------------------------------------------


@dataclass
class BinderEnv:
    root: Path
    repo: Path
    venv: Path
    costs: dict = field(default_factory=dict)

    def environ(self, **extra: str) -> dict:
        """Binder's environment: the launch's venv first on PATH, a fresh HOME, no Docker engine, no Vault,
        and mybinder.org's ``BINDER_LAUNCH_HOST``."""
        own_bin = str(Path(sys.executable).parent)
        path = [str(self.venv / "bin")] + [entry for entry in os.environ.get("PATH", "").split(os.pathsep)
                                          if entry and entry != own_bin]
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("VAULT_", "GLASSBOX_", "BAO_", "DOCKER_", "JUPYTER_"))
               and name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MPLBACKEND")}
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        env.update(PATH=os.pathsep.join(path), VIRTUAL_ENV=str(self.venv), HOME=str(home),
                   DOCKER_HOST=f"unix://{self.root}/no-docker-engine.sock",
                   BINDER_LAUNCH_HOST="https://mybinder.org/")   # as mybinder.org sets it: no MLServer install
        env.update(extra)
        return env

    def vault_down(self, env: dict) -> None:
        subprocess.run([self.venv / "bin" / "glassbox", "vault", "down"], env=env, capture_output=True, timeout=60)


def _copy_repository(target: Path) -> None:
    """The repository's files as a clone would have them (tracked, plus new files not ignored)."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], "git ls-files", cwd=REPO)
    shutil.rmtree(target, ignore_errors=True)
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _inputs_key() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path in (BINDER / "requirements.txt", REPO / "requirements.lock", REPO / "pyproject.toml"):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def binder_env(tmp_path_factory, pytestconfig) -> BinderEnv:
    cache = os.environ.get("GLASSBOX_BINDER_CACHE")
    root = Path(cache) / f"binder-{_inputs_key()}" if cache else tmp_path_factory.mktemp("binder")
    root.mkdir(parents=True, exist_ok=True)
    env = BinderEnv(root, root / "repo", root / "venv")
    _copy_repository(env.repo)

    built = env.venv / ".built-from-binder"
    if not built.exists():
        shutil.rmtree(env.venv, ignore_errors=True)
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(env.venv)], check=True)
        installing = env.environ(HOME=os.environ.get("HOME", str(root)))  # pip's own cache, as repo2docker's
        result = subprocess.run([env.venv / "bin" / "pip", "install", "--quiet", "-r", "binder/requirements.txt"],
                                cwd=env.repo, env=installing, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"pip install -r binder/requirements.txt failed: {result.stderr.strip().splitlines()[-3:]}")
        env.costs["venv build (pip install -r binder/requirements.txt)"] = time.monotonic() - start
        built.touch()
    start = time.monotonic()
    _run([env.repo / "binder" / "postBuild"], "binder/postBuild", cwd=env.repo, env=env.environ(), timeout=600)
    env.costs["binder/postBuild"] = time.monotonic() - start
    yield env
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and env.costs:
        with capture.global_and_fixture_disabled():  # figures to read, not assertions (no timed tests)
            reporter.write_line("\nBinder simulated launch, measured:")
            for name, value in env.costs.items():
                reporter.write_line(f"  {name}: {value:.1f} s" if isinstance(value, float) else f"  {name}: {value}")


def _recorded_vault(glassbox_home: Path) -> dict:
    return json.loads((glassbox_home / "vault.json").read_text())


def _vault_answers(state: dict) -> bool:
    client = hvac.Client(url=state["addr"], token=state["token"], timeout=5)
    return client.is_authenticated() and client.sys.read_health_status(method="GET")["sealed"] is False


def test_start_hands_over_to_jupyter_with_vault_in_every_kernel(binder_env, tmp_path):
    home, port, token = tmp_path / "glassbox", pick_free_port(), secrets.token_hex(16)
    env = binder_env.environ(GLASSBOX_HOME=str(home), GLASSBOX_VAULT_PORT=str(pick_free_port()))
    server_url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    handover = tmp_path / "handover"  # when start exec'd its command: written by that command's first step
    started = time.time()
    with open(tmp_path / "launch.log", "w") as log:
        launch = subprocess.Popen(
            [binder_env.repo / "binder" / "start", "bash", "-c", 'date +%s.%N >"$0" && exec "$@"', handover,
             "jupyter", "lab", "--no-browser",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={binder_env.repo}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],  # Binder runs as a user; this machine, root
            cwd=binder_env.repo, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            try:
                if requests.get(f"{server_url}/api/status", headers=headers, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert launch.poll() is None, f"the launch ended: {(tmp_path / 'launch.log').read_text()[-2000:]}"
            assert time.time() - started < 120, "JupyterLab did not answer within 120 s"
            time.sleep(0.1)
        ready = time.time()
        binder_env.costs["launch to hand-over (Vault up, exports, exec)"] = float(handover.read_text()) - started
        binder_env.costs["launch to JupyterLab ready"] = ready - started

        server = psutil.Process(launch.pid)  # `exec "$@"`: the server replaced the start script
        command = server.cmdline()
        assert "jupyter-lab" in " ".join(command) and Path(command[0]).is_relative_to(binder_env.venv), command
        state = _recorded_vault(home)
        assert state["backend"] == "embedded" and _vault_answers(state)

        kernel_id = requests.post(f"{server_url}/api/kernels", headers=headers, json={"name": "python3"},
                                  timeout=30).json()["id"]
        deadline = time.monotonic() + 60
        while not (kernels := [child for child in server.children(recursive=True)
                               if "ipykernel_launcher" in " ".join(child.cmdline())]):
            assert time.monotonic() < deadline, "no kernel process appeared"
            time.sleep(0.2)
        deadline = time.monotonic() + 30  # the culler starts with the first kernel: binder/'s server config
        while "Culling kernels with idle durations > 1200 seconds" not in (tmp_path / "launch.log").read_text():
            assert time.monotonic() < deadline, "the kernel culling configuration was not applied"
            time.sleep(0.2)
        for process in (server, kernels[0]):
            environ = process.environ()
            assert environ.get("VAULT_ADDR") == state["addr"], f"VAULT_ADDR did not reach {process.name()}"
            assert "VAULT_TOKEN" not in environ, f"the root token is in {process.name()}'s environment"
        idle = sum(process.memory_info().rss for process in (server, kernels[0], psutil.Process(state["pid"])))
        binder_env.costs["idle JupyterLab + kernel + Vault RSS"] = f"{idle / MiB:.0f} MiB"
        requests.delete(f"{server_url}/api/kernels/{kernel_id}", headers=headers, timeout=30)
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGTERM)
            try:
                launch.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(launch.pid, signal.SIGKILL)
                launch.wait()
        binder_env.vault_down(env)
    assert not (home / "vault.json").exists()


def test_start_still_hands_over_when_the_vault_cannot_start(tmp_path):
    """A launch without Vault is degraded, not dead: the server starts and the labs say what is wrong."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("VAULT_", "GLASSBOX_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with socket.socket() as squatter:  # something that is not Vault holds the port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env.update(GLASSBOX_HOME=str(tmp_path), GLASSBOX_VAULT_PORT=str(squatter.getsockname()[1]))
        result = subprocess.run([BINDER / "start", sys.executable, "-c", "import os; print(os.environ.get('VAULT_ADDR'))"],
                                env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"
    assert "the dev Vault did not start; continuing without it" in result.stderr
    assert "is taken by another program" in result.stderr  # glassbox says why


# --- the labs, under nbval, in the launched environment ----------------------------------------------

_CHECK_VAULT = """\
import os, sys, hvac
from glassbox import vault
addr = os.environ.get("VAULT_ADDR")
assert addr and "VAULT_TOKEN" not in os.environ, "VAULT_ADDR only must reach this child process"
server = vault.up()  # as the labs' kernels do: the token comes from the state file, into this process only
client = hvac.Client(url=server.addr, token=server.token)
assert server.addr == addr and client.is_authenticated()
assert not client.sys.read_health_status(method="GET")["sealed"]
print(f"vault-check: ok, {addr}, token of {len(server.token)} characters, python {sys.prefix}", flush=True)
"""


class _PeakMemory(threading.Thread):
    """Sample the launch's processes: its process tree, plus detached ones sharing its GLASSBOX_HOME (Vault)."""

    def __init__(self, root_pid: int, glassbox_home: Path, interval: float = 0.25):
        super().__init__(daemon=True)
        self.root_pid, self.home, self.interval = root_pid, str(glassbox_home), interval
        self.peak = {"total": 0, "kernel": 0, "vault": 0, "runner": 0, "other": 0}
        self.kernel_executables: set[str] = set()
        self.kernel_peaks: dict[int, int] = {}  # each lab's kernel (nbval starts one per notebook)
        self._detached: dict[int, psutil.Process] = {}
        self._done = threading.Event()
        self._samples = 0

    def stop(self) -> dict:
        self._done.set()
        self.join()
        return self.peak

    def run(self):
        while not self._done.wait(self.interval):
            self._sample()

    def _find_detached(self):
        for process in psutil.process_iter():
            if process.pid in self._detached:
                continue
            try:
                if process.environ().get("GLASSBOX_HOME") == self.home:
                    self._detached[process.pid] = process
            except (psutil.Error, OSError):
                continue

    def _sample(self):
        if self._samples % 8 == 0:  # every 2 s: reading every process's environment is not free
            self._find_detached()
        self._samples += 1
        processes = dict(self._detached)
        try:
            root = psutil.Process(self.root_pid)
            processes.update({process.pid: process for process in [root, *root.children(recursive=True)]})
        except psutil.NoSuchProcess:
            pass
        usage = dict.fromkeys(self.peak, 0)
        for process in processes.values():
            try:
                command, rss = process.cmdline(), process.memory_info().rss
            except psutil.Error:
                continue
            if "ipykernel_launcher" in " ".join(command):
                role = "kernel"
                self.kernel_executables.add(command[0])
                self.kernel_peaks[process.pid] = max(self.kernel_peaks.get(process.pid, 0), rss)
            elif command and Path(command[0]).name == "bao":
                role = "vault"
            elif process.pid == self.root_pid:
                role = "runner"
            else:
                role = "other"
            usage[role] += rss
            usage["total"] += rss
        for role, value in usage.items():
            self.peak[role] = max(self.peak[role], value)


def _labs_to_run(repo: Path) -> list[Path]:
    labs = sorted((repo / "labs").glob("*.ipynb"))
    wanted = [pattern.strip() for pattern in os.environ.get("GLASSBOX_BINDER_LABS", "").split(",") if pattern.strip()]
    if wanted:
        labs = [lab for lab in labs if any(lab.match(pattern) or lab.match(pattern + ".ipynb") for pattern in wanted)]
    return labs


def test_labs_run_under_nbval_in_a_simulated_launch(binder_env, tmp_path):
    labs = _labs_to_run(binder_env.repo)
    if not labs:
        pytest.skip("labs/ has no notebooks (or none match GLASSBOX_BINDER_LABS) yet")
    home = tmp_path / "glassbox"
    env = binder_env.environ(GLASSBOX_HOME=str(home), GLASSBOX_VAULT_PORT=str(pick_free_port()))
    check = tmp_path / "check_vault.py"
    check.write_text(_CHECK_VAULT)
    command = ["bash", "-c", 'python "$0" && exec python -m pytest -q -p no:cacheprovider --nbval-lax "$@"',
               str(check), *[str(lab.relative_to(binder_env.repo)) for lab in labs]]
    output = tmp_path / "labs.log"
    started = time.monotonic()
    with open(output, "w") as log:
        launch = subprocess.Popen([binder_env.repo / "binder" / "start", *command], cwd=binder_env.repo, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sampler = _PeakMemory(launch.pid, home)
    sampler.start()
    try:
        returncode = launch.wait(timeout=60 * 30)
    finally:
        peak = sampler.stop()
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait()
        binder_env.vault_down(env)
    text = output.read_text()
    binder_env.costs[f"{len(labs)} lab(s) under nbval"] = f"{time.monotonic() - started:.0f} s"
    binder_env.costs["peak RSS kernel + Vault"] = f"{(peak['kernel'] + peak['vault']) / MiB:.0f} MiB"
    binder_env.costs["peak RSS of the whole launch"] = (
        f"{peak['total'] / MiB:.0f} MiB of Binder's {BINDER_MEMORY / MiB:.0f} "
        f"(kernel {peak['kernel'] / MiB:.0f}, Vault {peak['vault'] / MiB:.0f}, nbval {peak['runner'] / MiB:.0f}, "
        f"other {peak['other'] / MiB:.0f})")
    binder_env.costs["each lab's kernel at its peak"] = (
        ", ".join(f"{rss / MiB:.0f}" for rss in sampler.kernel_peaks.values()) + " MiB; with every lab's kernel "
        f"left open, {(sum(sampler.kernel_peaks.values()) + peak['vault']) / MiB:.0f} MiB with Vault")

    assert returncode == 0, f"the labs failed in the simulated Binder launch:\n{text[-4000:]}"
    assert f"vault-check: ok, http://127.0.0.1:{env['GLASSBOX_VAULT_PORT']}" in text
    assert f"python {binder_env.venv}" in text
    assert re.search(r"\b\d+ passed\b", text) and not re.search(r"\b\d+ (failed|errors?)\b", text), text[-2000:]
    assert sampler.kernel_executables and all(Path(exe).is_relative_to(binder_env.venv)
                                              for exe in sampler.kernel_executables), sampler.kernel_executables
    assert peak["vault"] > 0, "the dev Vault was not seen running during the labs"
