"""The course bootstrap: idempotent, hardened as documented, and its login refuses look-alike secret IDs."""

import hvac
import hvac.exceptions
import pytest

from glassbox.checks.lab06 import hardening_findings
from glassbox.vault import bootstrap


@pytest.fixture(scope="module")
def setup(vault_client):
    return bootstrap.ensure(vault_client)


@pytest.fixture
def service(vault_client, setup):
    client = bootstrap.login_service(vault_client)
    yield client
    client.auth.token.revoke_self()


def test_ensure_is_idempotent_and_keeps_the_api_key(vault_client, setup, service):
    before = bootstrap.read_api_key(service)
    version = vault_client.secrets.kv.v2.read_secret_metadata(
        path=setup.service_path, mount_point=setup.mount)["data"]["current_version"]
    assert bootstrap.ensure(vault_client) == bootstrap.ensure(vault_client) == setup
    assert bootstrap.read_api_key(service) == before
    assert vault_client.secrets.kv.v2.read_secret_metadata(
        path=setup.service_path, mount_point=setup.mount)["data"]["current_version"] == version


def test_the_documented_names(setup):
    assert (setup.mount, setup.service_path, setup.policy, setup.role, setup.transit_key) == (
        "secret", "glassbox/model-service", "glassbox-model-service", "glassbox-model-service", "glassbox-pii")
    assert setup.api_path == "secret/data/glassbox/model-service"
    assert "glassbox-pii" in bootstrap.__doc__ and "glassbox/model-service" in bootstrap.__doc__


def test_the_role_is_hardened_as_documented(vault_client, setup):
    role = vault_client.auth.approle.read_role(setup.role, mount_point=setup.approle_mount)["data"]
    assert role["token_policies"] == [setup.policy]
    assert (role["token_period"], role["token_ttl"], role["token_max_ttl"]) == (15 * 60, 0, 0)  # periodic
    assert (role["secret_id_num_uses"], role["secret_id_ttl"]) == (1, 10 * 60)
    assert (role["secret_id_bound_cidrs"], role["token_bound_cidrs"]) == (["127.0.0.1/32"], ["127.0.0.1"])
    policy = vault_client.sys.read_policy(setup.policy)["data"]["rules"]
    assert policy == bootstrap.service_policy(setup)
    assert "*" not in policy and "sudo" not in policy


def test_the_setup_passes_the_lab06_hardening_review(vault_client, service):
    findings = hardening_findings(vault_client, service, role=bootstrap.ROLE, wrap_ttl=bootstrap.WRAP_TTL,
                                  policy=bootstrap.POLICY)
    # audit may or may not be on in this session: everything else must be clean
    assert [f for f in findings if not f.startswith("audit is off")] == []


def test_the_service_token_comes_from_approle_with_only_its_policy(vault_client, service):
    info = service.auth.token.lookup_self()["data"]
    assert info["path"].startswith("auth/approle/login")
    assert sorted(info["policies"]) == ["default", bootstrap.POLICY]
    assert 0 < info["ttl"] <= 15 * 60 and info["period"] == 15 * 60 and info["explicit_max_ttl"] == 0
    assert service.token != vault_client.token
    renewed = service.auth.token.renew_self()["auth"]
    assert renewed["lease_duration"] == 15 * 60  # each renewal gives a whole period again: no max TTL cliff


def test_a_wrapped_secret_id_is_unwrapped_once_only(vault_client, setup):
    wrapping_token = bootstrap.wrapped_secret_id(vault_client, wrap_ttl="30s")
    role_id = bootstrap.role_id(vault_client)
    service = bootstrap.login_with_wrapped_secret(vault_client.url, role_id, wrapping_token)
    assert service.is_authenticated()
    with pytest.raises(bootstrap.WrappingTokenError, match="invalid, expired or already used"):
        bootstrap.login_with_wrapped_secret(vault_client.url, role_id, wrapping_token)


def test_a_look_alike_wrapping_token_is_refused_and_left_wrapped(vault_client, setup):
    """A token wrapping something else (here sys/wrapping/wrap) is rejected BEFORE it is unwrapped."""
    forged = vault_client.sys.wrap(payload={"secret_id": "attacker-chosen"}, ttl="60s")["wrap_info"]["token"]
    with pytest.raises(bootstrap.WrappingTokenError, match="sys/wrapping/wrap"):
        bootstrap.login_with_wrapped_secret(vault_client.url, bootstrap.role_id(vault_client), forged)
    still_wrapped = hvac.Client(url=vault_client.url, token="").adapter.post(
        "/v1/sys/wrapping/lookup", json={"token": forged})
    assert still_wrapped["data"]["creation_path"] == "sys/wrapping/wrap"


def test_a_secret_id_logs_in_once(vault_client, setup):
    role_id = bootstrap.role_id(vault_client)
    secret_id = vault_client.auth.approle.generate_secret_id(setup.role)["data"]["secret_id"]
    hvac.Client(url=vault_client.url, token="").auth.approle.login(role_id=role_id, secret_id=secret_id)
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
        hvac.Client(url=vault_client.url, token="").auth.approle.login(role_id=role_id, secret_id=secret_id)


def test_rotation_adds_a_version_and_keeps_the_old_one_readable(vault_client, setup, service):
    before = bootstrap.read_api_key(service)
    version = bootstrap.rotate_api_key(vault_client)
    after = bootstrap.read_api_key(service)
    assert after != before and len(after) >= 40
    assert bootstrap.read_api_key(service, version=version - 1) == before
    assert bootstrap.read_api_key(service, version=version) == after


def test_ensure_replaces_a_deleted_api_key(vault_client, setup, service):
    kv = vault_client.secrets.kv.v2
    kv.delete_latest_version_of_secret(path=setup.service_path, mount_point=setup.mount)
    with pytest.raises(hvac.exceptions.InvalidPath):
        bootstrap.read_api_key(service)
    bootstrap.ensure(vault_client)
    assert len(bootstrap.read_api_key(service)) >= 40


def test_transit_round_trip_and_who_may_decrypt(vault_client, setup, service):
    values = ["Jane", "Zoë Müller", "ada@example.org", ""]
    ciphertexts = bootstrap.encrypt_values(vault_client, values)
    assert all(text.startswith("vault:v") for text in ciphertexts)
    assert not any(value and value in text for value, text in zip(values, ciphertexts))
    assert bootstrap.decrypt_values(vault_client, ciphertexts) == values
    with pytest.raises(hvac.exceptions.Forbidden):
        bootstrap.decrypt_values(service, ciphertexts)
    assert bootstrap.encrypt_values(vault_client, []) == []


def test_transit_helpers_split_a_long_column_into_requests_the_server_accepts(vault_client, setup):
    """One request with thousands of items exceeds the server's JSON limits; the helpers slice it."""
    values = [f"person-{number}@example.org" for number in range(1200)]
    ciphertexts = bootstrap.encrypt_values(vault_client, values)
    assert len(ciphertexts) == 1200 and bootstrap.decrypt_values(vault_client, ciphertexts) == values


def test_setup_repr_holds_no_secret(vault_client, setup, service):
    assert bootstrap.read_api_key(service) not in repr(setup)


def test_old_api_keys_are_readable_by_the_service_until_destroyed(vault_client, setup, service):
    before = bootstrap.rotate_api_key(vault_client) - 1
    current = bootstrap.rotate_api_key(vault_client)
    old_key = bootstrap.read_api_key(service, version=before)   # the gap: the policy's path serves old versions
    assert old_key != bootstrap.read_api_key(service)
    destroyed = bootstrap.destroy_old_api_keys(vault_client)
    assert before in destroyed and current not in destroyed
    with pytest.raises(hvac.exceptions.InvalidPath):
        bootstrap.read_api_key(service, version=before)
    assert bootstrap.read_api_key(service) == bootstrap.read_api_key(vault_client)  # the current key stays
    assert bootstrap.destroy_old_api_keys(vault_client) == []                        # nothing left to destroy
    versions = vault_client.secrets.kv.v2.read_secret_metadata(
        path=setup.service_path, mount_point=setup.mount)["data"]["versions"]
    assert all(v["destroyed"] for number, v in versions.items() if int(number) != current)
