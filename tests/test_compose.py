"""docker-compose.yml: what it declares (read by the Compose CLI itself, no engine needed), and the stack brought
up for real on a Docker engine: Vault healthy, the bootstrap done, the server healthy and authenticated,
a key rotated in the stack's Vault taken up without a restart, and nothing left behind by `down`.

The stack uses the local OpenBao image that `.ci/docker-engine.sh` builds (no image is pulled in tests).
"""

import json
import subprocess
import time

import httpx
import numpy as np
import pytest

from glassbox import artifacts, deploy
from glassbox.data import load_credit, train_test
from glassbox.vault import bootstrap, server as vault_server

from helpers import require_engine


def _config(**env) -> dict:
    """`docker compose config` as JSON: the file as Compose itself reads it, variables substituted."""
    stack = deploy.Stack(project="glassbox-config-test", directory=deploy.project_dir(),
                         vault_image=env.pop("vault_image", deploy.DEFAULT_VAULT_IMAGE), vault_port=8300, port=8090)
    return json.loads(stack.compose("config", "--format", "json").stdout)


# -- the file, as Compose reads it (no engine needed) -------------------------------------------------------

def test_compose_declares_the_three_services_in_order():
    services = _config()["services"]
    assert set(services) == {"vault", "bootstrap", "model-server"}
    assert services["bootstrap"]["depends_on"]["vault"]["condition"] == "service_healthy"
    assert {name: rule["condition"] for name, rule in services["model-server"]["depends_on"].items()} == {
        "vault": "service_healthy", "bootstrap": "service_completed_successfully"}
    assert "vault" in " ".join(services["vault"]["healthcheck"]["test"])
    assert "/v2/health/ready" in " ".join(services["model-server"]["healthcheck"]["test"])


def test_compose_defaults_to_hashicorp_vault_and_switches_with_vault_image(monkeypatch):
    monkeypatch.delenv("VAULT_IMAGE", raising=False)
    text = (deploy.project_dir() / "docker-compose.yml").read_text()
    assert f"${{VAULT_IMAGE:-{deploy.DEFAULT_VAULT_IMAGE}}}" in text
    assert deploy.DEFAULT_VAULT_IMAGE == vault_server.DEFAULT_IMAGE  # one Vault version across the course
    assert _config(vault_image="glassbox/openbao:2.7.2")["services"]["vault"]["image"] == "glassbox/openbao:2.7.2"


def test_compose_publishes_on_loopback_only_and_hardens_the_server():
    services = _config()["services"]
    for name in ("vault", "model-server"):
        assert [port["host_ip"] for port in services[name]["ports"]] == ["127.0.0.1"], name
    assert "ports" not in services["bootstrap"]
    server = services["model-server"]
    assert server["read_only"] is True and server["cap_drop"] == ["ALL"]
    assert any("no-new-privileges" in option for option in server["security_opt"])
    # the server gets no token: only where Vault is, and the file its wrapped secret ID arrives in
    assert "VAULT_TOKEN" not in server["environment"]
    assert server["environment"]["GLASSBOX_VAULT_WRAPPED_SECRET_ID_FILE"].startswith("/run/glassbox/")
    assert any(volume["target"] == "/run/glassbox" and volume.get("read_only") for volume in server["volumes"])


def test_the_bootstrap_runs_the_course_bootstrap_in_the_model_image():
    services = _config()["services"]
    assert services["bootstrap"]["image"] == services["model-server"]["image"] == deploy.IMAGE
    assert not deploy.IMAGE.endswith(":latest")  # the package's version: the tag pins what the lab deploys
    assert services["bootstrap"]["command"][:4] == ["python", "-m", "glassbox.deploy", "bootstrap"]


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


def _infer(stack, rows, key=None):
    body = {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.to_numpy().ravel().tolist()}], "outputs": [{"name": "predict_proba"}]}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{stack.url}/v2/models/credit/infer", json=body, headers=headers, timeout=10)


def test_stack_is_up_in_order_and_healthy(stack):
    services = stack.services()
    assert services["vault"]["health"] == "healthy"
    assert services["bootstrap"]["state"] == "exited" and services["bootstrap"]["exit_code"] == 0
    assert services["model-server"]["state"] == "running" and services["model-server"]["health"] == "healthy"
    assert "bootstrap: policy glassbox-model-service" in stack.logs()


def test_stack_serves_authenticated_callers_the_course_model(stack, model_and_rows):
    model, rows = model_and_rows
    assert _infer(stack, rows).status_code == 401
    assert _infer(stack, rows, key="wrong").status_code == 401
    answer = _infer(stack, rows, key=stack.api_key())
    assert answer.status_code == 200
    output = answer.json()["outputs"][0]
    np.testing.assert_allclose(np.array(output["data"]).reshape(output["shape"]), model.predict_proba(rows),
                               rtol=0, atol=1e-9)


def test_the_stack_setup_is_least_privilege(stack):
    admin = stack.admin_client()
    policy = admin.sys.read_policy(bootstrap.POLICY)["data"]["rules"]
    assert bootstrap.SERVICE_PATH in policy and "*" not in policy
    role = admin.auth.approle.read_role(bootstrap.ROLE)["data"]
    assert role["token_policies"] == [bootstrap.POLICY] and role["secret_id_num_uses"] == 1


def test_a_key_rotated_in_vault_is_taken_up_without_a_restart(stack, model_and_rows):
    rows = model_and_rows[1].iloc[:1]
    container = require_engine().containers.get(stack.services()["model-server"]["id"])
    started = container.attrs["State"]["StartedAt"]
    old = stack.api_key()
    bootstrap.rotate_api_key(stack.admin_client())
    new = stack.api_key()
    assert new != old
    deadline = time.monotonic() + 20  # refresh period 2 s in this stack
    while _infer(stack, rows, key=old).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _infer(stack, rows, key=old).status_code == 401
    assert _infer(stack, rows, key=new).status_code == 200
    container.reload()
    assert container.attrs["State"]["StartedAt"] == started and container.attrs["RestartCount"] == 0  # no restart
