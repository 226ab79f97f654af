"""deploy/hub/z2jh-values.yaml, the workshop Hub on Kubernetes, offline (no cluster runs here): merged onto the
Zero to JupyterHub chart's defaults as Helm merges them, it validates against the chart's own schema (4.4.0,
tests/data/z2jh/), a misspelt key or a wrong type is refused, and the values mean what the one-machine Hub
means: the course image and its start command, limits, a volume per learner, approval, culling, learners' pods
closed to each other, and the class-view service with the scopes JupyterHub itself accepts."""

import copy
import os
import json
import socket
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest
import yaml
from helpers import leaks_in_text, quantity
from jupyterhub.roles import _validate_role_name, get_default_roles
from jupyterhub.scopes import ScopeNotFound, _check_scopes_exist
from jupyterhub.services.service import Service

from glassbox import __version__

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "z2jh"
VALUES_FILE = REPO / "deploy" / "hub" / "z2jh-values.yaml"
SCHEMA = json.loads((DATA / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((DATA / "values.yaml").read_text())
VALUES = yaml.safe_load(VALUES_FILE.read_text())
SERVICE = "class-view"


def coalesce(defaults, overrides):
    """The values Helm renders with: maps merge key by key, anything else replaces, ``null`` removes the key."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def refusals(values) -> list[str]:
    """What the chart's schema says against these values, once merged onto the chart's defaults."""
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(coalesce(DEFAULTS, values))]


MERGED = coalesce(DEFAULTS, VALUES)
HUB, SINGLEUSER = MERGED["hub"], MERGED["singleuser"]


def _schema_at(path: str) -> dict:
    node = SCHEMA
    for key in path.split("."):
        node = node["properties"][key]
    return node


def _with(path: str, value) -> dict:
    values = copy.deepcopy(VALUES)
    *parents, last = path.split(".")
    node = values
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return values


# -- the schema ----------------------------------------------------------------------------------------------

def test_the_chart_defaults_validate_as_the_chart_checks_them():
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert refusals({}) == []


def test_the_values_validate_against_the_chart_schema():
    assert refusals(VALUES) == []


# A misspelt key where the schema forbids unknown keys, and wrong types or values where it names them.
TYPOS = [
    ("singleuser.memory", "limt", "2G"),
    ("singleuser.cpu", "limits", 1),
    ("singleuser.storage", "homeMountPth", "/home/learner/work"),
    ("singleuser.networkPolicy", "enable", True),
    ("singleuser.networkPolicy.egressAllowRules", "privateIP", False),
    ("cull", "timout", 3600),
    ("hub.image", "tags", "0.1.0"),
]
WRONG = [
    ("singleuser.cpu.limit", "1", "'1' is not of type 'number', 'null'"),
    ("singleuser.memory.limit", ["2G"], "is not of type 'number', 'string', 'null'"),
    ("cull.enabled", "yes", "'yes' is not of type 'boolean'"),
    ("cull.timeout", "1h", "'1h' is not of type 'integer', 'null'"),
    ("singleuser.networkPolicy.enabled", "true", "'true' is not of type 'boolean'"),
    ("singleuser.networkPolicy.interNamespaceAccessLabels", "allow", "'allow' is not one of"),
    ("singleuser.storage.type", "pvc", "'pvc' is not one of"),
    ("singleuser.cmd", {"run": "start.sh"}, "is not of type 'array', 'string', 'null'"),
]


@pytest.mark.parametrize("parent, key, value", TYPOS, ids=[f"{p}.{k}" for p, k, _ in TYPOS])
def test_a_misspelt_key_is_refused(parent, key, value):
    assert _schema_at(parent)["additionalProperties"] is False, f"the schema admits any key under {parent}"
    found = refusals(_with(f"{parent}.{key}", value))
    assert found == [f"{parent}: Additional properties are not allowed ('{key}' was unexpected)"]


def test_a_config_section_that_is_no_class_name_is_refused():
    """hub.config passes traitlets sections through: a lower-case one (a misplaced key) is refused."""
    found = refusals(_with("hub.config.nativeAuthenticator", {"open_signup": True}))
    assert found and all(line.startswith("hub.config:") and "nativeAuthenticator" in line for line in found)


@pytest.mark.parametrize("path, value, message", WRONG, ids=[p for p, _, _ in WRONG])
def test_a_wrong_type_or_value_is_refused(path, value, message):
    found = refusals(_with(path, value))
    assert len(found) == 1 and found[0].startswith(f"{path}: ") and message in found[0], found


def _unknown_service_fields(spec: dict) -> set:
    """Fields JupyterHub refuses at start-up ("No such service field"): the chart's schema lets any through."""
    return set(spec) - set(Service.class_traits(input=True))


def test_a_misspelt_service_field_passes_the_schema_but_not_jupyterhub():
    values = _with("hub.services.class-view.oauth_no_confrim", True)
    assert refusals(values) == []
    assert _unknown_service_fields(values["hub"]["services"][SERVICE]) == {"oauth_no_confrim"}


# -- what the values mean --------------------------------------------------------------------------------------

def _dockerfile_instruction(name: str) -> str:
    """The argument of the course image's last NAME instruction (binder/Dockerfile)."""
    lines = (REPO / "binder" / "Dockerfile").read_text().splitlines()
    return [line.split(None, 1)[1] for line in lines if line.startswith(f"{name} ")][-1]


def test_the_singleuser_image_is_the_course_image_placeholder():
    for image in (SINGLEUSER["image"], HUB["image"]):
        assert "REPLACE" in image["name"] and image["tag"] == __version__
    assert SINGLEUSER["image"]["name"].endswith("/glassbox-labs")
    assert "--uid 1000" in (REPO / "binder" / "Dockerfile").read_text() and SINGLEUSER["uid"] == 1000 == SINGLEUSER["fsGid"]
    assert _dockerfile_instruction("USER") == "learner"


def test_the_command_is_the_one_machine_hubs_and_the_image_entrypoint_fills_the_volume(tmp_path):
    """The pod runs jupyterhub-singleuser, as the one-machine Hub and Binder do, after the image's entrypoint
    (binder/start), which syncs the labs into its working folder, where the learner's volume is mounted. The script
    runs here as the image runs it, with its Vault's port taken, so that it also shows it hands over without one."""
    assert SINGLEUSER["cmd"] == "jupyterhub-singleuser" == json.loads(_dockerfile_instruction("CMD"))[0]
    (entrypoint,) = json.loads(_dockerfile_instruction("ENTRYPOINT"))
    assert entrypoint == "/opt/course/binder/start" and _dockerfile_instruction("COPY") == ". /opt/course"
    assert "GLASSBOX_COURSE=/opt/course" in (REPO / "binder" / "Dockerfile").read_text()
    assert Path(_dockerfile_instruction("WORKDIR")) == Path(SINGLEUSER["storage"]["homeMountPath"])
    volume = tmp_path / "work"
    volume.mkdir()
    environment = {**os.environ, "GLASSBOX_COURSE": str(REPO), "GLASSBOX_HOME": str(tmp_path / "home"),
                   "GLASSBOX_VAULT_BACKEND": "embedded", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        environment["GLASSBOX_VAULT_PORT"] = str(squatter.getsockname()[1])
        result = subprocess.run([REPO / "binder" / "start", "pwd"], cwd=volume, env=environment,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == str(volume)  # the command replaced the script, in the volume
    shipped = {lab.name for lab in (REPO / "labs").glob("*.ipynb")}
    assert shipped and shipped <= {path.name for path in volume.iterdir()}
    assert (volume / "deploy").resolve() == REPO / "deploy" and (volume / "benchmarks").resolve() == REPO / "benchmarks"
    assert "continuing without it" in result.stderr


def test_each_learner_has_limits_and_a_volume_for_their_work():
    for resource in ("memory", "cpu"):
        limits = SINGLEUSER[resource]
        assert 0 < quantity(limits["guarantee"]) <= quantity(limits["limit"]), resource
    assert quantity(SINGLEUSER["memory"]["limit"]) >= quantity("1G")
    assert quantity(SINGLEUSER["cpu"]["limit"]) <= 2  # one learner cannot take a whole 2-core node
    storage = SINGLEUSER["storage"]
    assert storage["type"] == "dynamic" and quantity(storage["capacity"]) >= quantity("1Gi")
    work = Path(storage["homeMountPath"])
    assert Path(SINGLEUSER["extraEnv"]["GLASSBOX_HOME"]).is_relative_to(work)
    assert Path(HUB["config"]["KubeSpawner"]["notebook_dir"]) == work


def test_learners_sign_up_and_wait_for_the_instructors_approval():
    config = HUB["config"]
    (native,) = entry_points(group="jupyterhub.authenticators", name=config["JupyterHub"]["authenticator_class"])
    assert native.value == "nativeauthenticator:NativeAuthenticator"
    assert config["NativeAuthenticator"]["enable_signup"] is True
    assert config["NativeAuthenticator"]["open_signup"] is False
    assert config["NativeAuthenticator"]["minimum_password_length"] >= 8
    assert config["Authenticator"]["admin_users"] and config["Authenticator"]["allow_all"] is True
    assert "allowed_users" not in config["Authenticator"]


def test_the_native_authenticator_templates_config_runs():
    from traitlets.config import Config

    c = Config()
    exec(HUB["extraConfig"]["nativeauthenticator-templates"], {"c": c})
    (templates,) = c.JupyterHub.template_paths
    assert (Path(templates) / "signup.html").is_file() and (Path(templates) / "native-login.html").is_file()


def test_idle_servers_are_culled():
    cull = MERGED["cull"]
    assert cull["enabled"] is True and 0 < cull["every"] < cull["timeout"] <= 3600
    assert cull["users"] is False  # a culled learner keeps their account and volume


def test_learners_pods_accept_only_the_hub_and_the_proxy():
    policy = SINGLEUSER["networkPolicy"]
    assert policy["enabled"] is True
    assert policy["allowedIngressPorts"] == [] and policy["ingress"] == []  # no source beyond the chart's rule
    assert policy["interNamespaceAccessLabels"] == "ignore"
    # the chart's one ingress rule admits pods labelled network-access-singleuser: user pods must not carry it
    assert "hub.jupyter.org/network-access-singleuser" not in SINGLEUSER["extraLabels"]
    assert "hub.jupyter.org/network-access-singleuser" not in SINGLEUSER["storage"]["extraLabels"]


def test_learners_pods_reach_no_other_learner():
    policy = SINGLEUSER["networkPolicy"]
    rules = policy["egressAllowRules"]
    assert rules["privateIPs"] is False and rules["cloudMetadataServer"] is False
    assert rules["nonPrivateIPs"] is False  # nothing reaches the internet at run time
    assert rules["dnsPortsKubeSystemNamespace"] is True
    assert policy["egress"] == []


def test_the_class_view_is_a_managed_service_the_proxy_reaches():
    service = HUB["services"][SERVICE]
    assert _unknown_service_fields(service) == set()
    assert (REPO / "support" / "glassbox" / "course" / "class_view.py").is_file()
    assert service["command"] == ["python3", "-m", "glassbox.course.class_view"]
    assert service["environment"] == {"GLASSBOX_CLASS_VIEW_BIND": "0.0.0.0"}   # `url` names the hub's Service
    port = int(service["url"].rsplit(":", 1)[1])
    assert service["url"] == f"http://hub:{port}" and service["oauth_no_confirm"] is True
    assert [p["port"] for p in HUB["service"]["extraPorts"]] == [port]
    (ingress,) = HUB["networkPolicy"]["ingress"]
    assert [p["port"] for p in ingress["ports"]] == [port]
    assert ingress["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "jupyterhub", "app.kubernetes.io/component": "proxy"}}}]
    (egress,) = MERGED["proxy"]["chp"]["networkPolicy"]["egress"]
    assert [p["port"] for p in egress["ports"]] == [port]
    assert egress["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "hub"
    assert SINGLEUSER["extraEnv"]["GLASSBOX_CLASS_VIEW_URL"].endswith(f"/services/{SERVICE}/")


def test_learners_tokens_may_post_to_the_class_view():
    scope = f"access:services!service={SERVICE}"
    tokens = HUB["config"]["KubeSpawner"]["server_token_scopes"]
    (server_role,) = [role for role in get_default_roles() if role["name"] == "server"]
    assert set(server_role["scopes"]) | {scope} == set(tokens)
    roles = HUB["loadRoles"]
    assert scope in roles["user"]["scopes"] and "self" in roles["user"]["scopes"]
    assert roles[SERVICE]["services"] == [SERVICE]
    for name, role in roles.items():
        assert set(role) <= {"name", "description", "scopes", "users", "groups", "services"}
        _validate_role_name(name)
        _check_scopes_exist(role["scopes"], who_for=f"role {name}")
    _check_scopes_exist(tokens)


@pytest.mark.parametrize("scope", ["access:service!service=class-view", "acess:services!service=class-view",
                                   "access:services!servce=class-view"])
def test_a_misspelt_scope_is_refused_by_jupyterhub(scope):
    with pytest.raises(ScopeNotFound):
        _check_scopes_exist([scope])


def test_no_secret_in_the_values():
    """The chart generates the proxy token, cookie secret and service tokens; none is written here."""
    text = VALUES_FILE.read_text()
    assert leaks_in_text(text) == []
    assert MERGED["proxy"]["secretToken"] is None and HUB["cookieSecret"] is None
    assert "api_token" not in HUB["services"][SERVICE] and "apiToken" not in HUB["services"][SERVICE]
