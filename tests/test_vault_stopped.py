"""When the course's Vault stops mid-lab: one line that says so and how to get it back, in a real kernel.

An ordinary cell fails with that line instead of a long urllib3 traceback (and Run All stops there); an exercise
cell's check says it is not the learner's fault and records nothing; the next ``vault.up()`` says that the new
server starts empty. Docker's own connection errors (the SDK also speaks requests) are not taken for Vault.
"""

import os
import subprocess
import sys

import nbformat
import pytest
import requests
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from glassbox.checks import infrastructure_failure

CELLS = [
    # 0: a lab's first cell, on a Vault of its own (the test kills it next)
    "import os, hvac\nfrom glassbox import vault\nserver = vault.up()\n"
    "client = hvac.Client(url=server.addr, token=server.token)\n"
    "client.secrets.kv.v2.create_or_update_secret(path='stopped-test', mount_point='secret', secret={'a': 'b'})\n"
    "print('pid', server.pid)",
    # 1: the Vault stops (the machine slept, someone ran `glassbox vault down` ...)
    "import signal\nos.kill(server.pid, signal.SIGKILL)\nimport time; time.sleep(1)\nprint('stopped')",
    # 2: an ordinary cell talks to it
    "client.secrets.kv.v2.read_secret_version(path='stopped-test', mount_point='secret', raise_on_deleted_version=True)",
    # 3: an exercise cell whose code talks to it
    "from glassbox.checks import exercise, expect\n"
    "@exercise(lab='99', name='stopped', title='A stopped Vault')\n"
    "def check_stopped(value):\n    expect(value == 'b', 'not b')\n\n"
    "answer = client.secrets.kv.v2.read_secret_version(path='stopped-test', mount_point='secret', raise_on_deleted_version=True)\n"
    "check_stopped(answer)",
    # 4: running the lab's first cell again
    "server = vault.up()\nprint('new server answers:', hvac.Client(url=server.addr, token=server.token).is_authenticated())",
]


def _run(cells, home, allow_errors):
    """Execute ``cells`` in a real kernel with a private course home and Vault (stopped afterwards)."""
    from helpers import pick_free_port

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    environment = {"GLASSBOX_HOME": str(home), "GLASSBOX_VAULT_PORT": str(pick_free_port()),
                   "GLASSBOX_VAULT_BACKEND": "embedded"}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the kernel inherits them
    try:
        NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=allow_errors).execute()
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
        subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], capture_output=True,
                       env=dict(os.environ, **environment))
    return notebook.cells


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    return _run(CELLS, tmp_path_factory.mktemp("stopped-home"), allow_errors=True)


def test_run_all_stops_at_the_cell_that_met_the_stopped_vault(tmp_path):
    with pytest.raises(CellExecutionError):
        _run(CELLS[:3], tmp_path, allow_errors=False)


def _streams(cell, name):
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == name)


def test_an_ordinary_cell_says_in_one_line_that_vault_stopped(cells):
    said = _streams(cells[2], "stderr").strip()
    assert said.count("\n") == 0 and said.startswith("glassbox: the course's Vault does not answer: it has stopped")
    assert "glassbox vault up" in said and "comes back empty" in said and "%tb" in said
    assert not [o for o in cells[2].outputs if o["output_type"] == "error"]  # no 60-line traceback
    assert "Traceback" not in said and "urllib3" not in said


def test_an_exercise_cell_does_not_blame_the_learner(cells):
    shown = [o["data"]["text/plain"] for o in cells[3].outputs if o["output_type"] == "display_data"]
    assert len(shown) == 1 and shown[0].startswith("[NOT YET] Lab 99 · A stopped Vault:")
    assert "not your answer's fault" in shown[0] and "glassbox vault up" in shown[0]


def test_the_next_vault_up_says_the_new_server_starts_empty(cells):
    assert "new server answers: True" in _streams(cells[4], "stdout")
    said = _streams(cells[4], "stderr")
    assert "had stopped; starting a new one" in said and "starts empty" in said


def test_a_docker_engine_that_does_not_answer_is_not_taken_for_vault():
    docker_down = requests.exceptions.ConnectionError("connection refused")
    docker_down.request = requests.Request("GET", "http+docker://localhost/v1.47/version").prepare()
    assert infrastructure_failure(docker_down) is None
    vault_down = requests.exceptions.ConnectionError("connection refused")
    assert "Vault does not answer" in infrastructure_failure(vault_down)
