"""Audit logging through one call: the log records requests, and secret values only as HMACs."""

import json
import secrets

import hvac
import pytest

from glassbox import vault


def _entries(log_path):
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def test_the_audit_log_records_requests_with_secret_values_hmaced(own_vault_home):
    server = vault.up()
    client = hvac.Client(url=server.addr, token=server.token)

    log_path = vault.enable_audit()
    assert log_path.is_file() and log_path.parent == own_vault_home / "vault"
    assert vault.enable_audit() == log_path  # idempotent
    assert list(client.sys.list_enabled_audit_devices()["data"]) == ["course/"]

    value = f"canary-{secrets.token_hex(8)}"
    client.secrets.kv.v2.create_or_update_secret(path="glassbox-test/audit", secret={"password": value})
    read = client.secrets.kv.v2.read_secret_version(path="glassbox-test/audit", raise_on_deleted_version=True)
    assert read["data"]["data"]["password"] == value

    entries = [entry for entry in _entries(log_path)
               if entry["request"]["path"] == "secret/data/glassbox-test/audit"]
    seen = {(entry["type"], entry["request"]["operation"]) for entry in entries}
    assert {("request", "create"), ("response", "create"), ("request", "read"), ("response", "read")} <= seen

    text = log_path.read_text()
    assert value not in text and server.token not in text
    digest = client.sys.calculate_hash("course", value)["data"]["hash"]
    assert digest.startswith("hmac-sha256:")
    written = next(entry for entry in entries if entry["type"] == "request"
                   and entry["request"]["operation"] == "create")
    assert written["request"]["data"]["data"]["password"] == digest
    returned = next(entry for entry in entries if entry["type"] == "response"
                    and entry["request"]["operation"] == "read")
    assert returned["response"]["data"]["data"]["password"] == digest


def test_a_second_device_gets_a_log_of_its_own(own_vault_home):
    server = vault.up()
    first, second = vault.enable_audit(), vault.enable_audit("second")
    assert second != first and second.name == "audit-second.log"
    listed = hvac.Client(url=server.addr, token=server.token).sys.list_enabled_audit_devices()["data"]
    assert sorted(listed) == ["course/", "second/"]


def test_audit_on_an_openbao_glassbox_did_not_start_explains_the_config(own_vault_home, tmp_path, monkeypatch):
    vault.up()  # VAULT_ADDR and VAULT_TOKEN now point at it
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "another-home"))
    monkeypatch.delenv("GLASSBOX_VAULT_BACKEND")
    assert vault.up().backend == "existing"
    with pytest.raises(vault.VaultError, match=r'only from its configuration file: add audit "file" "course"'):
        vault.enable_audit()


def test_audit_needs_a_running_server_and_a_plain_name(own_vault_home):
    with pytest.raises(vault.VaultError, match=r"call vault.up\(\)"):
        vault.enable_audit()
    vault.up()
    with pytest.raises(vault.VaultError, match="use letters, digits"):
        vault.enable_audit('course" { }')
