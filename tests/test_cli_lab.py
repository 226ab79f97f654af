"""`glassbox lab` (what `make lab` runs): the dev Vault answers at the printed address and JupyterLab serves /lab."""

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from helpers import pick_free_port

LABS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labs")


@pytest.fixture
def lab_process(tmp_path):
    env = dict(os.environ, GLASSBOX_HOME=str(tmp_path / "home"), GLASSBOX_VAULT_PORT=str(pick_free_port()),
               GLASSBOX_VAULT_BACKEND="embedded", JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    port = pick_free_port()
    process = subprocess.Popen([sys.executable, "-m", "glassbox", "lab", "--no-browser", "--port", str(port),
                                "--dir", LABS],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    yield process
    process.terminate()
    process.wait(timeout=30)
    subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True, check=True)


def test_lab_prints_vault_and_jupyterlab_addresses_that_answer(lab_process):
    vault_line, lab_line = lab_process.stdout.readline(), lab_process.stdout.readline()
    vault_addr = re.search(r"VAULT_ADDR=(http://127\.0\.0\.1:\d+)", vault_line).group(1)
    lab_url = re.search(r"(http://127\.0\.0\.1:\d+/lab\?token=\S+)", lab_line).group(1)

    assert httpx.get(f"{vault_addr}/v1/sys/health").json()["sealed"] is False

    deadline = time.monotonic() + 120
    while True:
        try:
            answer = httpx.get(lab_url, timeout=5)
            if answer.status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and lab_process.poll() is None, "JupyterLab did not answer"
        time.sleep(0.5)
    assert "JupyterLab" in answer.text
    assert httpx.get(lab_url.split("?")[0], follow_redirects=False).status_code in (302, 403)  # needs the token
