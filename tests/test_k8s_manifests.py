"""The scale-out manifests in deploy/k8s: valid against the Kubernetes JSON schemas (offline, strict: unknown
fields are errors), and meaning what the lab says they mean — probes on the protocol's health endpoints and the
container's port, an autoscaler aimed at the Deployment, a Service that selects the pods, the image's non-root
user, Vault's Agent injector fetching the service's own secret, and no secret value anywhere."""

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helpers import quantity

from glassbox.vault import bootstrap

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
# The oldest Kubernetes release still in wide use that the manifests must work on, and the newest schemas.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
SECRETISH = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def _documents():
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCS = _documents()
RESOURCES = [(name, doc) for name, doc in DOCS if doc["kind"] != "Kustomization"]


def _one(kind):
    found = [doc for _, doc in RESOURCES if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def deployment():
    return _one("Deployment")


@pytest.fixture(scope="module")
def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _port(container, reference):
    """A probe's or Service's port (a name or a number) resolved to the container port it means."""
    for port in container["ports"]:
        if reference in (port.get("name"), port["containerPort"]):
            return port["containerPort"]
    pytest.fail(f"port {reference!r} names no port of the container")


def _dockerfile():
    text = (REPO / "Dockerfile").read_text()
    uid = re.search(r"--uid\s+(\d+)", text)
    user = re.search(r"^USER\s+(\d+)(?::(\d+))?", text, re.M)
    expose = re.search(r"^EXPOSE\s+(\d+)", text, re.M)
    assert uid and user and expose, "the Dockerfile should create a user with a fixed UID, switch to it, EXPOSE a port"
    return int(uid.group(1)), int(user.group(1)), int(expose.group(1))


# -- schemas -----------------------------------------------------------------------------------------------

def test_the_expected_resources_are_there():
    kinds = sorted(doc["kind"] for _, doc in RESOURCES)
    for kind in ("Deployment", "HorizontalPodAutoscaler", "Service", "ServiceAccount"):
        assert kind in kinds


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name, doc", RESOURCES, ids=[f"{n}:{d['kind']}" for n, d in RESOURCES])
def test_each_manifest_validates_against_the_kubernetes_schema(name, doc, version):
    # strict: a misspelled or misplaced field is an error, not silently ignored as kubectl would
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_is_not_vacuous(deployment):
    """A typo in a field name and a wrong type are both caught (the schemas really are applied)."""
    import copy
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/", "port": 80}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_and_sets_the_namespace():
    kustomization = next(doc for _, doc in DOCS if doc["kind"] == "Kustomization")
    listed = set(kustomization["resources"])
    on_disk = {name for name, _ in RESOURCES}
    assert listed == on_disk
    namespaces = {doc["metadata"].get("namespace", doc["metadata"]["name"]) for _, doc in RESOURCES}
    assert namespaces == {kustomization["namespace"]}


# -- meaning ---------------------------------------------------------------------------------------------

def test_probes_use_the_protocol_health_endpoints_on_the_container_port(container):
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    served = {p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            assert _port(container, container[probe]["httpGet"]["port"]) in served
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    # the server listens where the probes knock
    assert int(env["GLASSBOX_PORT"]) == _port(container, container["readinessProbe"]["httpGet"]["port"])


def test_container_port_and_user_match_the_image(deployment, container):
    uid, user, exposed = _dockerfile()
    assert uid == user, "the Dockerfile's USER should be the user it creates"
    assert exposed in {p["containerPort"] for p in container["ports"]}
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == uid
    own = container["securityContext"]
    assert own["allowPrivilegeEscalation"] is False
    assert own["readOnlyRootFilesystem"] is True
    assert own["capabilities"]["drop"] == ["ALL"]


def test_the_image_is_pinned_by_the_packages_version_not_latest(container):
    from glassbox import __version__, deploy

    image = container["image"]
    name, _, digest = image.partition("@")
    assert not name.endswith(":latest") and ":" in name.rsplit("/", 1)[-1], image
    assert name.rsplit("/", 1)[-1] == deploy.IMAGE.rsplit("/", 1)[-1] == f"model-server:{__version__}"
    assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image


def test_resources_are_requested_and_limited(container):
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    for resource in ("cpu", "memory"):
        assert resource in requests and resource in limits
        assert quantity(requests[resource]) <= quantity(limits[resource])
    # the server (model + shap) needs a few hundred MB; the lab keeps it under 1.5 GB
    assert 256 * 2 ** 20 <= quantity(requests["memory"]) and quantity(limits["memory"]) <= 1.5 * 2 ** 30


def test_the_deployment_selects_its_own_pods_and_rolls_without_downtime(deployment):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["replicas"] >= 2
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1


def test_the_hpa_targets_the_deployment(deployment):
    hpa = _one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"], "Deployment", deployment["metadata"]["name"])
    assert hpa["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # CPU utilisation is measured against the request: the container must request CPU
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu and 0 < cpu[0]["resource"]["target"]["averageUtilization"] <= 100


def test_every_container_the_hpa_averages_over_requests_cpu(deployment, container):
    """A Resource CPU metric needs a CPU request on every container of the pod, the injected sidecar included
    (else the HPA cannot compute utilisation); the sidecar's is set explicitly, not left to the injector."""
    hpa = _one("HorizontalPodAutoscaler")
    metric = next(m for m in hpa["spec"]["metrics"] if m["type"] in ("Resource", "ContainerResource"))
    assert "cpu" in container["resources"]["requests"]
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    if metric["type"] == "Resource" and notes.get("vault.hashicorp.com/agent-inject") == "true":
        assert re.fullmatch(r"\d+m?", notes["vault.hashicorp.com/agent-requests-cpu"])


def test_the_service_selects_the_pods_and_reaches_the_container_port(deployment, container):
    service = _one("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] and service["spec"]["selector"].items() <= labels.items()
    for port in service["spec"]["ports"]:
        assert _port(container, port["targetPort"]) == int(
            next(e["value"] for e in container["env"] if e["name"] == "GLASSBOX_PORT"))
    assert service["metadata"]["namespace"] == deployment["metadata"]["namespace"]


def test_the_disruption_budget_covers_the_pods(deployment):
    pdb = _one("PodDisruptionBudget")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_vault_agent_injects_the_services_own_secret_under_its_service_account(deployment, container):
    account = _one("ServiceAccount")
    pod = deployment["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    notes = pod["metadata"]["annotations"]
    assert notes["vault.hashicorp.com/agent-inject"] == "true"
    assert notes["vault.hashicorp.com/role"] == bootstrap.ROLE
    injected = {k[len("vault.hashicorp.com/agent-inject-secret-"):]: v
                for k, v in notes.items() if k.startswith("vault.hashicorp.com/agent-inject-secret-")}
    assert injected == {"api-key": bootstrap.Setup().api_path, "server.pem": bootstrap.Setup().issue_path}
    template = notes["vault.hashicorp.com/agent-inject-template-api-key"]
    assert bootstrap.Setup().api_path in template and f".Data.data.{bootstrap.API_KEY_FIELD}" in template
    certificate = notes["vault.hashicorp.com/agent-inject-template-server.pem"]
    assert f'pkiCert "{bootstrap.Setup().issue_path}"' in certificate
    assert all(part in certificate for part in ("{{ .Cert }}", "{{ .CA }}", "{{ .Key }}"))
    service = _one("Service")["metadata"]
    name = f"{service['name']}.{service['namespace']}.svc"   # what callers in the cluster connect to
    assert f"common_name={name}" in certificate and name in bootstrap.SERVER_NAMES
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GLASSBOX_API_KEY_FILE"] == "/vault/secrets/api-key"  # where the agent renders "api-key"
    assert env["GLASSBOX_TLS_FILE"] == "/vault/secrets/server.pem"   # HTTPS is on, with the renewed certificate
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", probe
    assert int(notes["vault.hashicorp.com/agent-run-as-user"]) == _dockerfile()[0]


def test_no_secret_value_in_any_manifest():
    for name, doc in RESOURCES:
        assert doc["kind"] != "Secret", f"{name}: secrets come from Vault, not from a Secret in the repository"
    for _, doc in RESOURCES:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                if SECRETISH.search(variable["name"]) and "value" in variable:
                    # only a *path* to a file that Vault's agent writes may stand here, never the value
                    assert variable["name"].endswith("_FILE") and variable["value"].startswith("/vault/secrets/"), \
                        variable["name"]
    text = "\n".join(path.read_text() for path in sorted(K8S.rglob("*")) if path.is_file())   # peers/ too
    assert not re.search(r"\b(hv[sbr]|s|b|r)\.[A-Za-z0-9]{24,}", text)           # Vault/OpenBao tokens
    assert not re.search(r"Bearer\s+[A-Za-z0-9_\-.=]{16,}", text)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)  # role/secret IDs
