"""The gRPC API over TLS when REST serves TLS: the same certificate file, reloaded when it changes, no restart.

Certificates here are self-signed by openssl (the Vault PKI path that renders the real one is
``test_serving_tls.py``'s); tritonclient.grpc verifies the server against them as any caller would.
"""

import secrets
import subprocess

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from glassbox import artifacts
from glassbox.serving import LocalServer

from helpers import eventually, write_atomically


def _self_signed(directory, name: str):
    """A certificate for 127.0.0.1 (``name``.crt) and the server's PEM file: certificate, then key."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, cert.read_text() + key.read_text()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    directory = tmp_path_factory.mktemp("grpc-tls")
    first, pem = _self_signed(directory, "first")
    second, renewed = _self_signed(directory, "second")
    tls_file, key_file, key = directory / "server.pem", directory / "api-key", secrets.token_urlsafe(24)
    write_atomically(tls_file, pem)
    write_atomically(key_file, key)
    env = {"GLASSBOX_MODEL_DIR": artifacts.build_course_model(), "GLASSBOX_API_KEY_FILE": key_file,
           "GLASSBOX_TLS_FILE": tls_file, "GLASSBOX_KEY_REFRESH_SECONDS": 1}
    with LocalServer(env, ca_file=first, grpc=True) as server:
        yield {"server": server, "key": key, "first": first, "second": second, "renewed": renewed,
               "tls_file": tls_file}


def _client(server, root=None, ssl=True):
    return triton_grpc.InferenceServerClient(server.grpc_target, ssl=ssl,
                                             root_certificates=None if root is None else str(root))


def _live(server, root) -> bool:
    try:
        return _client(server, root).is_server_live(client_timeout=5)
    except InferenceServerException:
        return False


def test_grpc_answers_over_tls_verified_against_the_certificate(tls):
    server = tls["server"]
    assert server.url.startswith("https://")
    client = _client(server, tls["first"])
    X = np.ones((2, 9))
    tensor = triton_grpc.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X)
    result = client.infer("credit", [tensor], headers={"authorization": f"Bearer {tls['key']}"})
    assert result.as_numpy("predict_proba").shape == (2, 2)
    with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):   # TLS does not replace the key
        client.infer("credit", [tensor])


def test_callers_that_do_not_trust_it_or_skip_tls_get_nothing(tls):
    server = tls["server"]
    assert not _live(server, tls["second"])           # another certificate as the root: verification fails
    with pytest.raises(InferenceServerException):
        _client(server, ssl=False).is_server_live(client_timeout=5)   # plaintext on the TLS port


def test_a_renewed_certificate_is_served_without_a_restart(tls):
    server = tls["server"]
    pid = server.process.pid
    write_atomically(tls["tls_file"], tls["renewed"])  # as Vault Agent renders the next certificate
    assert eventually(lambda: _live(server, tls["second"]), timeout=20)
    assert not _live(server, tls["first"])
    assert server.process.pid == pid and server.process.poll() is None
