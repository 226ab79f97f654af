"""docker-compose.yml: what it declares (read by the Compose CLI itself, no engine needed), and the stack brought
up for real on a Docker engine: Vault healthy, the bootstrap done, the agent sidecar rendering the key, the
server healthy and authenticated; a key rotated in the stack's Vault taken up without a restart; an agent
restarted without a fresh delivery unable to log in (the server keeps serving), and after one serving
rotations again; the server restarted alone serving at once; and nothing left behind by `down`.

The stack uses the local OpenBao image that `.ci/docker-engine.sh` builds (no image is pulled in tests).
"""

import json
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import hvac
import numpy as np
import pytest

from glassbox import artifacts, deploy
from glassbox.data import load_credit, train_test
from glassbox.serving.local import is_ready
from glassbox.vault import bootstrap, server as vault_server

from helpers import require_engine


def _config(**env) -> dict:
    """`docker compose config` as JSON: the file as Compose itself reads it, variables substituted."""
    stack = deploy.Stack(project="glassbox-config-test", directory=deploy.project_dir(),
                         vault_image=env.pop("vault_image", deploy.DEFAULT_VAULT_IMAGE), vault_port=8300, port=8090,
                         subnet="10.231.7.0/24")
    return json.loads(stack.compose("config", "--format", "json").stdout)


# -- the file, as Compose reads it (no engine needed) -------------------------------------------------------

SIDECARS = ("vault", "bootstrap", "agent")


def test_compose_declares_the_four_services_in_order():
    services = _config()["services"]
    assert set(services) == {"vault", "bootstrap", "agent", "model-server"}
    assert services["bootstrap"]["depends_on"]["vault"]["condition"] == "service_healthy"
    assert services["agent"]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
    assert services["model-server"]["depends_on"]["agent"]["condition"] == "service_healthy"
    assert "vault" in " ".join(services["vault"]["healthcheck"]["test"])
    assert "/run/glassbox-key/api-key" in " ".join(services["agent"]["healthcheck"]["test"])
    assert "glassbox.serving.health" in " ".join(services["model-server"]["healthcheck"]["test"])


def test_compose_defaults_to_hashicorp_vault_and_switches_with_vault_image(monkeypatch):
    monkeypatch.delenv("VAULT_IMAGE", raising=False)
    text = (deploy.project_dir() / "docker-compose.yml").read_text()
    assert text.count(f"${{VAULT_IMAGE:-{deploy.DEFAULT_VAULT_IMAGE}}}") == 2  # Vault and its agent
    assert deploy.DEFAULT_VAULT_IMAGE == vault_server.DEFAULT_IMAGE  # one Vault version across the course
    services = _config(vault_image="glassbox/openbao:2.7.2")["services"]
    assert services["vault"]["image"] == services["agent"]["image"] == "glassbox/openbao:2.7.2"


def test_compose_has_no_fixed_root_token():
    text = (deploy.project_dir() / "docker-compose.yml").read_text()
    assert "glassbox-dev-root" not in text
    vault = _config()["services"]["vault"]
    script = " ".join(vault["entrypoint"] + vault["command"])
    assert "/dev/urandom" in script and "/run/vault-root/token" in script  # one random token per stack
    assert "-dev-root-token-id" not in script  # not on a command line, which `ps` shows to every user
    assert [v["source"] for v in vault["volumes"]] == ["vault-root"]
    users = {name for name, service in _config()["services"].items()
             if any(v.get("source") == "vault-root" for v in service.get("volumes", []))}
    assert users == {"vault", "bootstrap"}


def test_the_server_gets_only_its_key_file_and_no_vault_access():
    config = _config()
    services = config["services"]
    server = services["model-server"]
    assert set(server["environment"]) == {"GLASSBOX_API_KEY_FILE", "GLASSBOX_TLS_FILE", "GLASSBOX_KEY_REFRESH_SECONDS"}
    assert server["environment"]["GLASSBOX_API_KEY_FILE"] == "/run/glassbox/api-key"
    assert [(v["source"], v["target"], v.get("read_only")) for v in server["volumes"]] == [
        ("key", "/run/glassbox", True)]
    assert set(server["networks"]) == {"default"}
    # the key volume: in memory, the server's UID, shared with the agent alone
    key = config["volumes"]["key"]["driver_opts"]
    assert key["type"] == key["device"] == "tmpfs" and "uid=10001" in key["o"] and "mode=0700" in key["o"]
    assert {name for name, service in services.items()
            if any(v.get("source") == "key" for v in service.get("volumes", []))} == {"agent", "model-server"}
    assert {name for name, service in services.items()
            if any(v.get("source") == "handoff" for v in service.get("volumes", []))} == {"bootstrap", "agent"}


def test_vault_sits_on_an_internal_network_with_only_the_agent_and_the_bootstrap():
    config = _config()
    services, networks = config["services"], config["networks"]
    internal = [name for name, network in networks.items() if network.get("internal")]
    assert internal == ["vault"]
    assert networks["vault"]["ipam"]["config"][0]["subnet"] == "10.231.7.0/24"  # the default, overridable
    assert {name for name, service in services.items() if "vault" in service.get("networks", {})} == set(SIDECARS)
    # the network that lets Vault's port be published to the host is Vault's alone
    assert {name for name, service in services.items()
            if "vault-published" in service.get("networks", {})} == {"vault"}
    assert services["bootstrap"]["environment"]["GLASSBOX_BOUND_CIDRS"] == "10.231.7.0/24"
    assert services["agent"]["command"] == ["agent", "-config=/run/glassbox/agent.hcl"]
    assert services["agent"]["user"] == f"{deploy.UID}:{deploy.UID}"


def test_compose_publishes_on_loopback_only_and_hardens_every_service():
    services = _config()["services"]
    for name in ("vault", "model-server"):
        assert [port["host_ip"] for port in services[name]["ports"]] == ["127.0.0.1"], name
    assert "ports" not in services["bootstrap"] and "ports" not in services["agent"]
    for name, service in services.items():
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert any("no-new-privileges" in option for option in service["security_opt"]), name
        assert service["mem_limit"] and service["cpus"] and service["pids_limit"], name
    assert {name: services[name]["restart"] for name in ("agent", "model-server")} == {
        "agent": "unless-stopped", "model-server": "unless-stopped"}
    assert "VAULT_TOKEN" not in services["model-server"]["environment"]
    assert "VAULT_ADDR" not in services["model-server"]["environment"]


def test_the_bootstrap_runs_the_course_bootstrap_in_the_model_image():
    services = _config()["services"]
    assert services["bootstrap"]["image"] == services["model-server"]["image"] == deploy.IMAGE
    assert not deploy.IMAGE.endswith(":latest")  # the package's version: the tag pins what the lab deploys
    assert services["bootstrap"]["command"] == ["python", "-m", "glassbox.deploy", "bootstrap", "/run/glassbox",
                                                "/run/glassbox-key/api-key"]


# -- the stack on a real engine -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    client = require_engine()
    if not any(tag == deploy.LOCAL_OPENBAO_IMAGE for image in client.images.list() for tag in image.tags):
        reason = f"{deploy.LOCAL_OPENBAO_IMAGE} is missing: run .ci/docker-engine.sh"
        pytest.skip(reason)
    deploy.build(client, progress=False, echo=lambda line: None)   # the image compose runs (cached when built)
    stack = deploy.Stack(project=f"glassbox-test-{deploy.free_port()}", vault_image=deploy.LOCAL_OPENBAO_IMAGE,
                         key_refresh_seconds=2)
    try:
        stack.up()
    except Exception:
        stack.down()
        raise
    yield stack
    stack.down()
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.project}"],
                               capture_output=True, text=True).stdout.split()
    assert leftovers == [], "docker compose down left containers behind"


@pytest.fixture(scope="module")
def model_and_rows():
    model = artifacts.load(artifacts.build_course_model()).model
    X_test = train_test(load_credit(n_samples=4000, seed=0), test_size=0.25, seed=0)[1]
    return model, X_test[list(model.feature_names_in_)].iloc[:10]


_CA_FILES: dict = {}


def _ca_file(stack):
    """The stack's course CA in a file (callers verify the server's HTTPS with it), read once per stack."""
    if stack.project not in _CA_FILES:
        path = Path(tempfile.mkdtemp(prefix="glassbox-stack-ca-")) / "ca.pem"
        path.write_text(stack.ca_certificate())
        _CA_FILES[stack.project] = path
    return _CA_FILES[stack.project]


def _infer(stack, rows, key=None):
    body = {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.to_numpy().ravel().tolist()}], "outputs": [{"name": "predict_proba"}]}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{stack.url}/v2/models/credit/infer", json=body, headers=headers, timeout=10,
                      verify=ssl.create_default_context(cafile=str(_ca_file(stack))))


def test_stack_is_up_in_order_and_healthy(stack):
    services = stack.services()
    assert services["vault"]["health"] == "healthy"
    assert services["bootstrap"]["state"] == "exited" and services["bootstrap"]["exit_code"] == 0
    assert services["agent"]["state"] == "running" and services["agent"]["health"] == "healthy"
    assert services["model-server"]["state"] == "running" and services["model-server"]["health"] == "healthy"
    assert f"bound to {stack.subnet}" in stack.logs(50, "bootstrap")
    assert "authentication successful" in stack.logs(200, "agent")


def test_stack_serves_authenticated_callers_the_course_model(stack, model_and_rows):
    model, rows = model_and_rows
    assert _infer(stack, rows).status_code == 401
    assert _infer(stack, rows, key="wrong").status_code == 401
    answer = _infer(stack, rows, key=stack.api_key())
    assert answer.status_code == 200
    output = answer.json()["outputs"][0]
    np.testing.assert_allclose(np.array(output["data"]).reshape(output["shape"]), model.predict_proba(rows),
                               rtol=0, atol=1e-9)


def test_the_stack_serves_https_that_callers_verify_against_the_course_ca(stack, model_and_rows):
    assert stack.url.startswith("https://127.0.0.1:")
    assert _infer(stack, model_and_rows[1].iloc[:1], key=stack.api_key()).status_code == 200  # verified
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the system's CAs: no
        httpx.get(stack.url + "/v2/health/ready", timeout=10)
    context = ssl.create_default_context(cafile=str(_ca_file(stack)))
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        peer = tls.getpeercert()
    names = {value for _, value in peer["subjectAltName"]}
    assert {"model-server", "localhost", "127.0.0.1"} <= names
    assert dict(item[0] for item in peer["issuer"])["commonName"] == bootstrap.CA_COMMON_NAME
    code, listing = _exec(stack, "model-server", ["sh", "-c", "stat -c '%n %a %u' /run/glassbox/server.pem"])
    assert listing.split() == ["/run/glassbox/server.pem", "600", str(deploy.UID)]  # its key: the server's alone


def test_the_stack_setup_is_least_privilege(stack):
    admin = stack.admin_client()
    policy = admin.sys.read_policy(bootstrap.POLICY)["data"]["rules"]
    assert bootstrap.SERVICE_PATH in policy and "*" not in policy
    role = admin.auth.approle.read_role(bootstrap.ROLE)["data"]
    assert role["token_policies"] == [bootstrap.POLICY] and role["secret_id_num_uses"] == 1
    assert role["token_period"] == 15 * 60 and not role["token_max_ttl"]
    assert role["secret_id_bound_cidrs"] == role["token_bound_cidrs"] == [stack.subnet]
    with pytest.raises(hvac.exceptions.Forbidden):  # the old fixed dev token opens nothing here
        hvac.Client(url=stack.vault_addr, token="glassbox-dev-root").sys.read_policy(bootstrap.POLICY)


def _exec(stack, service, command):
    container = require_engine().containers.get(stack.services()[service]["id"])
    result = container.exec_run(command)
    return result.exit_code, result.output.decode(errors="replace")


def test_the_agent_took_secret_zero_and_the_key_lives_in_memory_for_the_server_alone(stack):
    code, listing = _exec(stack, "agent", ["ls", "-A", "/run/glassbox"])
    assert code == 0 and sorted(listing.split()) == ["agent.hcl", "role-id"]  # the wrapped secret ID: consumed
    code, output = _exec(stack, "model-server", ["sh", "-c", "stat -c '%a %u' /run/glassbox/api-key; "
                                                 "grep ' /run/glassbox ' /proc/mounts; env"])
    assert code == 0
    mode_line, mount_line, *env = output.splitlines()
    assert mode_line == f"600 {deploy.UID}"
    assert mount_line.split()[2] == "tmpfs" and mount_line.split()[3].startswith("ro,")
    assert not [line for line in env if line.startswith(("VAULT_", "BAO_"))]
    # no route to Vault: the server is not on the internal network, so the name does not even resolve
    probe = "import socket\ntry:\n socket.create_connection(('vault', 8200), 3); print('reached')\nexcept OSError as e: print('refused', type(e).__name__)"
    code, output = _exec(stack, "model-server", ["python", "-c", probe])
    assert output.startswith("refused"), output


def test_a_key_rotated_in_vault_is_taken_up_without_a_restart(stack, model_and_rows):
    rows = model_and_rows[1].iloc[:1]
    container = require_engine().containers.get(stack.services()["model-server"]["id"])
    started = container.attrs["State"]["StartedAt"]
    old = stack.api_key()
    bootstrap.rotate_api_key(stack.admin_client())
    new = stack.api_key()
    assert new != old
    assert _serves(stack, rows, new, old, timeout=40)  # the agent renders every 10 s, the server re-reads
    container.reload()
    assert container.attrs["State"]["StartedAt"] == started and container.attrs["RestartCount"] == 0  # no restart


def _serves(stack, rows, key, old=None, timeout=40.0) -> bool:
    """Wait until ``key`` is accepted (and ``old``, if given, refused)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _infer(stack, rows, key=key).status_code == 200 and (old is None or _infer(stack, rows, key=old).status_code == 401):
            return True
        time.sleep(0.5)
    return False


def test_a_restarted_agent_takes_a_fresh_delivery_and_then_serves_rotations_again(stack, model_and_rows):
    rows = model_and_rows[1].iloc[:1]
    key = stack.api_key()
    stack.restart("agent")  # healthy at once: the key it rendered stays in the tmpfs the server holds
    deadline = time.monotonic() + 20
    while "no known secret ID" not in stack.logs(20, "agent") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "no known secret ID" in stack.logs(20, "agent")  # its secret ID was single use, held in memory
    assert _infer(stack, rows, key=key).status_code == 200  # the server keeps serving the rendered key

    logins = stack.logs(1000, "agent").count("authentication successful")
    stack.deliver()        # docker compose run --rm bootstrap: a new wrapped secret ID from the orchestrator
    # No restart: the running agent takes it at its next retry (its backoff is capped at agent.MAX_BACKOFF).
    # A restart now could throw the delivery away, if the old process had already taken it.
    deadline = time.monotonic() + 60
    while stack.logs(1000, "agent").count("authentication successful") <= logins and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stack.logs(1000, "agent").count("authentication successful") > logins
    bootstrap.rotate_api_key(stack.admin_client())
    assert _serves(stack, rows, stack.api_key(), key, timeout=40), (  # rotations arrive again
        "the rotated key was not served within 40 s; what the agent and the server logged:\n"
        + stack.logs(60, "agent", "model-server"))


def test_the_server_restarted_alone_serves_at_once_from_the_rendered_key(stack, model_and_rows):
    rows = model_and_rows[1].iloc[:1]
    stack.compose("restart", "--timeout", "5", "model-server")
    deadline = time.monotonic() + 90
    while not is_ready(stack.url, _ca_file(stack)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _infer(stack, rows, key=stack.api_key()).status_code == 200
    assert _infer(stack, rows, key="wrong").status_code == 401
