"""Shared test set-up: a private course home, no Vault variables from the shell, one dev server per session.

At import time (so notebook kernels started by nbval inherit it too):
- ``GLASSBOX_HOME`` points at a fresh temporary directory unless the environment sets one (``make test`` does);
- ``GLASSBOX_VAULT_BACKEND`` defaults to ``embedded``, so no test pulls an image or needs Docker for Vault;
- ``VAULT_ADDR`` and ``VAULT_TOKEN`` inherited from the shell are dropped.

Fixtures: ``vault_server`` (the session's dev server, a :class:`glassbox.vault.Server`), ``vault_client``
(an ``hvac.Client`` with its root token), and for tests that start servers of their own, ``free_port`` and
``own_vault_home`` (a private home and port, with whatever was started there stopped afterwards).

A test skips, saying why, where this machine lacks a part (a Docker engine, an image, a registry). In CI
(``CI`` set) every part is there, so a skip is reported as a failure: nothing passes CI untested.
"""

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import time

import hvac
import pytest

from glassbox import vault

_SESSION_HOME = None if os.environ.get("GLASSBOX_HOME") else tempfile.mkdtemp(prefix="glassbox-test-")
if _SESSION_HOME:
    os.environ["GLASSBOX_HOME"] = _SESSION_HOME
os.environ.setdefault("GLASSBOX_VAULT_BACKEND", "embedded")
for _name in ("VAULT_ADDR", "VAULT_TOKEN"):
    os.environ.pop(_name, None)


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


def eventually(condition, timeout: float = 15.0) -> bool:
    """Poll ``condition`` every 0.1 s until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def course_model_server(directory, **settings):
    """The course model served by a local server process behind a fresh API key (in ``directory``/api-key).

    ``settings`` are extra ``GLASSBOX_*`` variables. Yields ``(server, key, model_dir)``.
    """
    from glassbox import artifacts
    from glassbox.serving import LocalServer

    model_dir = artifacts.build_course_model()
    key = secrets.token_urlsafe(32)
    key_file = directory / "api-key"
    key_file.write_text(key)
    with LocalServer({"GLASSBOX_MODEL_DIR": model_dir, "GLASSBOX_API_KEY_FILE": key_file, **settings}) as local:
        yield local, key, model_dir


def assert_not_yet(feedback, *words):
    """A self-check's failure that explains itself: a hint, and each of ``words`` in its message or hint."""
    assert not feedback, feedback
    assert feedback.hint, "a failing check must say how to fix it"
    for word in words:
        assert word in feedback.message + " " + feedback.hint, feedback


@pytest.fixture(scope="session")
def vault_server():
    """The session's dev server: the one already running in GLASSBOX_HOME, else a new embedded OpenBao."""
    already = vault.status()
    if already.healthy:
        yield vault.up(backend=already.backend)
        return
    port = None if os.environ.get("GLASSBOX_VAULT_PORT") else pick_free_port()
    yield vault.up(backend="embedded", port=port)
    vault.down()


@pytest.fixture(scope="session")
def vault_client(vault_server):
    """An hvac client holding the session server's root token."""
    return hvac.Client(url=vault_server.addr, token=vault_server.token)


@pytest.fixture
def free_port():
    return pick_free_port()


@pytest.fixture
def own_vault_home(tmp_path, monkeypatch, free_port):
    """A private GLASSBOX_HOME and port for tests that start their own server; stopped again afterwards.

    The Vault variables are restored after the test, so the session server's stay as they were.
    """
    home = tmp_path / "glassbox-home"
    monkeypatch.setenv("GLASSBOX_HOME", str(home))
    monkeypatch.setenv("GLASSBOX_VAULT_PORT", str(free_port))
    monkeypatch.setenv("GLASSBOX_VAULT_BACKEND", "embedded")
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    yield home
    os.environ["GLASSBOX_HOME"] = str(home)  # the test may have pointed it elsewhere
    vault.down()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, a skipped test fails, with the skip's reason."""
    report = (yield).get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI runs every test, and this one skipped: {reason}"


def pytest_sessionfinish(session, exitstatus):
    """Stop any server still recorded in the session's own temporary home (notebooks may start one), drop it."""
    if _SESSION_HOME:
        os.environ["GLASSBOX_HOME"] = _SESSION_HOME
        try:
            vault.down()
        finally:
            shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def untouched_lab(vault_server):
    """Run a learner notebook of labs/ as first opened (every exercise a stub), once per session.

    Returns ``run(name) -> notebook`` (the executed ``nbformat`` notebook, cwd ``labs/`` as in JupyterLab).
    """
    import nbformat
    from nbclient import NotebookClient

    labs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labs")
    executed = {}

    def run(name: str):
        if name not in executed:
            notebook = nbformat.read(os.path.join(labs, name), as_version=4)
            NotebookClient(notebook, timeout=300, kernel_name="python3",
                           resources={"metadata": {"path": labs}}).execute()
            executed[name] = notebook
        return executed[name]

    return run
