"""The peers' manifests in deploy/k8s/peers (a KServe InferenceService, a Seldon Core v2 Model): valid, offline,
against the CRD schemas the projects publish (tests/data/crds), strictly as ``kubectl --validate=strict`` checks
them (an unknown field is an error), and saying what the course's own Deployment says: the same model, the same
protocol (V2), comparable resources and replicas."""

import copy
import hashlib
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from helpers import quantity

from glassbox import artifacts

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
CRDS = REPO / "tests" / "data" / "crds"
# KServe's InferenceServiceProtocol values (pkg/constants/constants.go). The published CRD types protocolVersion
# as a bare string, so the schema alone accepts any; the strict schema adds the Go type's enum.
KSERVE_PROTOCOLS = ["v1", "v2", "grpc-v1", "grpc-v2"]
PEERS = {
    "InferenceService": (K8S / "peers" / "kserve-inferenceservice.yaml",
                         CRDS / "kserve" / "serving.kserve.io_inferenceservices.yaml"),
    "Model": (K8S / "peers" / "seldon-model.yaml", CRDS / "seldon-core" / "mlops.seldon.io_models.yaml"),
}
_METADATA_KEYS = {"name", "namespace", "labels", "annotations"}
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")   # RFC 1035: KServe turns the name into hostnames


def _load(path):
    return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


def _strict(schema, enums):
    """A copy of an OpenAPI v3 schema that refuses unknown fields, allows null where ``nullable`` says so, and
    adds ``enums`` (property name -> allowed values) where the published schema leaves a bare string."""
    if isinstance(schema, list):
        return [_strict(item, enums) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value, enums) if key in ("items", "additionalProperties", "not", "allOf", "anyOf",
                                                    "oneOf") else value for key, value in schema.items()}
    if "properties" in schema:
        strict["properties"] = {name: _strict(sub, enums) for name, sub in schema["properties"].items()}
        for name, allowed in enums.items():
            if strict["properties"].get(name, {}).get("type") == "string" and "enum" not in strict["properties"][name]:
                strict["properties"][name] = {**strict["properties"][name], "enum": allowed}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            strict["additionalProperties"] = False
    if schema.get("nullable") and "type" in schema:
        strict["type"] = [schema["type"], "null"]
    return strict


class Crd:
    """One published CustomResourceDefinition: its group, kind, scope, and a strict validator per served version."""

    def __init__(self, path, enums=None):
        crd = _load(path)
        assert crd["kind"] == "CustomResourceDefinition", f"{path.name} holds a {crd['kind']}, not a CRD"
        self.group, self.kind, self.scope = crd["spec"]["group"], crd["spec"]["names"]["kind"], crd["spec"]["scope"]
        self.schemas = {version["name"]: version["schema"]["openAPIV3Schema"]
                        for version in crd["spec"]["versions"] if version["served"]}
        self._validators = {name: jsonschema.Draft4Validator(_strict(schema, enums or {}))
                            for name, schema in self.schemas.items()}

    def refusals(self, doc) -> list[str]:
        """Everything wrong with ``doc`` as a resource of this CRD, one ``path: reason`` line each (none: valid)."""
        group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
        if group != self.group or version not in self._validators:
            served = " or ".join(f"{self.group}/{name}" for name in sorted(self._validators))
            return [f"$.apiVersion: {doc.get('apiVersion')!r} is not {served}"]
        found = [f"{error.json_path}: {error.message}" for error in self._validators[version].iter_errors(doc)]
        if doc.get("kind") != self.kind:
            found.append(f"$.kind: {doc.get('kind')!r} is not {self.kind!r}")
        found += _metadata_refusals(doc.get("metadata"), namespaced=self.scope == "Namespaced")
        return sorted(found)


def _metadata_refusals(metadata, *, namespaced) -> list[str]:
    """What the API server would refuse in ``metadata`` (the CRD schemas leave it a bare object)."""
    if not isinstance(metadata, dict):
        return ["$.metadata: must be an object"]
    found = [f"$.metadata.{key}: not a field this manifest may set" for key in sorted(set(metadata) - _METADATA_KEYS)]
    if not _DNS_LABEL.fullmatch(str(metadata.get("name", ""))):
        found.append(f"$.metadata.name: {metadata.get('name')!r} is not a DNS label (a-z, 0-9, '-', 63 at most)")
    if namespaced and not _DNS_LABEL.fullmatch(str(metadata.get("namespace", ""))):
        found.append(f"$.metadata.namespace: {metadata.get('namespace')!r} is not a namespace name")
    for key in ("labels", "annotations"):
        values = metadata.get(key, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            found.append(f"$.metadata.{key}: must map names to strings")
    return found


@pytest.fixture(scope="module")
def crds():
    return {"InferenceService": Crd(PEERS["InferenceService"][1], {"protocolVersion": KSERVE_PROTOCOLS}),
            "Model": Crd(PEERS["Model"][1])}


@pytest.fixture(scope="module")
def manifests():
    return {kind: _load(path) for kind, (path, _) in PEERS.items()}


@pytest.fixture(scope="module")
def deployment():
    return _load(K8S / "deployment.yaml")


@pytest.fixture(scope="module")
def hpa():
    return _load(K8S / "hpa.yaml")


# -- the schemas -------------------------------------------------------------------------------------------

def test_the_stored_crds_are_the_published_ones(crds):
    assert (crds["InferenceService"].group, crds["InferenceService"].kind) == ("serving.kserve.io", "InferenceService")
    assert (crds["Model"].group, crds["Model"].kind) == ("mlops.seldon.io", "Model")
    assert set(crds["InferenceService"].schemas) == {"v1beta1"} and set(crds["Model"].schemas) == {"v1alpha1"}
    for schema in (crd.schemas[v] for crd in crds.values() for v in crd.schemas):
        jsonschema.Draft4Validator.check_schema(schema)
    provenance = (CRDS / "README.md").read_text()
    for _, path in PEERS.values():
        licence = (path.parent / "LICENSE").read_text()
        assert "Apache License" in licence and "Version 2.0" in licence, path.parent
        assert path.name in provenance, f"tests/data/crds/README.md should name {path.name}"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest in provenance, f"{path.name} (sha256 {digest}) is not the file README.md records"


@pytest.mark.parametrize("kind", sorted(PEERS))
def test_each_peer_manifest_is_valid_strictly(crds, manifests, kind):
    assert crds[kind].refusals(manifests[kind]) == []


def test_the_peers_are_not_in_the_main_kustomization():
    """They need KServe's or Seldon's operator: `kubectl apply -k deploy/k8s` must work without them."""
    resources = _load(K8S / "kustomization.yaml")["resources"]
    peers = {path.name for path, _ in PEERS.values()}
    assert not [name for name in resources if "peers" in name or Path(name).name in peers], resources


def test_the_published_kserve_schema_leaves_protocol_version_free(crds):
    """Why the strict schema adds KServe's enum: the CRD's own types protocolVersion as any string."""
    sklearn = crds["InferenceService"].schemas["v1beta1"]["properties"]["spec"]["properties"]["predictor"][
        "properties"]["sklearn"]["properties"]["protocolVersion"]
    assert sklearn == {"type": "string"}


def _set(doc, path, value):
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()
BROKEN = [  # (kind, field to change, new value, the path the refusal must name, a word it must contain)
    ("InferenceService", "spec.predictor.sklearn.storageUrl", "s3://glassbox-models/credit/1/",
     "$.spec.predictor.sklearn", "'storageUrl' was unexpected"),
    ("InferenceService", "spec.predictor.minReplicas", "two", "$.spec.predictor.minReplicas", "is not of type"),
    ("InferenceService", "spec.predictor", _DELETE, "$.spec", "'predictor' is a required property"),
    ("InferenceService", "spec.predictor.sklearn.protocolVersion", "v3", "$.spec.predictor.sklearn.protocolVersion",
     "is not one of"),
    ("InferenceService", "spec.predictor.sklearn.resources.limits.memory", "1 GB",
     "$.spec.predictor.sklearn.resources.limits.memory", "does not match"),
    ("InferenceService", "metadata.name", "Credit_Model", "$.metadata.name", "not a DNS label"),
    ("InferenceService", "kind", "InferenceServices", "$.kind", "is not 'InferenceService'"),
    ("InferenceService", "apiVersion", "serving.kserve.io/v1alpha1", "$.apiVersion", "v1beta1"),
    ("Model", "spec.requirement", ["sklearn"], "$.spec", "'requirement' was unexpected"),
    ("Model", "spec.requirements", "sklearn", "$.spec.requirements", "is not of type 'array'"),
    ("Model", "spec.storageUri", _DELETE, "$.spec", "'storageUri' is a required property"),
    ("Model", "spec.replicas", 2.5, "$.spec.replicas", "is not of type 'integer'"),
    ("Model", "metadata.namespace", None, "$.metadata.namespace", "not a namespace name"),
]


@pytest.mark.parametrize("kind, field, value, path, reason", BROKEN, ids=[f"{b[0]}:{b[1]}" for b in BROKEN])
def test_a_broken_copy_is_refused_naming_the_path(crds, manifests, kind, field, value, path, reason):
    broken = copy.deepcopy(manifests[kind])
    _set(broken, field, value)
    refusals = crds[kind].refusals(broken)
    assert any(line.startswith(f"{path}: ") and reason in line for line in refusals), refusals


# -- agreeing with the course's own Deployment -------------------------------------------------------------

def _course_container(deployment):
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_the_same_model_under_the_same_name_and_namespace(manifests, deployment):
    env = {e["name"]: e.get("value") for e in _course_container(deployment)["env"]}
    served = env.get("GLASSBOX_MODEL_NAME", artifacts.COURSE_MODEL_NAME)   # the course server's URL name
    assert served == artifacts.COURSE_MODEL_NAME
    for kind, doc in manifests.items():
        assert doc["metadata"]["name"] == served, f"{kind}: /v2/models/{served}/infer must name the course model"
        assert doc["metadata"]["namespace"] == deployment["metadata"]["namespace"], kind
    uris = {manifests["InferenceService"]["spec"]["predictor"]["sklearn"]["storageUri"],
            manifests["Model"]["spec"]["storageUri"]}
    assert len(uris) == 1, f"both peers should load the same converted artifact, not {sorted(uris)}"
    (uri,) = uris
    assert re.fullmatch(rf"(s3|gs|pvc)://[a-z0-9.-]+/{served}/\d+/", uri), \
        f"{uri}: a storage location that names the model and its version"
    assert manifests["Model"]["spec"]["requirements"] == ["sklearn"]


def test_the_same_protocol(manifests, deployment):
    container = _course_container(deployment)
    assert all(container[p]["httpGet"]["path"].startswith("/v2/") for p in ("livenessProbe", "readinessProbe"))
    assert manifests["InferenceService"]["spec"]["predictor"]["sklearn"]["protocolVersion"] == "v2"
    # Seldon Core v2 speaks only V2: its Model has no protocol to choose
    assert not {"protocol", "protocolVersion"} & set(manifests["Model"]["spec"])


def test_comparable_resources_and_replicas(manifests, deployment, hpa):
    course = _course_container(deployment)["resources"]
    kserve = manifests["InferenceService"]["spec"]["predictor"]
    for level in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            ours, theirs = quantity(course[level][resource]), quantity(kserve["sklearn"]["resources"][level][resource])
            assert ours / 2 <= theirs <= ours * 2, f"KServe's {level}.{resource}: {theirs}, the course's: {ours}"
    assert (kserve["minReplicas"], kserve["maxReplicas"]) == (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
    seldon = manifests["Model"]["spec"]
    # the model alone, in a server shared with other models: more than nothing, less than the whole course server
    assert 0 < quantity(seldon["memory"]) < quantity(course["requests"]["memory"])
    assert seldon["replicas"] == deployment["spec"]["replicas"]
