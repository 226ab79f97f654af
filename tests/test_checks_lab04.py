"""Lab 04's self-checks pass on the solution's objects and name each common mistake, without leaking values."""

import secrets

import hvac
import hvac.exceptions
import pytest

from glassbox.checks.lab04 import check_kv_write, check_read_or_none, check_rollback, check_scoped_token

from helpers import assert_not_yet

BASE = "glassbox-tests/lab04"


@pytest.fixture(scope="module")
def kv(vault_client):
    return vault_client.secrets.kv.v2


def _purge(kv, *paths):
    for path in paths:
        kv.delete_metadata_and_all_versions(path=path, mount_point="secret")


# -- kv-write -------------------------------------------------------------------------------------------

API = f"{BASE}/api"


def _api_secret():
    return {"api_url": "https://api.example.org", "api_key": secrets.token_urlsafe(24)}


def test_kv_write_passes_on_the_solution(vault_client, kv):
    _purge(kv, API)
    value = _api_secret()
    written = kv.create_or_update_secret(path=API, secret=value, mount_point="secret")
    feedback = check_kv_write(written, vault_client, API)
    assert feedback, feedback
    assert value["api_key"] not in repr(feedback)


@pytest.mark.parametrize("wrong", [f"secret/data/{API}", f"secret/{API}"])
def test_kv_write_catches_a_path_that_includes_the_mount(vault_client, kv, wrong):
    _purge(kv, API, wrong)
    written = kv.create_or_update_secret(path=wrong, secret=_api_secret(), mount_point="secret")
    feedback = check_kv_write(written, vault_client, API)
    assert_not_yet(feedback, "includes the mount", f"path={API!r}")
    _purge(kv, wrong)


def test_kv_write_fails_on_the_stub_and_on_missing_keys(vault_client, kv):
    _purge(kv, API)
    assert_not_yet(check_kv_write(..., vault_client, API), "stub")
    written = kv.create_or_update_secret(path=API, secret={"url": "x"}, mount_point="secret")
    assert_not_yet(check_kv_write(written, vault_client, API), "api_key")
    assert_not_yet(check_kv_write({"data": {}}, vault_client, API), "not hvac's response")


def test_kv_write_fails_when_nothing_was_written(vault_client, kv):
    _purge(kv, API)
    assert_not_yet(check_kv_write({"data": {"version": 1}}, vault_client, API), "no secret")


# -- rollback -------------------------------------------------------------------------------------------

DB = f"{BASE}/db"


@pytest.fixture
def two_versions(kv):
    _purge(kv, DB)
    first = {"username": "app", "password": secrets.token_urlsafe(16)}
    kv.create_or_update_secret(path=DB, secret=first, mount_point="secret")
    kv.create_or_update_secret(path=DB, secret={"username": "app", "password": secrets.token_urlsafe(16)},
                               mount_point="secret", cas=1)
    return first


def test_rollback_passes_when_version_1_is_written_back(vault_client, kv, two_versions):
    old = kv.read_secret_version(path=DB, version=1, mount_point="secret", raise_on_deleted_version=True)
    kv.create_or_update_secret(path=DB, secret=old["data"]["data"], cas=2, mount_point="secret")
    feedback = check_rollback(vault_client, DB)
    assert feedback and "version 3" in feedback.message
    assert two_versions["password"] not in repr(feedback)


def test_rollback_fails_on_the_stub(vault_client, two_versions):
    assert_not_yet(check_rollback(vault_client, DB), "does not hold version 1")


def test_rollback_catches_writing_the_whole_response_back(vault_client, kv, two_versions):
    old = kv.read_secret_version(path=DB, version=1, mount_point="secret", raise_on_deleted_version=True)
    kv.create_or_update_secret(path=DB, secret=old["data"], mount_point="secret")
    assert_not_yet(check_rollback(vault_client, DB), "keys", "response['data']['data']")


def test_rollback_fails_when_the_latest_version_is_deleted(vault_client, kv, two_versions):
    kv.delete_latest_version_of_secret(path=DB, mount_point="secret")
    assert_not_yet(check_rollback(vault_client, DB), "deleted")


# -- scoped-token ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reader_policy(vault_client):
    vault_client.sys.create_or_update_policy(
        name="lab04-reader", policy='path "secret/data/lab04/*" { capabilities = ["read"] }')
    return "lab04-reader"


def _token(vault_client, **kwargs):
    response = vault_client.auth.token.create(**kwargs)
    return response


def test_scoped_token_passes_on_the_solution(vault_client, reader_policy):
    response = _token(vault_client, policies=[reader_policy], ttl="10m", explicit_max_ttl="1h")
    feedback = check_scoped_token(response, vault_client)
    assert feedback, feedback
    assert response["auth"]["client_token"] not in repr(feedback)
    vault_client.auth.token.revoke(response["auth"]["client_token"])


def test_scoped_token_fails_on_the_stub_and_on_a_root_token(vault_client, reader_policy):
    assert_not_yet(check_scoped_token(..., vault_client), "stub")
    root_child = _token(vault_client, ttl="10m", explicit_max_ttl="1h")  # inherits root
    assert_not_yet(check_scoped_token(root_child, vault_client), "root")
    vault_client.auth.token.revoke(root_child["auth"]["client_token"])
    assert_not_yet(check_scoped_token({"auth": {"client_token": vault_client.token}}, vault_client), "admin token")


@pytest.mark.parametrize("kwargs, says", [
    (dict(policies=["lab04-reader"]), "system default"),
    (dict(policies=["lab04-reader"], ttl="10m"), "explicit max TTL"),
    (dict(policies=["default"], ttl="10m", explicit_max_ttl="1h"), "without 'lab04-reader'"),
    (dict(policies=["lab04-reader"], ttl="10m", explicit_max_ttl="1h", renewable=False), "not renewable"),
])
def test_scoped_token_names_each_missing_limit(vault_client, reader_policy, kwargs, says):
    response = _token(vault_client, **kwargs)
    try:
        feedback = check_scoped_token(response, vault_client)
        assert_not_yet(feedback, says)
    finally:
        vault_client.auth.token.revoke(response["auth"]["client_token"])


def test_scoped_token_fails_on_a_revoked_token(vault_client, reader_policy):
    response = _token(vault_client, policies=[reader_policy], ttl="10m", explicit_max_ttl="1h")
    vault_client.auth.token.revoke(response["auth"]["client_token"])
    assert_not_yet(check_scoped_token(response, vault_client), "no longer valid")


# -- read-or-none ---------------------------------------------------------------------------------------

PRESENT, DELETED = f"{BASE}/present", f"{BASE}/deleted"


@pytest.fixture(scope="module")
def paths(kv):
    _purge(kv, PRESENT, DELETED)
    kv.create_or_update_secret(path=PRESENT, secret={"password": secrets.token_urlsafe(16)}, mount_point="secret")
    kv.create_or_update_secret(path=DELETED, secret={"password": secrets.token_urlsafe(16)}, mount_point="secret")
    kv.delete_latest_version_of_secret(path=DELETED, mount_point="secret")
    return PRESENT, DELETED


def solution(client, path):
    try:
        response = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                            raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        return None
    return response["data"]["data"]


def stub(client, path):
    return ...


def swallows_everything(client, path):
    try:
        return _raw(client, path)
    except Exception:
        return None


def _raw(client, path):
    return client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                    raise_on_deleted_version=True)["data"]["data"]


def lets_invalid_path_escape(client, path):
    return _raw(client, path)


def returns_the_response(client, path):
    try:
        return client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                        raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        return None


def test_read_or_none_passes_on_the_solution(vault_client, paths):
    assert check_read_or_none(solution, vault_client, *paths)


@pytest.mark.parametrize("answer, says", [
    (stub, "returned Ellipsis"),
    (None, "not a function"),
    (swallows_everything, "Forbidden"),
    (lets_invalid_path_escape, "InvalidPath escape"),
    (returns_the_response, "key/value pairs"),
])
def test_read_or_none_catches_each_mistake(vault_client, paths, answer, says):
    assert_not_yet(check_read_or_none(answer, vault_client, *paths), says)


def test_read_or_none_leaves_no_token_behind(vault_client, paths):
    before = vault_client.list("auth/token/accessors")["data"]["keys"]
    check_read_or_none(swallows_everything, vault_client, *paths)
    after = vault_client.list("auth/token/accessors")["data"]["keys"]
    assert set(after) <= set(before)
