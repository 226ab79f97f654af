"""Labs 04 and 05 against the container backend: the same cells, the same outputs, a Vault-API server in Docker.

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
                              "solutions/04-vault-basics.ipynb", "solutions/05-vault-for-ml.ipynb"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        recorded = json.loads((tmp_path / "vault.json").read_text())
    finally:
        subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True)
    assert run.returncode == 0, run.stdout[-4000:]
    assert recorded["backend"] == "container" and recorded["container_id"]
