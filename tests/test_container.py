"""The model server's image on a real Docker engine: built from the course's Dockerfile, run as a non-root user
with its API key rendered by a Vault Agent sidecar container (secret zero delivered by the orchestrator) into
a tmpfs volume, healthy, serving authenticated requests that match the model in this process, and with no
secret in its image, history or configuration.

These tests need a Docker engine (`.ci/docker-engine.sh` starts one and makes the base images). Where none
answers they skip and say why; in CI (CI=true) they start one with that script first.
"""

import re
from pathlib import Path

import httpx
import hvac
import numpy as np
import pytest

from glassbox import __version__, artifacts, deploy
from glassbox.data import load_credit, train_test
from glassbox.vault import agent, bootstrap

from helpers import eventually, leaks_in_text, require_engine

REPO = Path(__file__).resolve().parents[1]
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)


@pytest.fixture(scope="module")
def client():
    return require_engine()


@pytest.fixture(scope="module")
def image(client):
    """The course image, built from the repository (the engine's cache makes repeated builds quick)."""
    return deploy.build(client, progress=False, echo=lambda line: None)


@pytest.fixture(scope="module")
def admin(vault_client):
    bootstrap.ensure(vault_client)
    return vault_client


@pytest.fixture(scope="module")
def sidecar(client, admin):
    """The agent, started the way lab 08 starts it: the orchestrator's delivery, a tmpfs key volume."""
    orchestrator = hvac.Client(url=admin.url, token=bootstrap.orchestrator_token(admin))
    delivery = {agent.ROLE_ID_FILE: bootstrap.role_id(orchestrator),
                agent.SECRET_ID_FILE: bootstrap.wrapped_secret_id(orchestrator)}
    key_volume = client.volumes.create(driver="local", driver_opts=deploy.TMPFS_KEY_VOLUME,
                                       labels={"org.glassbox.test": "test_container"})
    running_agent = deploy.run_agent(client, admin.url, delivery, key_volume, render_interval="2s")
    yield running_agent, key_volume, delivery
    running_agent.stop()
    key_volume.remove(force=True)


@pytest.fixture(scope="module")
def running(client, image, sidecar):
    """The server's container: host network, hardened, only the key volume mounted."""
    server = deploy.run_container(client, {"GLASSBOX_KEY_REFRESH_SECONDS": "1"}, key_volume=sidecar[1],
                                  labels={"org.glassbox.test": "test_container"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model_and_rows():
    model = artifacts.load(artifacts.build_course_model()).model
    X_test = train_test(load_credit(n_samples=4000, seed=0), test_size=0.25, seed=0)[1]
    return model, X_test[list(model.feature_names_in_)].iloc[:20]


# -- the image ----------------------------------------------------------------------------------------------

def test_a_second_build_comes_from_the_cache_and_shows_its_steps(client, image):
    first = deploy.build(client, progress=False, echo=lambda line: None)  # the package may have changed since
    lines = []
    again = deploy.build(client, progress=False, echo=lines.append)
    assert again.id == first.id
    assert {deploy.IMAGE, f"glassbox/model-server:{__version__}"} <= set(again.tags)  # deploy/k8s names the version
    steps = [line for line in lines if line.startswith("Step")]
    assert steps and steps[-1].split(":")[0].replace(" ", "") == f"Step{len(steps)}/{len(steps)}"
    assert lines.count("         (cached)") >= len(steps) - 3  # only ARG and FROM lines have nothing to cache


def test_image_runs_as_a_fixed_non_root_user(client, image):
    assert image.attrs["Config"]["User"] == f"{deploy.UID}:{deploy.UID}"
    output = client.containers.run(image.id, ["sh", "-c", "id -u; id -g; touch /opt/venv/x 2>&1 || echo refused"],
                                   remove=True).decode()
    uid, gid, *rest = output.split("\n")
    assert (uid, gid) == (str(deploy.UID), str(deploy.UID))
    assert "refused" in output  # the server's user cannot change its own code


def test_image_ships_a_venv_without_pip_sources_or_compilers(client, image):
    assert "/opt/venv/bin" in deploy.image_report(image).env["PATH"].split(":")
    output = client.containers.run(
        image.id, ["sh", "-c", "python -c 'import sys; print(sys.prefix)'; ls -d /opt/venv/bin/pip /src 2>/dev/null; "
                               "command -v gcc cc || echo no-compiler"], remove=True).decode().split()
    assert output == ["/opt/venv", "no-compiler"]  # the build stage's pip, sources and caches stayed behind


def test_image_health_check_asks_the_ready_endpoint(image):
    """glassbox.serving.health asks /v2/health/ready (over HTTPS when GLASSBOX_TLS_FILE is set): with no
    server listening it must fail, not pass."""
    assert image.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "python", "-m", "glassbox.serving.health"]
    import docker.errors

    with pytest.raises(docker.errors.ContainerError) as failed:
        require_engine().containers.run(image.id, ["python", "-m", "glassbox.serving.health"], remove=True)
    assert failed.value.exit_status == 1


def test_image_holds_no_secret_in_env_history_or_labels(image):
    report = deploy.image_report(image)
    assert not [name for name, value in report.env.items() if SECRET_NAME.search(name) and value]
    history = "\n".join(report.history)
    assert leaks_in_text(history) == []
    assert not [pair for pair in re.findall(r"(\w+)=\S", history) if SECRET_NAME.search(pair)]
    labels = image.attrs["Config"].get("Labels") or {}
    assert leaks_in_text(str(labels)) == []


def test_build_context_leaves_state_and_the_venv_out():
    patterns = [line for line in (deploy.project_dir() / ".dockerignore").read_text().splitlines()
                if line and not line.startswith("#")]
    assert patterns[0] == "*"      # everything stays out unless named
    allowed = {p.lstrip("!") for p in patterns if p.startswith("!")}
    # the model server's files, and the course image's (binder/Dockerfile): the labs, what they read, its entrypoint
    assert allowed == {"requirements.lock", "pyproject.toml", "README.md", "support/",
                       "Dockerfile", "docker-compose.yml", "labs/", "deploy/", "benchmarks/", "binder/start"}
    assert {"**/node_modules", "**/*.egg-info"} <= set(patterns)


# -- the running container ----------------------------------------------------------------------------------

def test_container_serves_only_callers_with_the_key(running, admin, model_and_rows):
    model, rows = model_and_rows
    url = f"{running.url}/v2/models/credit/infer"
    body = {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.to_numpy().ravel().tolist()}], "outputs": [{"name": "predict_proba"}]}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer not-the-key"}).status_code == 401
    answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {bootstrap.read_api_key(admin)}"})
    assert answer.status_code == 200
    output = answer.json()["outputs"][0]
    proba = np.array(output["data"]).reshape(output["shape"])
    np.testing.assert_allclose(proba, model.predict_proba(rows), rtol=0, atol=1e-9)


def test_container_process_is_uid_10001_and_docker_calls_it_healthy(running):
    assert {row[0] for row in running.container.top()["Processes"]} == {str(deploy.UID)}
    assert running.wait_healthy(timeout=90) == "healthy"


def test_container_is_hardened(running):
    host_config = running.container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host_config["SecurityOpt"]
    assert host_config["NetworkMode"] == "host"
    assert running.container.attrs["Config"]["Env"].count("GLASSBOX_HOST=127.0.0.1") == 1


def test_the_server_container_holds_no_credential_and_the_agent_spent_its_own(running, sidecar, admin):
    settings = dict(item.split("=", 1) for item in running.container.attrs["Config"]["Env"])
    assert not [name for name in settings if name.startswith(("VAULT_", "BAO_", "GLASSBOX_VAULT"))]
    assert settings["GLASSBOX_API_KEY_FILE"] == "/run/glassbox/api-key"
    assert admin.token not in str(running.container.attrs)
    assert bootstrap.read_api_key(admin) not in str(running.container.attrs)
    mounts = [(m["Type"], m["Destination"], m["RW"]) for m in running.container.attrs["Mounts"]]
    assert mounts == [("volume", "/run/glassbox", False)]  # the key volume, read-only; nothing else
    code, output = running.container.exec_run(["sh", "-c", "grep ' /run/glassbox ' /proc/mounts; "
                                                           "stat -c '%a %u' /run/glassbox/api-key"])
    mount_line, mode_line = output.decode().splitlines()
    assert mount_line.split()[2] == "tmpfs" and mode_line == f"600 {deploy.UID}"  # in memory, the server's only
    running_agent, _, delivery = sidecar
    assert running_agent.handoff_files() == ["agent.hcl", "role-id"]  # the wrapped secret ID: read and deleted
    lookup = httpx.post(f"{admin.url}/v1/sys/wrapping/lookup", json={"token": delivery[agent.SECRET_ID_FILE]})
    assert lookup.status_code == 400  # unwrapped by the agent: worthless now
    assert bootstrap.read_api_key(admin) not in running.logs() + running_agent.logs()


def test_the_agent_sidecar_is_hardened_and_logged_in_once(sidecar):
    running_agent = sidecar[0]
    running_agent.container.reload()
    host_config = running_agent.container.attrs["HostConfig"]
    assert running_agent.container.attrs["Config"]["User"] == f"{deploy.UID}:{deploy.UID}"
    assert host_config["ReadonlyRootfs"] is True and host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host_config["SecurityOpt"] and host_config["NetworkMode"] == "host"
    assert running_agent.count("authentication successful") == 1


def test_a_rotation_reaches_the_container_server_through_the_agent(running, admin, model_and_rows):
    rows = model_and_rows[1].iloc[:1]
    url = f"{running.url}/v2/models/credit/infer"
    body = {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.to_numpy().ravel().tolist()}]}
    old = bootstrap.read_api_key(admin)
    bootstrap.rotate_api_key(admin)
    new = bootstrap.read_api_key(admin)
    assert eventually(lambda: httpx.post(url, json=body, headers={"Authorization": f"Bearer {new}"}).status_code == 200
                      and httpx.post(url, json=body, headers={"Authorization": f"Bearer {old}"}).status_code == 401,
                      timeout=20)


def test_the_image_is_run_by_its_id_and_tagged_with_the_version_not_latest(client, image):
    assert deploy.IMAGE in image.tags and not deploy.IMAGE.endswith(":latest")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.id)
    assert client.images.get(deploy.IMAGE).id == image.id
    assert not image.attrs.get("RepoDigests")  # never pushed: a local build has an ID but no registry digest


def test_the_packages_weigh_what_lab_08_says_and_none_rides_along_on_an_import(running):
    """The lab's figures (its no-engine message and its text) against a measurement in the running container;
    docker and psutil, which lab 08 shows riding along on an eager import, are gone from the image."""
    import json as json_module

    sizes = deploy.package_sizes(running.container)
    notebook = json_module.loads((REPO / "solutions" / "08-containers.ipynb").read_text())
    text = "".join("".join(cell["source"]) for cell in notebook["cells"])
    text = re.sub(r'"\s*\n\s*f?"', "", text)  # string literals continued on the next line, joined
    stated = {name: float(value) for name, value in
              re.findall(r"(llvmlite|SciPy|NumPy|pandas|scikit-learn) (\d+(?:\.\d)?)", text)}
    for name, value in stated.items():
        assert abs(sizes[name.lower()] - value) <= max(0.15 * value, 0.2), (name, value, sizes[name.lower()])
    assert not {"docker", "psutil"} & set(sizes), sorted(sizes)
    assert re.search(rf"{len(sizes)} packages, about {round(sum(sizes.values()), -1):.0f} MB", text)
    assert max(sizes, key=sizes.get) == "llvmlite"
    # the server's modules and the bootstrap's import neither
    probe = ("import sys, glassbox.serving.app, glassbox.serving.auth; print(sorted({'docker', 'psutil'} & set(sys.modules)));"
             "import glassbox.vault.bootstrap, glassbox.deploy; print(sorted({'docker', 'psutil'} & set(sys.modules)))")
    output = running.container.exec_run(["python", "-c", probe]).output.decode().split("\n")
    assert output[:2] == ["[]", "[]"], output


def test_container_without_credentials_refuses_to_start(client, image):
    container = client.containers.run(image.id, detach=True, network_mode="host",
                                      environment={"GLASSBOX_HOST": "127.0.0.1",
                                                   "GLASSBOX_PORT": str(deploy.free_port())})
    try:
        assert container.wait(timeout=120)["StatusCode"] != 0
        log = container.logs().decode()
        assert "API key" in log and "Traceback" not in log
    finally:
        container.remove(force=True)
