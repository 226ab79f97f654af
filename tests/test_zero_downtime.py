"""Zero downtime under real load: a real server process whose key a real Vault Agent renders (``bao agent``,
AppRole with a wrapped secret ID from the trusted orchestrator), the course's load generator, and changes made
while the load runs.

- Model swap through the protocol's model-repository extension (``POST /v2/repository/models/credit/load``):
  not one request fails, requests after the swap get the new model, and a request in flight when the swap
  happens finishes on the model it started with.
- Rotating the API key in Vault, twice: the agent renders each new version, the server picks it up without a
  restart; callers that pick up the new key (``monitoring.KeyCaller``) see no failure; a caller that keeps the
  old key is refused once the server has moved on.
- The agent logging in again under load (tokens made short and non-periodic, the orchestrator's ``Delivery``
  keeping a fresh wrapped secret ID in its directory, the agent restarted meanwhile): not one request fails,
  because the server keeps the key it read; a key rotated meanwhile is read through the new logins.
- A restarted agent with no new wrapped secret ID cannot log in (its secret ID was single-use), and the server
  keeps serving with the last key.
"""

import socket
import time

import httpx
import hvac
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from sklearn.ensemble import HistGradientBoostingClassifier

from glassbox import artifacts, monitoring
from glassbox.data import load_credit, train_test
from glassbox.serving import LocalServer
from glassbox.vault import agent, bootstrap
from glassbox.vault.orchestrator import Delivery, deliver

from helpers import eventually

LOAD = dict(concurrency=4, duration=4.0)   # bounded: a few thousand requests at most on 2 cores


@pytest.fixture(scope="module")
def served(vault_client, tmp_path_factory):
    """A server process on the course model, its key rendered by a Vault Agent that the orchestrator started."""
    bootstrap.ensure(vault_client)
    home = tmp_path_factory.mktemp("zero-downtime")
    model_dir = artifacts.build_course_model(home / "model")
    orchestrator = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client))
    deliver(orchestrator, home / "agent", wrap_ttl="300s")
    running = agent.LocalAgent(vault_client.url, home / "agent", render_interval="1s").start()
    server = LocalServer({
        "GLASSBOX_API_KEY_FILE": str(running.key_file), "GLASSBOX_MODEL_DIR": str(model_dir),
        "GLASSBOX_KEY_REFRESH_SECONDS": "1",
    }, log_path=home / "server.log").start(timeout=120)
    data = load_credit(4000, seed=0)
    features = artifacts.load(model_dir).feature_names   # the course model's inputs
    yield server, model_dir, running, orchestrator, data, features
    server.stop()
    running.stop()
    vault_client.auth.token.revoke(orchestrator.token)


class _SlowRequest:
    """An inference request whose body arrives in two parts: the server has routed it (to the model being
    served) after the first part, and answers only after the second."""

    def __init__(self, server, body: bytes, headers: dict):
        host, port = server.url.removeprefix("http://").split(":")
        self.body = body
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        head = (f"POST /v2/models/credit/infer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
        self.sock.sendall(head.encode() + body[:len(body) // 2])

    def finish(self):
        self.sock.sendall(self.body[len(self.body) // 2:])
        received = b""
        while chunk := self.sock.recv(65536):
            received += chunk
        self.sock.close()
        head, _, payload = received.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), orjson.loads(payload)


def _infer_url(server):
    return server.url + "/v2/models/credit/infer"


def _headers(client):
    return {"Authorization": f"Bearer {bootstrap.read_api_key(client)}"}


def _caller(vault_client):
    """A client of the model service that reads the key from Vault and re-reads it when refused."""
    return monitoring.KeyCaller(lambda: bootstrap.read_api_key(vault_client))


def _version_served(server, client, body):
    answer = httpx.post(_infer_url(server), content=body, headers=_headers(client), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["model_version"]


def test_model_swap_under_load_fails_no_request(served, vault_client):
    server, model_dir, _, _, data, features = served
    X_train, X_test, y_train, y_test = train_test(data, seed=0)
    bodies = [monitoring.v2_request(X_test[features].iloc[i:i + 1], outputs=["predict_proba"]) for i in range(50)]
    before = _version_served(server, vault_client, bodies[0])

    # a candidate trained on fresh data, written over the served artifact (atomically, as artifacts.save does)
    fresh = load_credit(4000, seed=7)
    F_train, F_test, g_train, g_test = train_test(fresh, seed=7)
    candidate = HistGradientBoostingClassifier(max_iter=60, random_state=7).fit(F_train[features], g_train)
    new_version = str(int(before) + 1)
    manifest = artifacts.save(candidate, model_dir, X_train=F_train[features], X_test=F_test[features],
                              y_test=g_test, name="credit", version=new_version, overwrite=True)
    assert _version_served(server, vault_client, bodies[0]) == before       # nothing changes until asked

    # a request in flight during the swap: headers and half its body sent before, the rest after
    caller = _caller(vault_client)
    with monitoring.BackgroundLoad(_infer_url(server), bodies, api_key=caller, **LOAD) as load:
        time.sleep(1.0)
        in_flight = _SlowRequest(server, bodies[0], _headers(vault_client))
        time.sleep(0.2)
        swapped = httpx.post(server.url + "/v2/repository/models/credit/load", headers=_headers(vault_client),
                             timeout=60)
        status, answer = in_flight.finish()
        time.sleep(0.5)
    result = load.result
    assert swapped.status_code == 200, swapped.text
    assert swapped.json()["version"] == new_version
    assert swapped.json()["manifest_sha256"] == artifacts.manifest_digest(model_dir)
    assert result.failed == 0, (result.statuses, result.errors)
    assert result.requests > 200
    # the request in flight during the swap finished on the model it started with
    assert status == 200 and answer["model_version"] == before
    assert _version_served(server, vault_client, bodies[0]) == new_version

    # the new model really answers: its probabilities, not the old model's
    answer = httpx.post(_infer_url(server), content=bodies[0], headers=_headers(vault_client)).json()
    expected = candidate.predict_proba(X_test[features].iloc[:1])
    np.testing.assert_allclose(answer["outputs"][0]["data"], expected.ravel(), rtol=1e-12)
    metrics = monitoring.scrape(server.url + "/metrics")
    assert metrics.value("glassbox_requests_total", endpoint="repository_load", code="200") >= 1
    assert manifest["version"] == new_version


def test_a_real_protocol_client_drives_the_repository(served, vault_client):
    server, model_dir, _, _, _, _ = served
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    index = client.get_model_repository_index(headers=_headers(vault_client))
    assert index == [{"name": "credit", "version": index[0]["version"], "state": "READY", "reason": ""}]
    client.load_model("credit", headers=_headers(vault_client))          # the same artifact again: fine
    with pytest.raises(triton.InferenceServerException, match="unknown model"):
        client.load_model("other", headers=_headers(vault_client))
    with pytest.raises(triton.InferenceServerException, match="unsupported load parameter"):
        client.load_model("credit", headers=_headers(vault_client), config="{}")
    with pytest.raises(triton.InferenceServerException):
        client.load_model("credit")                                        # no key: 401
    assert client.is_server_ready()


def test_a_refused_load_keeps_the_old_model_serving(served, vault_client):
    server, model_dir, _, _, data, features = served
    body = monitoring.v2_request(data.X[features].iloc[:1])
    version = _version_served(server, vault_client, body)
    wrong_pin = httpx.post(server.url + "/v2/repository/models/credit/load", headers=_headers(vault_client),
                           json={"parameters": {"manifest_sha256": "0" * 64}})
    assert wrong_pin.status_code == 400 and "pinned" in wrong_pin.json()["error"]
    card = model_dir / artifacts.CARD_FILE
    original = card.read_bytes()
    card.write_bytes(original + b"\ntampered\n")
    try:
        tampered = httpx.post(server.url + "/v2/repository/models/credit/load", headers=_headers(vault_client))
    finally:
        card.write_bytes(original)
    assert tampered.status_code == 400 and "sha256" in tampered.json()["error"]
    index = httpx.post(server.url + "/v2/repository/index", headers=_headers(vault_client)).json()
    assert index[0]["state"] == "READY" and "failed" in index[0]["reason"]
    assert _version_served(server, vault_client, body) == version
    unload = httpx.post(server.url + "/v2/repository/models/credit/unload", headers=_headers(vault_client))
    assert unload.status_code == 400 and "error" in unload.json()
    assert httpx.post(server.url + "/v2/repository/models/credit/load").status_code == 401


def _key_version(server):
    """The server's key gauge: how many different keys it has read from its file (the file has no KV version)."""
    return monitoring.scrape(server.url + "/metrics").value("glassbox_api_key_version")


def _accepts(server, key):
    return httpx.get(server.url + "/v2/models/credit", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_api_key_rotation_under_load_fails_no_request_for_callers_that_pick_it_up(served, vault_client):
    server, _, running, _, data, features = served
    bodies = [monitoring.v2_request(data.X[features].iloc[i:i + 1]) for i in range(20)]
    old_key = bootstrap.read_api_key(vault_client)
    seen = _key_version(server)
    caller = _caller(vault_client)
    with monitoring.BackgroundLoad(_infer_url(server), bodies, api_key=caller, **LOAD) as load, \
            monitoring.BackgroundLoad(_infer_url(server), bodies, api_key=old_key, concurrency=1,
                                      duration=LOAD["duration"]) as stale:
        time.sleep(0.8)
        bootstrap.rotate_api_key(vault_client)
        assert eventually(lambda: _key_version(server) == seen + 1)   # rendered, then picked up: no restart
        time.sleep(0.5)
        bootstrap.rotate_api_key(vault_client)
        assert eventually(lambda: _key_version(server) == seen + 2)
    result = load.result
    assert result.failed == 0, (result.statuses, result.errors)
    assert caller.refreshes >= 1 and result.requests > 200
    assert stale.result.statuses.get(401, 0) > 0                       # the old key stopped working
    assert running.key_file.read_text().strip() == bootstrap.read_api_key(vault_client)   # the latest version
    assert running.count("authentication successful") == 1            # new key versions need no new login
    assert httpx.post(_infer_url(server), content=bodies[0],
                      headers={"Authorization": f"Bearer {old_key}"}).status_code == 401


def test_the_agent_logs_in_again_under_load_and_no_request_fails(served, vault_client):
    """Short non-periodic tokens (max TTL 4 s) make the agent log in again and again, each time with the next
    wrapped secret ID that the orchestrator's Delivery left in its directory; the agent is restarted meanwhile.
    The server keeps the key it read throughout."""
    server, _, running, orchestrator, data, features = served
    bodies = [monitoring.v2_request(data.X[features].iloc[i:i + 1]) for i in range(20)]
    caller = _caller(vault_client)
    anonymous = hvac.Client(url=vault_client.url, token="")
    bootstrap.ensure(vault_client, bootstrap.Setup(token_period=None, token_ttl="2s", token_max_ttl="4s"))
    try:
        with Delivery(orchestrator, running.directory, wrap_ttl="60s") as delivery:
            with monitoring.BackgroundLoad(_infer_url(server), bodies, api_key=caller, concurrency=4,
                                           duration=9.0) as load:
                time.sleep(0.5)
                running.stop()                      # its token was in memory only; its secret ID is spent
                running.start()                     # logs in with the secret ID the orchestrator delivered
                assert eventually(lambda: running.count("authentication successful") >= 3, timeout=12), \
                    running.log(20)                 # two more logins: each token reached its max TTL
                version = bootstrap.rotate_api_key(vault_client)
                key = bootstrap.read_api_key(vault_client)
                assert eventually(lambda: running.key_file.read_text().strip() == key)   # read via a new login
                assert eventually(lambda: _accepts(server, key))
                assert version > 1
            handed = running.directory / agent.SECRET_ID_FILE
            assert eventually(handed.exists)        # the next one waits there
            waiting = handed.read_text().strip()
            assert anonymous.adapter.post("/v1/sys/wrapping/lookup", json={"token": waiting})["data"][
                "creation_path"] == bootstrap.Setup().secret_id_creation_path
            assert delivery.delivered >= 3 and not delivery.errors   # one per login, and one waiting
    finally:
        bootstrap.ensure(vault_client)               # periodic again: the agent's next renewal gets a period
    result = load.result
    assert result.failed == 0, (result.statuses, result.errors)
    assert result.requests > 200
    log = server.log() + running.log()
    assert key not in log and waiting not in log


def test_a_restarted_agent_without_a_new_secret_id_cannot_log_in_and_the_server_keeps_its_key(served, vault_client):
    server, _, running, orchestrator, data, features = served
    key = bootstrap.read_api_key(vault_client)
    assert eventually(lambda: _accepts(server, key))
    (running.directory / agent.SECRET_ID_FILE).unlink(missing_ok=True)
    running.stop()
    with pytest.raises(agent.AgentError, match="rendered no API key"):
        running.start(timeout=3)                     # the secret ID it held is spent, and none was delivered
    assert not running.running
    assert _accepts(server, key)                     # the server serves on with the last key it read
    time.sleep(1.5)                                  # a refresh or two of the key fails meanwhile: still served
    assert _accepts(server, key)
    assert monitoring.scrape(server.url + "/metrics").value("glassbox_api_key_refreshes_total", outcome="error") > 0
    deliver(orchestrator, running.directory, wrap_ttl="60s")
    running.start()                                  # with a new wrapped secret ID it logs in again
    assert running.count("authentication successful") == 1 and _accepts(server, key)
