"""HTTPS with a certificate from Vault's PKI engine that a real Vault Agent renews, and the server reloads.

Callers verify the server against the course CA (and a caller that does not trust it is refused); the
certificate names this machine only and is short-lived; a renewed one is served without a restart, with no
failed request; a broken certificate file neither stops a start silently nor replaces a good certificate.
"""

import os
import socket
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from glassbox import artifacts
from glassbox.serving.tls import ReloadingCertificate
from glassbox.vault import bootstrap

from helpers import pick_free_port, served_by_agent, write_atomically

BODY = {"inputs": [{"name": "input-0", "shape": [1, 9], "datatype": "FP64", "data": [1.0] * 9}]}
SHORT = bootstrap.Setup(cert_ttl="20s")  # renewed at about 90% of its life: every 18 s or so


@pytest.fixture(scope="module")
def https(vault_client, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls-agent")
    with served_by_agent(vault_client, directory, setup=SHORT, tls=True,
                         GLASSBOX_KEY_REFRESH_SECONDS=1) as (server, agent):
        yield server, agent, directory / "ca.pem"
    bootstrap.ensure(vault_client)  # the course's own certificate lifetime again


def _peer(server, ca_file) -> dict:
    """The certificate the server presents now, verified against ``ca_file`` (as any caller would)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((server.host, server.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server.host) as tls:
        return tls.getpeercert()


def test_a_caller_verifies_the_server_against_the_course_ca(https, vault_client):
    server, _, ca_file = https
    assert server.url.startswith("https://127.0.0.1:")
    key = bootstrap.read_api_key(vault_client)
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)), timeout=10) as client:
        assert client.post(server.url + "/v2/models/credit/infer", json=BODY,
                           headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.post(server.url + "/v2/models/credit/infer", json=BODY).status_code == 401  # still needs the key
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the system's CAs don't vouch for it
        httpx.get(server.url + "/v2/health/ready", timeout=10)
    try:  # plain HTTP on the HTTPS port gets nothing useful: a dropped connection or an error status
        assert httpx.get(server.url.replace("https://", "http://") + "/v2/health/ready", timeout=10).status_code != 200
    except httpx.HTTPError:
        pass


def test_the_certificate_names_this_machine_only_and_is_short_lived(https):
    server, _, ca_file = https
    peer = _peer(server, ca_file)
    names = {value for kind, value in peer["subjectAltName"]}
    assert names == {"localhost", "127.0.0.1"}
    issuer = dict(item[0] for item in peer["issuer"])
    assert issuer["commonName"] == bootstrap.CA_COMMON_NAME
    lifetime = ssl.cert_time_to_seconds(peer["notAfter"]) - ssl.cert_time_to_seconds(peer["notBefore"])
    assert lifetime <= 20 + 30  # the TTL, plus the 30 s Vault back-dates notBefore for clock skew


def test_a_renewed_certificate_is_served_without_a_restart_or_a_failed_request(https, vault_client):
    server, agent, ca_file = https
    pid, first = server.process.pid, _peer(server, ca_file)["serialNumber"]
    key = bootstrap.read_api_key(vault_client)
    seen, failures, deadline = {first}, [], time.monotonic() + 90
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)), timeout=10) as client:
        while len(seen) < 3 and time.monotonic() < deadline:  # two renewals
            answer = client.post(server.url + "/v2/models/credit/infer", json=BODY,
                                 headers={"Authorization": f"Bearer {key}", "Connection": "close"})
            if answer.status_code != 200:
                failures.append(answer.status_code)
            seen.add(_peer(server, ca_file)["serialNumber"])
            time.sleep(0.2)
    assert len(seen) >= 3, "the server kept presenting the same certificate"
    assert failures == [] and server.process.pid == pid and server.running
    assert "TLS certificate reloaded" in server.log()


def test_a_start_with_a_broken_certificate_file_is_refused_in_one_line(tmp_path):
    broken, key_file = tmp_path / "server.pem", tmp_path / "api-key"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
    key_file.write_text("a-key-of-some-length")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("VAULT_", "BAO_"))}
    env.update(GLASSBOX_MODEL_DIR=str(artifacts.build_course_model()), GLASSBOX_API_KEY_FILE=str(key_file),
               GLASSBOX_TLS_FILE=str(broken), GLASSBOX_PORT=str(pick_free_port()))
    done = subprocess.run([sys.executable, "-m", "glassbox.serving"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "cannot load the TLS certificate and key from GLASSBOX_TLS_FILE" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_half_written_renewal_keeps_the_last_good_certificate(https, tmp_path):
    _, agent, _ = https
    good = tmp_path / "server.pem"
    write_atomically(good, agent.cert_file.read_text())
    certificate = ReloadingCertificate(good, check_seconds=0.1)
    write_atomically(good, agent.cert_file.read_text()[:200])  # replaced by something that is not a chain
    assert certificate.reload_if_changed() is False and certificate.reloads == 0
    write_atomically(good, agent.cert_file.read_text())
    assert certificate.reload_if_changed() is True and certificate.reloads == 1
