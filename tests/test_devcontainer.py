"""The devcontainer (.devcontainer/), built and started by the real devcontainer CLI on a real Docker engine, as
VS Code and Codespaces do: the course's environment hash-checked from the lock, the package editable from the
workspace, the dev Vault started, the learner an unprivileged user who can save into the workspace, and lab 00
running to the end inside it.

The CLI is npm's `@devcontainers/cli`, pinned with its integrity hashes in tests/devcontainer/package-lock.json
(`npm ci --prefix tests/devcontainer`, which .ci/run does). The workspace is a copy of the repository owned by
uid 1000, as a learner's checkout is on their own machine (the CLI maps the container's user onto the host
user's uid; a root-owned checkout would not be writable by the container's user).
"""

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from helpers import REPO, require_engine

CLI = REPO / "tests" / "devcontainer" / "node_modules" / ".bin" / "devcontainer"
LEARNER_UID = 1000


def _cli(verb: str, *args: str, workspace: Path, label: str, timeout: float) -> subprocess.CompletedProcess:
    """``devcontainer VERB --workspace-folder W --id-label L ARGS...`` (a command to exec comes last)."""
    return subprocess.run([str(CLI), verb, "--workspace-folder", str(workspace), "--id-label", label, *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def devcontainer(tmp_path_factory):
    """``run(command) -> CompletedProcess`` in the started devcontainer of a copy of the repository."""
    client = require_engine()
    if not CLI.exists():
        pytest.skip("no devcontainer CLI: run `npm ci --prefix tests/devcontainer`")
    workspace = tmp_path_factory.mktemp("devcontainer") / "glassbox-labs"
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (workspace / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, workspace / name)
    subprocess.run(["chown", "-R", f"{LEARNER_UID}:{LEARNER_UID}", str(workspace)], check=True)
    label = f"glassbox-test={uuid.uuid4().hex}"
    up = _cli("up", workspace=workspace, label=label, timeout=1800)
    outcome = json.loads(up.stdout.strip().splitlines()[-1]) if up.stdout.strip() else {}
    try:
        assert outcome.get("outcome") == "success", (up.stdout[-3000:], up.stderr[-3000:])
        yield lambda command: _cli("exec", "sh", "-c", command, workspace=workspace, label=label, timeout=600)
    finally:
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)


def test_the_learner_is_unprivileged_and_owns_what_they_save(devcontainer):
    shell = devcontainer("id -u; touch labs/saved-by-learner && stat -c %u labs/saved-by-learner")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == [str(LEARNER_UID), str(LEARNER_UID)]


def test_the_package_is_the_workspace_and_make_uses_the_images_environment(devcontainer):
    shell = devcontainer("python -c 'import glassbox; print(glassbox.__file__)'; make -n lab")
    assert shell.returncode == 0, shell.stderr
    module, make = shell.stdout.strip().splitlines()[0], shell.stdout.strip().splitlines()[-1]
    assert module.startswith("/workspaces/glassbox-labs/support/glassbox/")      # edits take effect at once
    assert make == "/opt/venv/bin/glassbox lab"                               # no second environment is built


def test_the_dev_vault_is_started_and_keeps_a_secret_with_no_root_token_in_the_environment(devcontainer):
    shell = devcontainer("""python - <<'PY'
import os
import hvac
from glassbox import vault
assert "VAULT_TOKEN" not in os.environ, "the root token is in the container's environment"
started = vault.status()                       # the server postStartCommand started, before anyone asks
server = vault.up()
client = hvac.Client(url=server.addr, token=server.token)
client.secrets.kv.v2.create_or_update_secret(path="devcontainer", secret={"colour": "teal"}, mount_point="secret")
read = client.secrets.kv.v2.read_secret_version(path="devcontainer", mount_point="secret",
                                                raise_on_deleted_version=True)
print(started.healthy, started.backend, started.pid == vault.status().pid, read["data"]["data"]["colour"])
PY""")
    assert shell.returncode == 0, shell.stderr[-3000:]
    assert shell.stdout.split()[-4:] == ["True", "embedded", "True", "teal"]


def test_lab_00_runs_to_the_end_inside(devcontainer):
    shell = devcontainer("python -m glassbox.course.execute solutions/00-setup.ipynb && python - <<'PY'\n"
                         "import nbformat\n"
                         "notebook = nbformat.read('solutions/00-setup.ipynb', as_version=4)\n"
                         "errors = [o for c in notebook.cells for o in c.get('outputs', []) if o.output_type == 'error']\n"
                         "print('errors', len(errors), 'cells', sum(c.cell_type == 'code' for c in notebook.cells))\n"
                         "PY")
    assert shell.returncode == 0, shell.stderr[-3000:]
    words = shell.stdout.split()
    assert words[words.index("errors") + 1] == "0" and int(words[words.index("cells") + 1]) > 0, shell.stdout
