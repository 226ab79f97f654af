"""Lab 05's self-checks pass on the solution's objects and name each common mistake, without leaking values."""

import secrets
import sys
import time
import types
from pathlib import Path

import hvac
import hvac.exceptions
import nbformat
import pytest

from glassbox.checks.lab05 import (check_destroy_prediction, check_kv_write, check_no_policy_prediction,
                                   check_read_or_none, check_rollback, check_scoped_token)
from helpers import assert_not_yet

BASE = "glassbox-tests/lab05"
REPO = Path(__file__).resolve().parents[1]


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
    assert_not_yet(feedback, "includes the mount", "relative to the mount", repr(API))
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
    assert_not_yet(check_rollback(vault_client, DB), "keys", "layers around the pairs")


def test_rollback_fails_when_the_latest_version_is_deleted(vault_client, kv, two_versions):
    kv.delete_latest_version_of_secret(path=DB, mount_point="secret")
    assert_not_yet(check_rollback(vault_client, DB), "deleted")


# -- scoped-token ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reader_policy(vault_client):
    vault_client.sys.create_or_update_policy(
        name="lab05-reader", policy='path "secret/data/lab05/*" { capabilities = ["read"] }')
    return "lab05-reader"


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
    (dict(policies=["lab05-reader"]), "system maximum"),
    (dict(policies=["lab05-reader"], ttl="10m"), "explicit max TTL"),
    (dict(policies=["default"], ttl="10m", explicit_max_ttl="1h"), "without 'lab05-reader'"),
    (dict(policies=["lab05-reader"], ttl="10m", explicit_max_ttl="1h", renewable=False), "not renewable"),
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


# -- no value printed, in any exercise cell ---------------------------------------------------------------

@pytest.fixture
def printed_a_secret(monkeypatch):
    """The kernel's masking as it reports a cell that printed a secret (whether or not it has landed)."""
    fake = types.SimpleNamespace(leaks_in_this_cell=lambda: ["the value of 'api_key' at .../secret/data/lab05"])
    monkeypatch.setitem(sys.modules, "glassbox.masking", fake)
    monkeypatch.setattr("glassbox.masking", fake, raising=False)


def test_kv_write_fails_when_the_cell_printed_the_api_key(vault_client, kv, printed_a_secret):
    _purge(kv, API)
    written = kv.create_or_update_secret(path=API, secret=_api_secret(), mount_point="secret")
    assert_not_yet(check_kv_write(written, vault_client, API), "printed a secret value", "api_key")


def test_rollback_fails_when_the_cell_printed_the_old_password(vault_client, kv, two_versions, printed_a_secret):
    old = kv.read_secret_version(path=DB, version=1, mount_point="secret", raise_on_deleted_version=True)
    kv.create_or_update_secret(path=DB, secret=old["data"]["data"], cas=2, mount_point="secret")
    assert_not_yet(check_rollback(vault_client, DB), "printed a secret value")


def test_scoped_token_fails_when_the_cell_printed_the_token(vault_client, reader_policy, printed_a_secret):
    response = _token(vault_client, policies=[reader_policy], ttl="10m", explicit_max_ttl="1h")
    try:
        assert_not_yet(check_scoped_token(response, vault_client), "printed a secret value")
    finally:
        vault_client.auth.token.revoke(response["auth"]["client_token"])


def test_read_or_none_fails_when_the_function_printed_the_pairs(vault_client, paths, printed_a_secret):
    assert_not_yet(check_read_or_none(solution, vault_client, *paths), "printed a secret value")


# -- the hvac exceptions an exercise cell raises (the kernel hook shows them with the exercise's hints) ----

def test_a_wrong_mount_raises_invalid_path_and_the_hints_name_the_mount(kv):
    with pytest.raises(hvac.exceptions.InvalidPath, match="no handler for route"):
        kv.create_or_update_secret(path=API, secret=_api_secret(), mount_point="kv")
    assert "mount" in check_kv_write.hints[0] and "`secret`" in check_kv_write.hints[1]


def test_a_rollback_without_cas_or_with_a_stale_cas_raises_invalid_request(kv, two_versions):
    kv.update_metadata(path=DB, cas_required=True, mount_point="secret")
    old = kv.read_secret_version(path=DB, version=1, mount_point="secret", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter required"):
        kv.create_or_update_secret(path=DB, secret=old["data"]["data"], mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter did not match"):
        kv.create_or_update_secret(path=DB, secret=old["data"]["data"], cas=1, mount_point="secret")
    assert "check-and-set" in check_rollback.hints[0] and "cas=" in check_rollback.hints[1]


def test_rollback_by_deleting_the_bad_version_is_named(vault_client, kv, two_versions):
    kv.delete_latest_version_of_secret(path=DB, mount_point="secret")
    assert_not_yet(check_rollback(vault_client, DB), "deleting the bad version is not a rollback")


def test_a_ttl_in_words_raises_invalid_request(vault_client, reader_policy):
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault_client.auth.token.create(policies=[reader_policy], ttl="10 minutes")
    assert "ttl=" in check_scoped_token.hints[1]


def test_scoped_token_catches_the_token_string_and_a_misspelt_policy(vault_client, reader_policy):
    response = _token(vault_client, policies=[reader_policy], ttl="10m", explicit_max_ttl="1h")
    assert_not_yet(check_scoped_token(response["auth"]["client_token"], vault_client), "no 'auth' part")
    vault_client.auth.token.revoke(response["auth"]["client_token"])
    misspelt = _token(vault_client, policies=["lab05-read"], ttl="10m", explicit_max_ttl="1h")
    assert_not_yet(check_scoped_token(misspelt, vault_client), "without 'lab05-reader'")
    vault_client.auth.token.revoke(misspelt["auth"]["client_token"])


def catches_key_error(client, path):
    try:
        return _raw(client, path)
    except KeyError:
        return None


def catches_vault_error(client, path):
    try:
        return _raw(client, path)
    except hvac.exceptions.VaultError:
        return None


@pytest.mark.parametrize("answer, says", [(catches_key_error, "InvalidPath escape"),
                                          (catches_vault_error, "Forbidden")])
def test_read_or_none_catches_the_wrong_exception_class(vault_client, paths, answer, says):
    assert_not_yet(check_read_or_none(answer, vault_client, *paths), says)


# -- issue 11: the system maximum TTL is the ceiling; a periodic token lives while it is renewed ----------

def test_a_token_asking_for_years_is_capped_at_the_system_maximum(vault_client, reader_policy):
    ceiling = vault_client.sys.read_auth_method_tuning(path="token")["data"]["max_lease_ttl"]
    assert ceiling == 768 * 3600                                   # 32 days: the dev server's default
    greedy = _token(vault_client, policies=[reader_policy], ttl="100000h")
    try:
        assert greedy["auth"]["lease_duration"] == ceiling
        assert any("capped" in warning for warning in greedy["warnings"])
        info = vault_client.auth.token.lookup(greedy["auth"]["client_token"])["data"]
        assert info["creation_ttl"] == ceiling and info["explicit_max_ttl"] == 0
        renewed = vault_client.auth.token.renew(greedy["auth"]["client_token"], increment="100000h")
        assert 0 < renewed["auth"]["lease_duration"] <= ceiling    # nor can a renewal pass it
    finally:
        vault_client.auth.token.revoke(greedy["auth"]["client_token"])


def test_a_periodic_token_is_renewed_back_to_its_period(vault_client, reader_policy):
    periodic = _token(vault_client, policies=[reader_policy], period="1h")
    try:
        info = vault_client.auth.token.lookup(periodic["auth"]["client_token"])["data"]
        assert info["period"] == 3600 and info["explicit_max_ttl"] == 0
        renewed = vault_client.auth.token.renew(periodic["auth"]["client_token"], increment="100000h")
        assert renewed["auth"]["lease_duration"] == 3600          # the period, whatever the increment asks
    finally:
        vault_client.auth.token.revoke(periodic["auth"]["client_token"])


# -- the two predictions, against the real server ---------------------------------------------------------

def test_undelete_after_destroy_succeeds_and_changes_nothing(kv, two_versions):
    kv.destroy_secret_versions(path=DB, versions=[1], mount_point="secret")
    assert kv.undelete_secret_versions(path=DB, versions=[1], mount_point="secret").status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=DB, version=1, mount_point="secret", raise_on_deleted_version=True)
    assert kv.read_secret_metadata(path=DB, mount_point="secret")["data"]["versions"]["1"]["destroyed"] is True
    assert check_destroy_prediction("c")


def test_a_valid_token_without_the_policy_gets_403_whether_or_not_the_secret_exists(vault_client, kv, two_versions):
    outsider = _token(vault_client, policies=["default"], ttl="2m")
    nosy = hvac.Client(url=vault_client.url, token=outsider["auth"]["client_token"])
    try:
        for path in (DB, f"{BASE}/nothing-here"):
            with pytest.raises(hvac.exceptions.Forbidden):
                nosy.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                       raise_on_deleted_version=True)
    finally:
        vault_client.auth.token.revoke(outsider["auth"]["client_token"])
    assert check_no_policy_prediction("b")


@pytest.mark.parametrize("check, answer, says", [
    (check_destroy_prediction, ..., "still the stub"),
    (check_destroy_prediction, "a", "nothing to bring back"),
    (check_destroy_prediction, "b", "does not refuse"),
    (check_destroy_prediction, "d", "is a 404"),
    (check_no_policy_prediction, ..., "still the stub"),
    (check_no_policy_prediction, "a", "never 404"),
    (check_no_policy_prediction, "c", "only says who you are"),
    (check_no_policy_prediction, "d", "well formed"),
])
def test_each_wrong_prediction_is_told_its_misconception(check, answer, says):
    assert_not_yet(check(answer), says)


def test_first_hints_never_paste_the_answers():
    for check, answer in ((check_destroy_prediction, '"c"'), (check_no_policy_prediction, '"b"'),
                          (check_scoped_token, 'ttl="10m"'), (check_kv_write, "path=API_PATH"),
                          (check_rollback, "version=1"), (check_read_or_none, "except hvac.exceptions.InvalidPath")):
        assert answer not in check.hints[0]


def test_no_hint_tier_of_read_or_none_or_predict_destroy_gives_the_answer_away():
    for tier in check_read_or_none.hints:
        assert "InvalidPath" not in tier and "raise_on_deleted_version" not in tier, tier
    for tier in check_destroy_prediction.hints:   # option (c): it answers without an error and changes nothing
        assert '"c"' not in tier and "nothing for it to do" not in tier and "without an error" not in tier, tier


# -- cells 34-38 of the lab, after a pause long enough for Exercise 5's token to expire --------------------

def _lab_cells(*ids):
    notebook = nbformat.read(REPO / "solutions" / "05-vault-basics.ipynb", as_version=4)
    sources = {cell.get("id"): cell.source for cell in notebook.cells}
    return [sources[cell_id] for cell_id in ids]


TOKEN_CELLS_DB = "lab05/glassbox-tests/db"   # inside the reader policy's "secret/data/lab05/*"


def _run_token_cells(vault_client, token_response, capsys):
    """Run the lab's look-up, renewal and revocation cells (ids lab05-29, -31, -33); what each printed."""
    namespace = {"client": vault_client, "hvac": hvac, "server": types.SimpleNamespace(addr=vault_client.url),
                 "READER_POLICY": "lab05-reader", "DB_PATH": TOKEN_CELLS_DB, "token_response": token_response}
    printed = []
    for source in _lab_cells("lab05-29", "lab05-31", "lab05-33"):
        exec(compile(source, "<lab 05 cell>", "exec"), namespace)  # noqa: S102 - the lab's own cells
        printed.append(capsys.readouterr().out)
    return printed, namespace


def test_the_token_cells_say_the_token_expired_rather_than_that_exercise_5_is_unfinished(vault_client,
                                                                                       reader_policy, capsys):
    response = _token(vault_client, policies=[reader_policy], ttl="1s", explicit_max_ttl="1h")
    time.sleep(2.5)   # a pause after Exercise 5: the token's TTL has run out
    printed, namespace = _run_token_cells(vault_client, response, capsys)
    for output in printed:
        assert "its TTL ran out" in output and "re-run Exercise 5's cell" in output, output
        assert "finish Exercise 5" not in output and len(output.strip().splitlines()) == 1, output
    assert namespace["app_token"] is None   # so section 4 leaves out the revoked token's row


def test_the_token_cells_run_through_on_a_live_token_and_on_the_stub(vault_client, kv, reader_policy, capsys):
    kv.create_or_update_secret(path=TOKEN_CELLS_DB, secret={"password": secrets.token_urlsafe(16)},
                               mount_point="secret")
    response = _token(vault_client, policies=[reader_policy], ttl="10m", explicit_max_ttl="1h")
    printed, namespace = _run_token_cells(vault_client, response, capsys)
    assert "creation TTL: 600 s" in printed[0] and "the lease grew: True" in printed[1], printed
    assert "after revocation every request is Forbidden" in printed[2], printed
    assert namespace["app_token"] is not None   # revoked now: section 4 shows it Forbidden
    stub, _ = _run_token_cells(vault_client, ..., capsys)
    assert all("finish Exercise 5" in output and "TTL ran out" not in output for output in stub), stub
    _purge(kv, TOKEN_CELLS_DB)
