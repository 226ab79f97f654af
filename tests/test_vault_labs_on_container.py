"""Labs 05 and 06 against the container backend: the same cells, the same outputs, a Vault-API server in Docker;
and Vault Agent, given its secret zero by the orchestrator, rendering the key from such a server.

CI builds a local OpenBao image (`.ci/docker-engine.sh`), since HashiCorp's image cannot be pulled there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import pick_free_port
from helpers import require_engine

REPO = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("GLASSBOX_TEST_VAULT_IMAGE", "glassbox/openbao:latest")


def test_vault_labs_pass_strict_nbval_on_a_container_vault(tmp_path):
    client = require_engine()
    if not client.images.list(name=IMAGE):
        reason = f"no {IMAGE} image: `bash .ci/docker-engine.sh` builds it"
        pytest.skip(reason)
    env = dict(os.environ, GLASSBOX_HOME=str(tmp_path), GLASSBOX_VAULT_BACKEND="container",
               GLASSBOX_VAULT_IMAGE=IMAGE, GLASSBOX_VAULT_PORT=str(pick_free_port()))
    env.pop("VAULT_ADDR", None), env.pop("VAULT_TOKEN", None)
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "solutions/05-vault-basics.ipynb", "solutions/06-vault-for-ml.ipynb"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        recorded = json.loads((tmp_path / "vault.json").read_text())
    finally:
        subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True)
    assert run.returncode == 0, run.stdout[-4000:]
    assert recorded["backend"] == "container" and recorded["container_id"]


def test_an_agent_gets_the_key_from_a_container_vault_through_the_orchestrator(tmp_path, monkeypatch):
    """The service's AppRole is bound to 127.0.0.1/32: the container Vault must see the agent's logins come from
    there (it runs on the host's network for that), and the agent renders the key for the server."""
    client = require_engine()
    if not client.images.list(name=IMAGE):
        reason = f"no {IMAGE} image: `bash .ci/docker-engine.sh` builds it"
        pytest.skip(reason)
    import hvac

    from glassbox import vault
    from glassbox.vault import agent, bootstrap, orchestrator

    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GLASSBOX_VAULT_IMAGE", IMAGE)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    server = vault.up(backend="container", port=pick_free_port())
    try:
        assert server.backend == "container"
        admin = hvac.Client(url=server.addr, token=server.token)
        bootstrap.ensure(admin)
        trusted = hvac.Client(url=server.addr, token=bootstrap.orchestrator_token(admin))
        orchestrator.deliver(trusted, tmp_path / "agent")
        with agent.LocalAgent(server.addr, tmp_path / "agent") as running:
            assert running.key_file.read_text() == bootstrap.read_api_key(admin)
            assert running.count("authentication successful") == 1
    finally:
        vault.down()
