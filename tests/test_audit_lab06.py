"""Audit: after the Vault labs run, the audit log holds their reads, and no value they wrote appears in clear.

Two ways in: a quick replay of the service's steps through ``glassbox.vault.bootstrap``, and the solutions of
labs 05 and 06 executed for real (nbclient, fresh kernels, the session's server).
"""

import base64
import json
from pathlib import Path

import hvac.exceptions
import nbformat
import pytest
from nbclient import NotebookClient

from glassbox import vault
from glassbox.data import load_credit
from glassbox.vault import bootstrap

REPO = Path(__file__).resolve().parents[1]
AUDIT = "course"
HMAC = "hmac-sha256:"
# Leaves the server writes in clear on purpose: timestamps are not secrets.
# Left in clear by Vault on purpose: times, and lease IDs (lab 06's leased certificate): an identifier that
# is useless without a token allowed to renew or revoke it.
_CLEAR_LEAVES = ("_time", "_time_rfc3339", "last_renewal", "modified", "lease_id")


def _entries_since(log: Path, offset: int) -> list[dict]:
    with open(log) as handle:
        handle.seek(offset)
        return [json.loads(line) for line in handle if line.strip()]


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for inner in value:
            yield from _leaves(inner, path + "[]")
    else:
        yield path, value


def _clear_values(entry: dict) -> list[str]:
    """Strings in the entry's data, tokens and accessors that are not HMAC digests (timestamps excepted)."""
    found = []
    for path, value in _leaves(entry):
        if not isinstance(value, str) or not value or value.startswith(HMAC):
            continue
        sensitive = (path.startswith((".request.data", ".response.data", ".response.wrap_info.token",
                                      ".response.wrap_info.accessor", ".response.auth.client_token",
                                      ".response.auth.accessor", ".response.secret"))
                     or path in (".auth.client_token", ".auth.accessor", ".request.client_token",
                                 ".request.client_token_accessor"))
        if sensitive and not path.endswith(_CLEAR_LEAVES):
            found.append(path)
    return found


def _reads(entries, api_path, role=None):
    return [e for e in entries if e["type"] == "response" and e["request"]["path"] == api_path
            and e["request"]["operation"] == "read"
            and (role is None or (e["auth"].get("metadata") or {}).get("role_name") == role)]


@pytest.fixture(scope="module")
def audit_log(vault_server):
    return vault.enable_audit(AUDIT)


def test_audit_device_is_listed(vault_client, audit_log):
    devices = vault_client.sys.list_enabled_audit_devices()["data"]
    assert devices[f"{AUDIT}/"]["type"] == "file" and audit_log.is_file()


def test_replay_of_the_service_steps_is_logged_as_digests(vault_client, audit_log):
    offset = audit_log.stat().st_size
    setup = bootstrap.ensure(vault_client)
    service = bootstrap.login_service(vault_client)
    api_key = bootstrap.read_api_key(service)
    people = ["Jane Doe", "jane.doe@example.org"]
    ciphertexts = bootstrap.encrypt_values(vault_client, people)
    entries = _entries_since(audit_log, offset)
    text = audit_log.read_text()

    reads = _reads(entries, setup.api_path, role=setup.role)
    assert len(reads) == 1 and reads[0]["auth"]["policies"] == ["default", setup.policy]
    hashed = vault_client.sys.calculate_hash(path=AUDIT, input_to_hash=api_key)["data"]["hash"]
    assert reads[0]["response"]["data"]["data"][setup.api_key_field] == hashed
    for value in [api_key, service.token, vault_client.token, *people, *ciphertexts,
                  *(base64.b64encode(p.encode()).decode() for p in people)]:
        assert value not in text
    assert [path for entry in entries for path in _clear_values(entry)] == []
    service.auth.token.revoke_self()


@pytest.fixture(scope="module")
def after_labs(vault_server, vault_client, audit_log):
    """Run the solutions of labs 05 and 06 in fresh kernels; return the audit entries they caused."""
    offset = audit_log.stat().st_size
    for name in ("05-vault-basics.ipynb", "06-vault-for-ml.ipynb"):
        notebook = nbformat.read(REPO / "solutions" / name, as_version=4)
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "solutions")}}).execute()
    return _entries_since(audit_log, offset)


def _secrets_written_by_the_labs(client) -> list[str]:
    """Every password and API key the two labs (and the course bootstrap) left readable in KV."""
    kv = client.secrets.kv.v2
    values = []
    for path in ("lab05/app/db", "lab05/app/api", "lab06/model-service", "lab06/billing-service",
                 bootstrap.SERVICE_PATH):
        versions = kv.read_secret_metadata(path=path, mount_point="secret")["data"]["versions"]
        for number in versions:
            try:
                data = kv.read_secret_version(path=path, version=int(number), mount_point="secret",
                                              raise_on_deleted_version=True)["data"]["data"]
            except hvac.exceptions.InvalidPath:  # destroyed or deleted: nothing to read back
                continue
            values += [v for k, v in data.items() if k in ("password", "api_key")]
    return values


def _personal_data() -> list[str]:
    """The personal values lab 06 encrypted, in clear and in the base64 form sent to transit."""
    frame = load_credit().frame
    personal = [str(v) for column in ("name", "email") for v in frame[column]]
    return personal + [base64.b64encode(v.encode()).decode() for v in personal]


def test_the_labs_reads_are_in_the_log(after_labs):
    service_reads = _reads(after_labs, "secret/data/lab06/model-service", role="lab06-model-service")
    admin_reads = [e for e in _reads(after_labs, "secret/data/lab06/model-service") if e["auth"]["policies"] == ["root"]]
    assert service_reads and admin_reads
    assert all(e["auth"]["policies"] == ["default", "lab06-model-service"] for e in service_reads)
    assert _reads(after_labs, "secret/data/lab05/app/db")
    assert any(e["request"]["path"] == "sys/wrapping/unwrap" for e in after_labs)
    assert any(e["request"]["path"].startswith("transit/encrypt/lab06-pii") for e in after_labs)


def test_no_value_written_by_the_labs_appears_in_clear(after_labs, vault_client, vault_server, audit_log):
    text = audit_log.read_text()
    secrets_ = _secrets_written_by_the_labs(vault_client) + [vault_server.token]
    assert len(secrets_) >= 7
    assert [value for value in secrets_ if value in text] == [], "a secret value is in clear in the audit log"
    # 16,000 personal values: compared with every string of every entry the labs caused (a substring
    # search per value would take minutes); no string may contain an email address at all.
    strings = {value for entry in after_labs for _, value in _leaves(entry) if isinstance(value, str)}
    personal = _personal_data()
    assert len(personal) == 16000
    assert strings.isdisjoint(personal)
    assert [value for value in strings if "@" in value and "example" in value] == []
    assert [path for entry in after_labs for path in _clear_values(entry)] == []


def test_the_service_key_is_findable_by_its_digest(after_labs, vault_client):
    api_key = vault_client.secrets.kv.v2.read_secret_version(
        path="lab06/model-service", mount_point="secret", raise_on_deleted_version=True)["data"]["data"]["api_key"]
    hashed = vault_client.sys.calculate_hash(path=AUDIT, input_to_hash=api_key)["data"]["hash"]
    readers = [e for e in after_labs if e["type"] == "response"
               and ((e.get("response") or {}).get("data") or {}).get("data", {}).get("api_key") == hashed]
    assert {tuple(e["auth"]["policies"]) for e in readers} >= {("default", "lab06-model-service"), ("root",)}


def test_the_clear_value_scan_is_not_vacuous():
    entry = {"type": "response", "auth": {"client_token": HMAC + "00"},
             "request": {"path": "secret/data/x", "data": {"note": HMAC + "11"}},
             "response": {"data": {"data": {"api_key": "in-clear"}, "metadata": {"created_time": "2026-01-01"}},
                          "wrap_info": {"token": "s.plain"}}}
    assert _clear_values(entry) == [".response.data.data.api_key", ".response.wrap_info.token"]
