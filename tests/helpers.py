"""Helpers that tests import: free ports, polling, the course model behind a key, a Docker engine, notebook outputs.

Fixtures live in ``conftest.py``; everything a test module imports by name lives here.
"""

import contextlib
import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import httpx
import hvac
import pytest

from glassbox import deploy
from glassbox.paths import write_private

REPO = Path(__file__).resolve().parents[1]


def pick_free_port() -> int:
    """A loopback port that is free now, with the next one free too (a dev server's cluster port)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65535 and _bindable(port + 1):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def lab_env(root: Path) -> dict:
    """The environment for a `glassbox lab` subprocess of its own: state, Vault port and Jupyter dirs under ``root``."""
    return dict(os.environ, GLASSBOX_HOME=str(root / "home"), GLASSBOX_VAULT_PORT=str(pick_free_port()),
                GLASSBOX_VAULT_BACKEND="embedded", JUPYTER_CONFIG_DIR=str(root / "jupyter"),
                JUPYTER_RUNTIME_DIR=str(root / "runtime"))


def wait_for_lab(lab_url: str, process, timeout: float = 120):
    """The answer of the JupyterLab page at ``lab_url`` once it serves (200), while ``process`` still runs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.get(lab_url, timeout=5)
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "JupyterLab did not answer"
        time.sleep(0.5)


def eventually(condition, timeout: float = 15.0) -> bool:
    """Poll ``condition`` every 0.1 s until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def course_model_server(directory, *, grpc: bool = False, **settings):
    """The course model served by a local server process behind a fresh API key (in ``directory``/api-key).

    ``settings`` are extra ``GLASSBOX_*`` variables; ``grpc`` also serves the gRPC API (``server.grpc_target``).
    Yields ``(server, key, model_dir)``.
    """
    from glassbox import artifacts
    from glassbox.serving import LocalServer

    model_dir = artifacts.build_course_model()
    key = secrets.token_urlsafe(32)
    key_file = directory / "api-key"
    write_atomically(key_file, key)
    with LocalServer({"GLASSBOX_MODEL_DIR": model_dir, "GLASSBOX_API_KEY_FILE": key_file, **settings},
                     grpc=grpc) as local:
        yield local, key, model_dir


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path``'s content in one step, as Vault Agent renders a file: a reader never sees it half-written.

    ``path.write_text`` truncates first: a server reading the key file at that moment reads an empty key.
    """
    write_private(path, text)


@contextlib.contextmanager
def served_by_agent(admin, directory, *, setup=None, render_interval: str = "1s", tls: bool = False, **settings):
    """The course model served by a local server whose key a local Vault Agent renders, as the labs run it.

    The course setup is ensured (``setup`` may compress its lifetimes), the orchestrator delivers the agent's
    first wrapped secret ID, and ``settings`` are extra ``GLASSBOX_*`` variables. With ``tls`` the agent also
    renders the server's certificate and the server serves HTTPS; the course CA is written to
    ``directory/ca.pem`` (the server's ``ca_file``). Yields ``(server, agent)``.
    """
    from glassbox import artifacts
    from glassbox.serving import LocalServer
    from glassbox.vault import agent, bootstrap, orchestrator

    setup = bootstrap.ensure(admin, setup)
    orchestrator.deliver(hvac.Client(url=admin.url, token=bootstrap.orchestrator_token(admin)), directory)
    ca_file = None
    if tls:
        ca_file = Path(directory) / "ca.pem"
        ca_file.write_text(bootstrap.ca_certificate(admin))
    with agent.LocalAgent(admin.url, directory, render_interval=render_interval, setup=setup,
                          certificate=tls) as running:
        env = {"GLASSBOX_MODEL_DIR": artifacts.build_course_model(), "GLASSBOX_API_KEY_FILE": running.key_file,
               **({"GLASSBOX_TLS_FILE": running.cert_file} if tls else {}), **settings}
        with LocalServer(env, ca_file=ca_file) as server:
            yield server, running


def assert_not_yet(feedback, *words):
    """A self-check's failure that explains itself: a hint, and each of ``words`` in its message or hint."""
    assert not feedback, feedback
    assert feedback.hints, "a failing check must say how to fix it"
    for word in words:
        assert word in feedback.message + " " + feedback.hint, feedback


_QUANTITY_UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30}


def quantity(text) -> float:
    """A Kubernetes resource quantity (``500m``, ``"1"``, ``512Mi``, ``1Gi``) as a number of cores or bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?", str(text))
    assert match, f"{text!r} is not a resource quantity this test reads (m, k, M, G, Ki, Mi, Gi)"
    return float(match.group(1)) * _QUANTITY_UNITS.get(match.group(2), 1)

# Vault/OpenBao tokens (service, batch, recovery, legacy), private keys, AppRole secret IDs next to their name,
# bearer credentials, and cloud keys.
SECRET_PATTERNS = [
    re.compile(r"\b(hv[sbr]|s|b|r)\.[A-Za-z0-9]{24,}"),
    re.compile(r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"),
    re.compile(r"secret_id\W{1,6}[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    re.compile(r"Bearer\s+[A-Za-z0-9_\-\.=]{20,}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
]
# In notebook outputs, a long run mixing upper case, lower case and digits looks like a generated password
# or token (hex digests and UUIDs, which the labs may show, are lower case).
RANDOM_LOOKING = re.compile(r"(?<![A-Za-z0-9_\-])(?=[A-Za-z0-9_\-]*[a-z])(?=[A-Za-z0-9_\-]*[A-Z])"
                            r"(?=[A-Za-z0-9_\-]*[0-9])[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-])")


def leaks_in_text(text: str) -> list[str]:
    return [match.group(0) for pattern in SECRET_PATTERNS for match in pattern.finditer(text)]


_STARTED = {}


def require_engine():
    """The engine's client, or a skip that says why there is none.

    In CI (CI=true, as root) a missing engine is started once with .ci/docker-engine.sh; if that fails too, the
    skip carries its output (and CI reports the skip as a failure).
    """
    client = deploy.engine()
    if client is None and os.environ.get("CI") and os.geteuid() == 0 and "run" not in _STARTED:
        _STARTED["run"] = subprocess.run(["bash", str(REPO / ".ci" / "docker-engine.sh")], capture_output=True,
                                         text=True, timeout=1200)
        client = deploy.engine()
    if client is None:
        started = _STARTED.get("run")
        pytest.skip(f"{deploy.engine_status()}; start one with `sudo bash .ci/docker-engine.sh`"
                    + (f"\n{started.stdout[-2000:]}{started.stderr[-2000:]}" if started else ""))
    return client


def check_outcomes(notebook, lab: str) -> list[str]:
    """The text of every self-check result the notebook displayed for ``lab``."""
    return [output["data"]["text/plain"] for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs
            if output.get("output_type") == "execute_result" and f"Lab {lab} ·" in output["data"]["text/plain"]]


def printed(notebook) -> str:
    """Everything the notebook's cells printed."""
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs)


def peer_venv(name: str, requirements: list[str]) -> Path:
    """The python of a peer's own virtual environment (:func:`glassbox.peers.venv`), for a client whose pins
    clash with the course's. Skips, saying why, where it cannot be installed (a failure in CI, see
    ``conftest.py``)."""
    from glassbox import peers

    try:
        return peers.venv(name, requirements)
    except peers.Unavailable as reason:
        pytest.skip(str(reason))
