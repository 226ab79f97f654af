"""The server's API key: rendered from a real (embedded) Vault by a real Vault Agent (``bao agent``) logged in
with the service's AppRole, checked on every protected request (401 with {"error"} otherwise), re-read while
the server runs so that a rotation needs no restart. Also the key-file source, start-up refusals, and that no
secret reaches the server's log.
"""

import time

import httpx
import psutil
import pytest

from glassbox import artifacts, monitoring
from glassbox.serving import ConfigError, LocalServer, ServerConfig, _key_guard
from glassbox.vault import bootstrap

from helpers import eventually, served_by_agent, write_atomically

REFRESH = 1.0
RENDER = 1.0  # the agent's render interval, seconds
BODY = {"inputs": [{"name": "input-0", "shape": [1, 9], "datatype": "FP64", "data": [1.0] * 9}]}


@pytest.fixture(scope="module")
def served(vault_client, tmp_path_factory):
    with served_by_agent(vault_client, tmp_path_factory.mktemp("agent"), render_interval=f"{RENDER:g}s",
                         GLASSBOX_KEY_REFRESH_SECONDS=REFRESH) as (server, agent):
        yield server, agent


def _infer(server, key=None, headers=None):
    headers = headers if headers is not None else ({"Authorization": f"Bearer {key}"} if key else {})
    return httpx.post(server.url + "/v2/models/credit/infer", json=BODY, headers=headers, timeout=10)


def test_the_key_from_vault_is_accepted(served, vault_client):
    server, _ = served
    key = bootstrap.read_api_key(vault_client)
    assert _infer(server, key).status_code == 200
    assert _infer(server, headers={"authorization": f"bearer {key}"}).status_code == 200  # scheme is case-free


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Token abc"},
    {"Authorization": "Bearer not-the-key"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-Api-Key": "whatever"},
])
def test_a_missing_or_wrong_key_gets_401(served, vault_client, headers):
    server, _ = served
    answer = _infer(server, headers=headers)
    assert answer.status_code == 401
    assert "API key" in answer.json()["error"] and answer.headers["www-authenticate"].startswith("Bearer")


def test_a_key_differing_only_in_case_or_length_is_refused(served, vault_client):
    server, _ = served
    key = bootstrap.read_api_key(vault_client)
    for wrong in (key.swapcase(), key[:-1], key + "x", " " + key + "x"):
        assert _infer(server, wrong).status_code == 401


def test_which_endpoints_need_the_key(served, vault_client):
    server, _ = served
    key = bootstrap.read_api_key(vault_client)
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/credit/ready", "/metrics"):
        assert httpx.get(server.url + path).status_code == 200, path  # probes and scrapers need no secret
    for path in ("/v2", "/v2/models/credit", "/v2/models/credit/versions/1"):
        assert httpx.get(server.url + path).status_code == 401, path
        assert httpx.get(server.url + path, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # an unknown model name is not revealed to a caller without the key
    assert httpx.post(server.url + "/v2/models/other/infer", json=BODY).status_code == 401


def test_rotation_in_vault_needs_no_restart(served, vault_client):
    server, _ = served
    pid = server.process.pid
    old = bootstrap.read_api_key(vault_client)
    assert _infer(server, old).status_code == 200
    seen = monitoring.scrape(server.url + "/metrics").value("glassbox_api_key_version")  # distinct keys read
    bootstrap.rotate_api_key(vault_client)
    new = bootstrap.read_api_key(vault_client)
    assert new != old
    # within the agent's render interval and the server's refresh period (plus slack for a busy machine):
    # the old key is refused, the new one accepted
    assert eventually(lambda: _infer(server, old).status_code == 401, timeout=RENDER + REFRESH + 5)
    assert _infer(server, new).status_code == 200
    assert server.process.pid == pid and server.running
    metrics = monitoring.scrape(server.url + "/metrics")
    assert metrics.value("glassbox_api_key_version") == seen + 1
    assert metrics.value("glassbox_api_key_refreshes_total", outcome="changed") >= 1
    assert metrics.value("glassbox_request_errors_total", endpoint="infer", code="401") >= 1


def test_a_caller_with_the_new_key_is_not_refused_while_the_server_catches_up(vault_client, tmp_path):
    """With a refresh period far away, the first request with an unknown key makes the server re-read it."""
    with served_by_agent(vault_client, tmp_path, GLASSBOX_KEY_REFRESH_SECONDS=3600) as (server, agent):
        old = bootstrap.read_api_key(vault_client)
        bootstrap.rotate_api_key(vault_client)
        new = bootstrap.read_api_key(vault_client)
        assert eventually(lambda: agent.key_file.read_text() == new, timeout=RENDER + 10)  # the agent rendered it
        assert _infer(server, old).status_code == 200        # not re-read yet: the old key still works
        time.sleep(1.1)  # unknown keys trigger at most one re-read a second (the start-up read was just now)
        assert _infer(server, new).status_code == 200        # an unknown key triggers a re-read: accepted
        assert _infer(server, old).status_code == 401        # and from then on the old key is refused
        assert _infer(server, "guess").status_code == 401
        log = server.log()
    assert old not in log and new not in log


def test_the_server_logs_no_secret_and_holds_no_vault_credential(served, vault_client):
    server, agent = served
    log = server.log()
    assert "serving credit" in log and str(agent.key_file) in log
    assert bootstrap.read_api_key(vault_client) not in log + agent.log()
    # the server's process has no Vault address, token or secret ID: only the agent talks to Vault
    environment = psutil.Process(server.process.pid).environ()
    assert not {"VAULT_ADDR", "VAULT_TOKEN", "BAO_TOKEN"} & set(environment)
    assert not [name for name in environment if any(word in name for word in ("TOKEN", "SECRET", "ROLE_ID"))]


@pytest.mark.parametrize("env, message", [
    ({}, "no API key source: set GLASSBOX_API_KEY_FILE to the file Vault Agent renders"),
    ({"GLASSBOX_API_KEY_FILE": "/k", "GLASSBOX_INSECURE_DISABLE_AUTH": "1"}, "one API key source"),
    ({"GLASSBOX_INSECURE_DISABLE_AUTH": "1", "GLASSBOX_HOST": "0.0.0.0"}, "loopback development only"),
    ({"GLASSBOX_API_KEY_FILE": "/nonexistent/key"}, "cannot read the API key file"),
])
def test_an_incomplete_or_unsafe_configuration_is_refused(env, message):
    from glassbox.serving.auth import KeySourceError

    with pytest.raises((ConfigError, KeySourceError), match=message):
        _key_guard(ServerConfig.from_env(env))


def test_the_insecure_switch_works_on_loopback_only():
    assert _key_guard(ServerConfig.from_env({"GLASSBOX_INSECURE_DISABLE_AUTH": "1"})) is None


def test_a_key_file_is_re_read_and_a_failed_re_read_keeps_the_last_key(tmp_path):
    key_file = tmp_path / "api-key"
    write_atomically(key_file, "first-key-0123456789\n")
    env = {"GLASSBOX_MODEL_DIR": str(artifacts.build_course_model()), "GLASSBOX_API_KEY_FILE": str(key_file),
           "GLASSBOX_KEY_REFRESH_SECONDS": REFRESH}
    with LocalServer(env) as server:
        assert _infer(server, "first-key-0123456789").status_code == 200
        write_atomically(key_file, "second-key-0123456789")
        assert eventually(lambda: _infer(server, "first-key-0123456789").status_code == 401, REFRESH + 5)
        assert _infer(server, "second-key-0123456789").status_code == 200
        key_file.unlink()  # the source fails: the server keeps the last key it read, and counts the failure
        assert eventually(lambda: monitoring.scrape(server.url + "/metrics").value(
            "glassbox_api_key_refreshes_total", outcome="error") >= 1, REFRESH + 5)
        assert _infer(server, "second-key-0123456789").status_code == 200
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200
        assert "second-key" not in server.log()
