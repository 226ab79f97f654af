"""The server's limits, as real clients meet them: the 413 that urllib sees, slow clients on real sockets
(header and body timeouts), JSON errors on every route (the repository extension too, and requests too
malformed to route), no server paths.

One server process for the module, with short timeouts (3 s for headers, 4 s for a body) and a 100 kB body
limit. Its client opens a fresh connection per request (no keep-alive), so an ordinary request never races the
server closing an idle connection, and its headers arrive well within 3 s even on a loaded machine. The
sockets' own timeouts are generous upper bounds, never synchronisation.
"""

import json
import socket
import urllib.error
import urllib.request
from types import SimpleNamespace

import httpx
import pytest

from helpers import course_model_server

LIMIT = 100_000
INFER = "/v2/models/credit/infer"
HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 3, 4


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with course_model_server(tmp_path_factory.mktemp("limits"), GLASSBOX_MAX_BODY_BYTES=LIMIT,
                             GLASSBOX_HEADER_TIMEOUT_SECONDS=HEADER_TIMEOUT_S,
                             GLASSBOX_BODY_TIMEOUT_SECONDS=BODY_TIMEOUT_S) as (local, key, model_dir):
        with httpx.Client(base_url=local.url, headers={"authorization": f"Bearer {key}"}, timeout=30,
                          limits=httpx.Limits(max_keepalive_connections=0)) as client:
            host, port = local.url.removeprefix("http://").split(":")
            yield SimpleNamespace(url=local.url, key=key, client=client, model_dir=model_dir,
                                  address=(host, int(port)))


@pytest.mark.parametrize("size", [LIMIT + 1, 3_000_000])
def test_urllib_sees_the_413_and_the_connection_closes(server, size):
    request = urllib.request.Request(server.url + INFER, data=b" " * size, method="POST", headers={
        "authorization": f"Bearer {server.key}", "content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413 and refused.value.headers["connection"] == "close"
    assert f"at most {LIMIT}" in json.loads(refused.value.read())["error"]


def _exchange(server, data: bytes) -> bytes:
    """Send ``data`` on a fresh socket, then read until the server closes (upper bound: 60 s)."""
    with socket.create_connection(server.address, timeout=60) as sock:
        sock.sendall(data)
        return _read_to_close(sock)


def _read_to_close(sock) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _status_and_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split()[1]), json.loads(body)["error"]


def test_a_body_slower_than_its_timeout_gets_a_408(server):
    head = (f"POST {INFER} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {server.key}\r\n"
            "content-type: application/json\r\ncontent-length: 1000\r\n\r\n").encode()
    status, error = _status_and_error(_exchange(server, head + b'{"inputs": '))
    assert status == 408 and f"within {BODY_TIMEOUT_S} s" in error


def test_fifty_sockets_trickling_headers_are_all_closed_with_a_408(server):
    sockets = [socket.create_connection(server.address, timeout=60) for _ in range(50)]
    try:
        for sock in sockets:
            sock.sendall(f"POST {INFER} HTTP/1.1\r\nhost: x\r\n".encode())
        answers = [_read_to_close(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    for answer in answers:
        status, error = _status_and_error(answer)
        assert status == 408 and f"headers did not arrive within {HEADER_TIMEOUT_S} s" in error
    assert server.client.get("/v2/health/live").json() == {"live": True}   # still serving everyone else


def test_an_idle_connection_is_closed_without_an_answer(server):
    with socket.create_connection(server.address, timeout=60) as sock:
        assert _read_to_close(sock) == b""


def test_a_request_too_malformed_to_parse_gets_a_json_400(server):
    status, error = _status_and_error(_exchange(server, b"NOT HTTP AT ALL\r\n\r\n"))
    assert status == 400 and "Invalid HTTP request" in error


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v2/repository/index", 405),
    ("POST", "/v2/repository/nothing", 404),
    ("POST", "/v2/repository/models/credit/unload", 400),
    ("POST", "/v2/repository/models/other/load", 404),
    ("DELETE", "/v2/models/credit", 405),
    ("GET", "/", 404),
])
def test_every_route_answers_errors_as_json(server, method, path, status):
    answer = server.client.request(method, path)
    assert answer.status_code == status and answer.headers["content-type"] == "application/json"
    assert isinstance(answer.json()["error"], str) and answer.json()["error"]


def test_a_refused_load_shows_no_server_path(server):
    refused = server.client.post("/v2/repository/models/credit/load",
                                 json={"parameters": {"manifest_sha256": "0" * 64}})
    assert refused.status_code == 400 and "not the pinned" in refused.json()["error"]
    index = server.client.post("/v2/repository/index").json()
    assert "not the pinned" in index[0]["reason"] and index[0]["state"] == "READY"
    for text in (refused.text, json.dumps(index)):
        assert str(server.model_dir) not in text and str(server.model_dir.resolve()) not in text
        assert "the model directory" in text
