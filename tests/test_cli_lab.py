"""`glassbox lab` (what `make lab` runs): the dev Vault answers at the printed address and JupyterLab serves /lab."""

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from helpers import lab_env, pick_free_port, wait_for_lab

LABS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labs")


@pytest.fixture
def lab_process(tmp_path):
    env = lab_env(tmp_path)
    port = pick_free_port()
    process = subprocess.Popen([sys.executable, "-m", "glassbox", "lab", "--no-browser", "--port", str(port),
                                "--dir", LABS],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    process.env = env
    yield process
    process.terminate()
    process.wait(timeout=30)
    subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True, check=True)


def test_lab_prints_vault_and_jupyterlab_addresses_that_answer(lab_process):
    vault_line, lab_line = lab_process.stdout.readline(), lab_process.stdout.readline()
    vault_addr = re.search(r"VAULT_ADDR=(http://127\.0\.0\.1:\d+)", vault_line).group(1)
    lab_url = re.search(r"(http://127\.0\.0\.1:\d+/lab\?token=\S+)", lab_line).group(1)

    assert httpx.get(f"{vault_addr}/v1/sys/health").json()["sealed"] is False
    environment = psutil.Process(lab_process.pid).environ()  # the same process, exec'd into JupyterLab
    assert environment["VAULT_ADDR"] == vault_addr and "VAULT_TOKEN" not in environment

    answer = wait_for_lab(lab_url, lab_process)
    assert "JupyterLab" in answer.text
    base, token = lab_url.split("/lab?token=")
    notification = httpx.get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification",
                             headers={"Authorization": f"token {token}"}).json()["schema"]["properties"]
    assert notification["fetchNews"]["default"] == "false"          # the course's overrides: no news pop-up
    assert notification["checkForUpdates"]["default"] is False
    assert httpx.get(lab_url.split("?")[0], follow_redirects=False).status_code in (302, 403)  # needs the token


def _lab(env, port):
    return subprocess.run([sys.executable, "-m", "glassbox", "lab", "--no-browser", "--port", str(port), "--dir",
                           LABS], env=env, capture_output=True, text=True, timeout=120)


def test_a_second_lab_reuses_the_running_jupyterlab_and_prints_its_address(lab_process):
    lab_process.stdout.readline()
    first_url = re.search(r"(http://127\.0\.0\.1:\d+/lab\?token=\S+)", lab_process.stdout.readline()).group(1)
    deadline = time.monotonic() + 120
    while True:   # JupyterLab writes its runtime file once it serves
        second = _lab(lab_process.env, int(first_url.split(":")[2].split("/")[0]))
        if "already runs" in second.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert second.returncode == 0, second.stderr
    assert f"JupyterLab already runs: {first_url}" in second.stdout


def test_a_taken_port_moves_jupyterlab_to_a_free_one_and_says_so(tmp_path):
    env = lab_env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.Popen([sys.executable, "-m", "glassbox", "lab", "--no-browser", "--port", str(port),
                                    "--dir", LABS], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
        try:
            lines = [process.stdout.readline() for _ in range(3)]
        finally:
            process.terminate()
            process.wait(timeout=30)
            subprocess.run([sys.executable, "-m", "glassbox", "vault", "down"], env=env, capture_output=True)
    moved = re.search(rf"Port {port} is taken by another program: JupyterLab uses port (\d+) instead\.", lines[1])
    assert moved and f"http://127.0.0.1:{moved.group(1)}/lab?token=" in lines[2]
