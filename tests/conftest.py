"""Shared test set-up: a private course home, no Vault variables from the shell, one dev server per session.

At import time (so notebook kernels started by nbval inherit it too):
- ``GLASSBOX_HOME`` points at a fresh temporary directory unless the environment sets one (``make test`` does);
- ``GLASSBOX_VAULT_BACKEND`` defaults to ``embedded``, so no test pulls an image or needs Docker for Vault;
- ``VAULT_ADDR`` and ``VAULT_TOKEN`` inherited from the shell are dropped.

Helpers that tests import live in ``helpers.py``, not here. Fixtures: ``vault_server`` (the session's dev server, a :class:`glassbox.vault.Server`), ``vault_client``
(an ``hvac.Client`` with its root token), and for tests that start servers of their own, ``free_port`` and
``own_vault_home`` (a private home and port, with whatever was started there stopped afterwards).

A test skips, saying why, where this machine lacks a part (a Docker engine, an image, a registry). In CI
(``CI`` set) every part is there, so a skip is reported as a failure: nothing passes CI untested.
"""

import os
import shutil
import tempfile

import hvac
import pytest

from glassbox import vault
from helpers import pick_free_port

_SESSION_HOME = None if os.environ.get("GLASSBOX_HOME") else tempfile.mkdtemp(prefix="glassbox-test-")
if _SESSION_HOME:
    os.environ["GLASSBOX_HOME"] = _SESSION_HOME
os.environ.setdefault("GLASSBOX_VAULT_BACKEND", "embedded")
for _name in ("VAULT_ADDR", "VAULT_TOKEN"):
    os.environ.pop(_name, None)


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
