"""The model service's policy, proven on a real server: every path it must not touch is denied.

Each probe is a real request made with the service's own AppRole token. Widen the policy in
``glassbox.vault.bootstrap`` (a wildcard, another capability, another path) and some of these tests fail;
the last tests show that they do, with widened policies loaded under scratch names.
"""

import hvac
import hvac.exceptions
import pytest

from glassbox.vault import bootstrap

NEIGHBOUR = "glassbox/billing-service"


def _kv(client):
    return client.secrets.kv.v2


# (what, request) — every one must be refused with Forbidden for the model service
FORBIDDEN = {
    # cas=0 ("only if absent"): should the policy ever allow it, the write still changes nothing
    "write its own secret": lambda c: _kv(c).create_or_update_secret(
        path=bootstrap.SERVICE_PATH, secret={"api_key": "overwritten"}, cas=0, mount_point=bootstrap.MOUNT),
    "patch its own secret": lambda c: c.adapter.request(  # raw: hvac's patch() reads first
        "patch", f"/v1/{bootstrap.MOUNT}/data/{bootstrap.SERVICE_PATH}", json={"data": {"api_key": "patched"}},
        headers={"Content-Type": "application/merge-patch+json"}),
    "delete its own secret": lambda c: _kv(c).delete_latest_version_of_secret(
        path=bootstrap.SERVICE_PATH, mount_point=bootstrap.MOUNT),
    "destroy a version of its own secret": lambda c: _kv(c).destroy_secret_versions(
        path=bootstrap.SERVICE_PATH, versions=[1], mount_point=bootstrap.MOUNT),
    "read its own secret's metadata": lambda c: _kv(c).read_secret_metadata(
        path=bootstrap.SERVICE_PATH, mount_point=bootstrap.MOUNT),
    "read a neighbour's secret": lambda c: _kv(c).read_secret_version(
        path=NEIGHBOUR, mount_point=bootstrap.MOUNT, raise_on_deleted_version=True),
    "read a look-alike path (prefix)": lambda c: _kv(c).read_secret_version(
        path=bootstrap.SERVICE_PATH + "-admin", mount_point=bootstrap.MOUNT, raise_on_deleted_version=True),
    "read a path below its own": lambda c: _kv(c).read_secret_version(
        path=bootstrap.SERVICE_PATH + "/extra", mount_point=bootstrap.MOUNT, raise_on_deleted_version=True),
    "list the glassbox secrets": lambda c: _kv(c).list_secrets(path="glassbox", mount_point=bootstrap.MOUNT),
    "list the whole mount": lambda c: _kv(c).list_secrets(path="", mount_point=bootstrap.MOUNT),
    "decrypt personal data": lambda c: c.secrets.transit.decrypt_data(
        bootstrap.TRANSIT_KEY, ciphertext="vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        mount_point=bootstrap.TRANSIT_MOUNT),
    "encrypt with the PII key": lambda c: c.secrets.transit.encrypt_data(
        bootstrap.TRANSIT_KEY, plaintext="aGVsbG8=", mount_point=bootstrap.TRANSIT_MOUNT),
    "rotate the PII key": lambda c: c.secrets.transit.rotate_key(
        bootstrap.TRANSIT_KEY, mount_point=bootstrap.TRANSIT_MOUNT),
    "read its role ID": lambda c: c.auth.approle.read_role_id(bootstrap.ROLE, mount_point=bootstrap.APPROLE_MOUNT),
    "issue itself a secret ID": lambda c: c.auth.approle.generate_secret_id(
        bootstrap.ROLE, mount_point=bootstrap.APPROLE_MOUNT),
    "rewrite its own role": lambda c: c.auth.approle.create_or_update_approle(
        bootstrap.ROLE, token_ttl="768h", mount_point=bootstrap.APPROLE_MOUNT),
    "read its policy": lambda c: c.sys.read_policy(bootstrap.POLICY),
    "rewrite its policy": lambda c: c.sys.create_or_update_policy(
        name=bootstrap.POLICY, policy='path "secret/*" { capabilities = ["read"] }'),
    "create a child token": lambda c: c.auth.token.create(policies=[bootstrap.POLICY], ttl="1h"),
    "list auth methods": lambda c: c.sys.list_auth_methods(),
    "list secrets engines": lambda c: c.sys.list_mounted_secrets_engines(),
    "list audit devices": lambda c: c.sys.list_enabled_audit_devices(),
    "disable the audit device": lambda c: c.sys.disable_audit_device("course"),
}


@pytest.fixture(scope="module")
def service(vault_client):
    bootstrap.ensure(vault_client)
    _kv(vault_client).create_or_update_secret(path=NEIGHBOUR, secret={"api_key": "neighbour-value"},
                                              mount_point=bootstrap.MOUNT)
    client = bootstrap.login_service(vault_client)
    yield client
    client.auth.token.revoke_self()


def test_the_service_reads_its_own_secret(service):
    assert len(bootstrap.read_api_key(service)) >= 40


@pytest.mark.parametrize("what", list(FORBIDDEN))
def test_the_service_is_denied(service, what):
    with pytest.raises(hvac.exceptions.Forbidden):
        FORBIDDEN[what](service)


def _client_with_policy(vault_client, name, hcl):
    vault_client.sys.create_or_update_policy(name=name, policy=hcl)
    token = vault_client.auth.token.create(policies=[name], ttl="2m")["auth"]["client_token"]
    return hvac.Client(url=vault_client.url, token=token)


def _allowed(client, what):
    try:
        FORBIDDEN[what](client)
    except hvac.exceptions.Forbidden:
        return False
    except (hvac.exceptions.InvalidPath, hvac.exceptions.InvalidRequest):
        return True  # past the policy check, refused for another reason
    return True


WIDENED = {
    "a wildcard over the service's folder": (
        'path "secret/data/glassbox/*" { capabilities = ["read"] }',
        ["read a neighbour's secret", "read a look-alike path (prefix)", "read a path below its own"]),
    "a glob suffix on its own path": (
        'path "secret/data/glassbox/model-service*" { capabilities = ["read"] }',
        ["read a look-alike path (prefix)", "read a path below its own"]),
    "write on its own path": (
        'path "secret/data/glassbox/model-service" { capabilities = ["read", "update"] }',
        ["write its own secret"]),
    "list on the metadata": (
        'path "secret/data/glassbox/model-service" { capabilities = ["read"] }\n'
        'path "secret/metadata/*" { capabilities = ["list", "read"] }',
        ["list the glassbox secrets", "list the whole mount", "read its own secret's metadata"]),
    "decrypt on transit": (
        'path "transit/decrypt/glassbox-pii" { capabilities = ["update"] }',
        ["decrypt personal data"]),
}


@pytest.mark.parametrize("widening", list(WIDENED))
def test_a_widened_policy_would_fail_these_tests(vault_client, widening):
    """The probes are not vacuous: each widening lets at least the named probes through."""
    hcl, expected = WIDENED[widening]
    name = "glassbox-test-widened"
    client = _client_with_policy(vault_client, name, hcl)
    try:
        assert all(_allowed(client, what) for what in expected)
    finally:
        vault_client.auth.token.revoke(client.token)
        vault_client.sys.delete_policy(name)
