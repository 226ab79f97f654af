"""Vault Agent and the trusted orchestrator, against a real (embedded) OpenBao and a real ``bao agent``.

The orchestrator may only hand out wrapped secret IDs; the agent refuses a spent or look-alike one, renders
the key 0600 with no token on disk, holds a periodic token, and needs a new delivery to start again. Secret
IDs and tokens only work from the addresses they are bound to.
"""

import http.client
import json
import stat

import hvac
import hvac.exceptions
import pytest

from glassbox.vault import agent, bootstrap, orchestrator

from helpers import eventually, served_by_agent


@pytest.fixture(scope="module")
def setup(vault_client):
    return bootstrap.ensure(vault_client)


@pytest.fixture
def orchestrator_client(vault_client, setup):
    client = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client))
    yield client
    client.auth.token.revoke_self()


def test_the_orchestrator_issues_wrapped_secret_ids_and_nothing_else(vault_client, orchestrator_client):
    wrapping = bootstrap.wrapped_secret_id(orchestrator_client)
    assert hvac.Client(url=vault_client.url, token="").adapter.post(
        "/v1/sys/wrapping/lookup", json={"token": wrapping})["data"]["creation_path"] == \
        f"auth/approle/role/{bootstrap.ROLE}/secret-id"
    assert bootstrap.role_id(orchestrator_client) == bootstrap.role_id(vault_client)
    refused = {
        "an unwrapped secret ID": lambda: orchestrator_client.auth.approle.generate_secret_id(bootstrap.ROLE),
        "a wrap longer than 5 minutes": lambda: orchestrator_client.auth.approle.generate_secret_id(
            bootstrap.ROLE, wrap_ttl="10m"),
        "another role's secret ID": lambda: orchestrator_client.auth.approle.generate_secret_id(
            "some-other-role", wrap_ttl="60s"),
        "the service's API key": lambda: bootstrap.read_api_key(orchestrator_client),
        "changing the role": lambda: orchestrator_client.auth.approle.create_or_update_approle(
            bootstrap.ROLE, token_policies=["root"]),
        "a token of its own making": lambda: orchestrator_client.auth.token.create(policies=[bootstrap.POLICY]),
    }
    allowed = []
    for what, call in refused.items():
        try:
            call()
            allowed.append(what)
        except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
            pass
    assert allowed == []


def test_the_agent_renders_the_key_privately_and_keeps_no_token_on_disk(vault_client, setup, tmp_path):
    with served_by_agent(vault_client, tmp_path) as (server, running):
        key = bootstrap.read_api_key(vault_client)
        assert running.key_file.read_text() == key
        assert stat.S_IMODE(running.key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
        # the wrapped secret ID was taken (deleted after reading); nothing but these files is left
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [agent.ROLE_ID_FILE, agent.KEY_FILE, agent.CONFIG_FILE, agent.LOG_FILE])
        assert "sink" not in (tmp_path / agent.CONFIG_FILE).read_text()  # the token stays in the agent's memory
        assert key not in running.log()
        tokens = _service_tokens(vault_client)
        newest = max(tokens, key=lambda token: token["creation_time"])
        assert newest["period"] == 15 * 60 and newest["explicit_max_ttl"] == 0  # periodic: renewed while it runs
        assert newest["bound_cidrs"] == ["127.0.0.1"]
        assert server.running


def test_a_spent_or_look_alike_wrapping_token_is_refused(vault_client, orchestrator_client, tmp_path):
    orchestrator.deliver(orchestrator_client, tmp_path)
    spent = (tmp_path / agent.SECRET_ID_FILE).read_text().strip()
    hvac.Client(url=vault_client.url, token=spent).sys.unwrap()        # someone else unwrapped it first
    with pytest.raises(agent.AgentError, match="rendered no API key") as refused:
        agent.LocalAgent(vault_client.url, tmp_path).start(timeout=6)
    assert spent not in str(refused.value)
    # a token wrapping attacker-chosen data: the agent checks where it was made, and never unwraps it
    forged = vault_client.sys.wrap(payload={"secret_id": "attacker-chosen"}, ttl="60s")["wrap_info"]["token"]
    (tmp_path / agent.SECRET_ID_FILE).write_text(forged)
    looked_at = agent.LocalAgent(vault_client.url, tmp_path)
    with pytest.raises(agent.AgentError):
        looked_at.start(timeout=6)
    assert "sys/wrapping/wrap" in looked_at.log()
    assert hvac.Client(url=vault_client.url, token="").adapter.post(
        "/v1/sys/wrapping/lookup", json={"token": forged})["data"]["creation_path"] == "sys/wrapping/wrap"


def test_a_restarted_agent_needs_a_new_delivery_and_the_server_serves_throughout(vault_client, tmp_path):
    with served_by_agent(vault_client, tmp_path, GLASSBOX_KEY_REFRESH_SECONDS=1) as (server, running):
        key = bootstrap.read_api_key(vault_client)
        running.stop()
        assert _infer_status(server, key) == 200           # the server keeps the rendered key
        again = agent.LocalAgent(vault_client.url, tmp_path, render_interval="1s")
        with pytest.raises(agent.AgentError):              # its secret ID was single-use: no login
            again.start(timeout=6)
        assert "no known secret ID" in again.log()           # the agent says why
        assert _infer_status(server, key) == 200           # still serving, with the key it read
        orchestrator_client = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client))
        orchestrator.deliver(orchestrator_client, tmp_path)
        again.start(timeout=60)                           # a fresh wrapped secret ID: it logs in again
        try:
            bootstrap.rotate_api_key(vault_client)
            new = bootstrap.read_api_key(vault_client)
            assert eventually(lambda: _infer_status(server, new) == 200, timeout=10)
            assert _infer_status(server, key) == 401
        finally:
            again.stop()


def test_secret_ids_and_tokens_work_only_from_their_bound_addresses(vault_client, setup):
    """127.0.0.2 is this machine too, but not in 127.0.0.1/32: Vault refuses the login and the token there."""
    role_id = bootstrap.role_id(vault_client)
    secret_id = vault_client.auth.approle.generate_secret_id(setup.role)["data"]["secret_id"]
    body = {"role_id": role_id, "secret_id": secret_id}
    status, _ = _request(vault_client.url, "POST", "/v1/auth/approle/login", body, source="127.0.0.2")
    assert status in (400, 403)
    status, answer = _request(vault_client.url, "POST", "/v1/auth/approle/login", body, source="127.0.0.1")
    assert status == 200, answer
    token = answer["auth"]["client_token"]
    path = f"/v1/{setup.api_path}"
    assert _request(vault_client.url, "GET", path, token=token, source="127.0.0.2")[0] == 403
    assert _request(vault_client.url, "GET", path, token=token, source="127.0.0.1")[0] == 200


def test_the_agent_configuration_names_the_roles_creation_path_and_no_sink(tmp_path):
    text = agent.config("http://127.0.0.1:8200", tmp_path)
    assert f'secret_id_response_wrapping_path    = "auth/approle/role/{bootstrap.ROLE}/secret-id"' in text
    assert "remove_secret_id_file_after_reading = true" in text
    assert f'max_backoff = "{agent.MAX_BACKOFF}"' in text  # a running agent takes a new delivery within seconds
    assert "sink" not in text and 'perms       = "0600"' in text
    assert "address" not in agent.config("", tmp_path)  # compose: the agent takes VAULT_ADDR from its env


# -- helpers ---------------------------------------------------------------------------------------------

def _service_tokens(admin) -> list[dict]:
    """The live tokens carrying the service's policy (looked up by accessor; needs the root token)."""
    found = []
    for accessor in admin.adapter.list("/v1/auth/token/accessors")["data"]["keys"]:
        try:
            data = admin.auth.token.lookup_accessor(accessor)["data"]
        except hvac.exceptions.VaultError:
            continue
        if bootstrap.POLICY in (data.get("policies") or []):
            found.append(data)
    return found


def _infer_status(server, key) -> int:
    import httpx

    body = {"inputs": [{"name": "input-0", "shape": [1, 9], "datatype": "FP64", "data": [1.0] * 9}]}
    return httpx.post(server.url + "/v2/models/credit/infer", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code


def _request(url: str, method: str, path: str, body=None, *, token=None, source: str):
    """An HTTP request to Vault from the loopback address ``source`` (Vault sees it as the client's address)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    headers = {"X-Vault-Token": token} if token else {}
    connection.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    answer = connection.getresponse()
    payload = answer.read()
    connection.close()
    return answer.status, json.loads(payload) if payload else {}
