"""The model server speaks the Open Inference Protocol (V2): request checks, answers that match the model
in-process, explanations that add up, per-feature inputs, errors shaped {"error"}, metrics.

A real server process (uvicorn, API key from a key file) on a free loopback port; real HTTP with httpx.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import numpy as np
import orjson
import pytest
import shap
from threadpoolctl import threadpool_info

from glassbox import artifacts
from glassbox.data import LEAKY_FEATURE, load_credit, train_test
from glassbox.serving import protocol
from glassbox.serving.protocol import ModelSchema, ProtocolError, parse_infer_request
from glassbox.serving.runtime import ModelRuntime
from glassbox.serving.service import batch_workers

from helpers import course_model_server

FEATURES = tuple(f"f{i}" for i in range(3))
SCHEMA = ModelSchema(FEATURES, max_rows=100)


def _body(inputs, **extra):
    return orjson.dumps({"inputs": inputs, **extra})


def _tensor(data, shape, datatype="FP64", name="input-0"):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


# -- the protocol, without HTTP --------------------------------------------------------------------------

def test_a_matrix_flat_or_nested_gives_the_same_rows():
    flat = parse_infer_request(_body([_tensor([1, 2.5, 3, 4, 5, 6], [2, 3])]), SCHEMA)
    nested = parse_infer_request(_body([_tensor([[1, 2.5, 3], [4, 5, 6]], [2, 3])]), SCHEMA)
    np.testing.assert_array_equal(flat.X, [[1, 2.5, 3], [4, 5, 6]])
    np.testing.assert_array_equal(nested.X, flat.X)
    assert flat.X.dtype == np.float64 and flat.outputs == ("predict", "predict_proba") and flat.id is None


def test_one_tensor_per_feature_in_any_order_is_put_in_the_model_order():
    inputs = [_tensor([3.0, 30.0], [2], name="f2"), _tensor([1.0, 10.0], [2, 1], name="f0"),
              _tensor([2, 20], [2], "INT32", name="f1")]
    parsed = parse_infer_request(_body(inputs, id="abc"), SCHEMA)
    np.testing.assert_array_equal(parsed.X, [[1, 2, 3], [10, 20, 30]])
    assert parsed.id == "abc"


def test_fp32_values_are_taken_at_fp32_precision():
    parsed = parse_infer_request(_body([_tensor([0.1, 0.2, 0.3], [1, 3], "FP32")]), SCHEMA)
    np.testing.assert_array_equal(parsed.X[0], np.array([0.1, 0.2, 0.3], dtype=np.float32).astype(np.float64))


def test_requested_outputs_are_kept_in_order():
    parsed = parse_infer_request(_body([_tensor([1, 2, 3], [1, 3])],
                                       outputs=[{"name": "explanation"}, {"name": "predict_proba",
                                                                          "parameters": {"binary_data": False}}]),
                                 SCHEMA)
    assert parsed.outputs == ("explanation", "predict_proba")


@pytest.mark.parametrize("inputs, extra, status, message", [
    ([_tensor([1, 2], [1, 2])], {}, 400, r"shape \[1, 2\]; the model takes \[n, 3\].*f0, f1, f2"),
    ([_tensor([1, 2, 3, 4], [1, 3])], {}, 400, r"needs 3 values, \"data\" holds 4"),
    ([_tensor([1, True, 3], [1, 3])], {}, 400, "a boolean"),
    ([_tensor([1, None, 3], [1, 3])], {}, 400, "null"),
    ([_tensor([1, "2", 3], [1, 3])], {}, 400, "a string"),
    ([_tensor([1, 2.5, 3], [1, 3], "INT64")], {}, 400, "needs integers"),
    ([_tensor([1, 300, 3], [1, 3], "INT8")], {}, 400, "outside the range of INT8"),
    ([_tensor([1, 1e39, 3], [1, 3], "FP32")], {}, 400, "finite"),
    ([_tensor([1, 2, 3], [1, 3], "BOOL")], {}, 400, "not supported"),
    ([_tensor([1, 2, 3], [-1, 3])], {}, 400, "negative dimension"),
    ([_tensor([], [0, 3])], {}, 400, "empty"),
    ([_tensor([0] * 3 * 101, [101, 3])], {}, 413, "at most 100"),
    ([_tensor([[1, 2], [3, 4, 5]], [2, 3])], {}, 400, "nested"),
    ([_tensor([[1], [2], [3]], [1, 3])], {}, 400, "nested"),
    ([_tensor([[[1, 2, 3]]], [1, 3])], {}, 400, "deeper than the shape"),
    ([_tensor([1.0], [1], name="f0"), _tensor([2.0], [1], name="f1")], {}, 400, "missing feature.*f2"),
    ([_tensor([1.0], [1], name="f0"), _tensor([1.0], [1], name="zz")], {}, 400, "unknown feature name.*zz"),
    ([_tensor([1.0], [1], name=n) for n in ("f0", "f1", "f2", "f0")], {}, 400, "more than once: f0"),
    ([_tensor([1.0], [1], name="f0"), _tensor([2.0, 3.0], [2], name="f1"), _tensor([1.0], [1], name="f2")],
     {}, 400, "disagree on the number of rows"),
    ([_tensor([1, 2, 3], [1, 3])], {"outputs": [{"name": "logits"}]}, 400, "unknown output 'logits'"),
    ([_tensor([1, 2, 3], [1, 3])], {"outputs": [{"name": "predict"}, {"name": "predict"}]}, 400, "twice"),
    ([_tensor([1, 2, 3], [1, 3])], {"outputs": [{"name": "predict", "parameters": {"binary_data": "yes"}}]},
     400, "\"binary_data\" must be true or false"),
    ([_tensor([1, 2, 3], [1, 3])], {"parameters": {"binary_data_output": 1}}, 400, "must be true or false"),
    ([{**_tensor([1, 2, 3], [1, 3]), "parameters": {"binary_data_size": 24}}], {}, 400,
     "both \"data\" and \"binary_data_size\""),
    ([{"name": "x", "shape": [1, 3], "datatype": "FP64", "parameters": {"binary_data_size": 24}}], {}, 400,
     "no Inference-Header-Content-Length"),
    ([_tensor([1, 2, 3], [1, 3])], {"model_name": 3}, 400, "\"model_name\" must be a string"),
    ([_tensor([1, 2, 3], [1, 3])], {"output": [{"name": "predict"}]}, 400, "unknown field.*output"),
    ([_tensor([1, 2, 3], [1, 3])], {"id": 7}, 400, "\"id\" must be a string"),
    ([_tensor([1, 2, 3], [1, 3])], {"input": []}, 400, "unknown field.*input"),
    ([{"name": "x", "shape": [1, 3], "data": [1, 2, 3]}], {}, 400, "no \"datatype\""),
    ([{**_tensor([1, 2, 3], [1, 3]), "shape": [1.0, 3]}], {}, 400, "list of integers"),
    ([{**_tensor([1, 2, 3], [1, 3]), "shape": [True, 3]}], {}, 400, "list of integers"),
])
def test_bad_requests_are_refused_with_a_message(inputs, extra, status, message):
    with pytest.raises(ProtocolError, match=message) as caught:
        parse_infer_request(_body(inputs, **extra), SCHEMA)
    assert caught.value.status == status


@pytest.mark.parametrize("body, message", [
    (b"", "not valid JSON"), (b"{", "not valid JSON"), (b"[1, 2]", "JSON object"), (b'{"inputs": {}}', "non-empty"),
    (b'{"inputs": [1e400]}', "not valid JSON"), (b'{"inputs": [NaN]}', "not valid JSON"),
])
def test_broken_json_is_refused(body, message):
    with pytest.raises(ProtocolError, match=message):
        parse_infer_request(body, SCHEMA)


def test_the_kserve_sdks_model_name_and_version_are_accepted_and_returned():
    parsed = parse_infer_request(_body([_tensor([1, 2, 3], [1, 3])], model_name="credit", model_version="1"),
                                 SCHEMA)
    assert (parsed.model_name, parsed.model_version) == ("credit", "1")


def test_duplicate_keys_resolve_to_the_last_one_as_documented():
    # RFC 8259 leaves duplicate names open; the module docstring says the last one wins, and it does
    body = (b'{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [9, 9, 9], '
            b'"data": [1, 2, 3]}], "id": "first", "id": "last"}')
    parsed = parse_infer_request(body, SCHEMA)
    np.testing.assert_array_equal(parsed.X, [[1, 2, 3]])
    assert parsed.id == "last" and "last one" in protocol.__doc__


def _binary(tensors, **extra):
    """A body in Triton's binary extension: the JSON header, then each (tensor, raw bytes) in order."""
    header = orjson.dumps({"inputs": [{**t, "parameters": {"binary_data_size": len(raw)}} for t, raw in tensors],
                           **extra})
    return header + b"".join(raw for _, raw in tensors), len(header)


@pytest.mark.parametrize("datatype", ["FP64", "FP32", "INT32", "UINT8"])
def test_binary_inputs_give_the_same_rows_as_json(datatype):
    values = np.array([[1, 2, 3], [4, 5, 250]])
    raw = values.astype(np.dtype(datatype.lower().replace("fp", "float")).newbyteorder("<")).tobytes()
    body, length = _binary([({"name": "input-0", "shape": [2, 3], "datatype": datatype}, raw)])
    np.testing.assert_array_equal(parse_infer_request(body, SCHEMA, length).X, values)


def test_binary_and_json_inputs_mix_per_feature():
    tensors = [({"name": "f2", "shape": [2], "datatype": "FP32"}, np.array([3, 30], "<f4").tobytes()),
               ({"name": "f0", "shape": [2], "datatype": "INT64"}, np.array([1, 10], "<i8").tobytes())]
    header = orjson.dumps({"inputs": [{**t, "parameters": {"binary_data_size": len(raw)}} for t, raw in tensors]
                          + [_tensor([2, 20], [2], name="f1")]})
    body = header + b"".join(raw for _, raw in tensors)
    np.testing.assert_array_equal(parse_infer_request(body, SCHEMA, len(header)).X, [[1, 2, 3], [10, 20, 30]])


def test_a_decoded_request_with_raw_contents_is_checked_without_http():
    """What a gRPC layer does: a dict in the JSON form, the raw tensors' bytes beside it."""
    document = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32",
                            "parameters": {"binary_data_size": 12}}], "model_name": "m"}
    parsed = protocol.check_infer_request(document, SCHEMA, np.array([1, 2, 3], "<f4").tobytes())
    np.testing.assert_array_equal(parsed.X, [[1, 2, 3]])
    with pytest.raises(ProtocolError, match="take 12 bytes, binary_data_size says 8"):
        protocol.check_infer_request({**document, "inputs": [{**document["inputs"][0],
                                                              "parameters": {"binary_data_size": 8}}]},
                                     SCHEMA, b"\0" * 8)


@pytest.mark.parametrize("tensors, length_change, message", [
    ([({"name": "x", "shape": [1, 3], "datatype": "FP64"}, b"\0" * 16)], 0, "take 24 bytes, binary_data_size says 16"),
    ([({"name": "x", "shape": [1, 3], "datatype": "FP64"}, np.array([1, np.nan, 3]).tobytes())], 0, "finite"),
    ([({"name": "x", "shape": [1, 3], "datatype": "FP32"}, np.array([1, np.inf, 3], "<f4").tobytes())], 0,
     "finite"),
    ([({"name": "x", "shape": [1, 3], "datatype": "BOOL"}, b"\1\0\1")], 0, "'BOOL' is not supported"),
    ([({"name": "x", "shape": [1, 3], "datatype": "BYTES"}, b"\0" * 24)], 0, "'BYTES' is not supported"),
    ([({"name": "x", "shape": [1, 3], "datatype": "FP64"}, b"\0" * 24)], 10_000, "Inference-Header-Content-Length"),
    ([({"name": "x", "shape": [1, 3], "datatype": "FP64"}, b"\0" * 24)], -3, "not valid JSON"),
])
def test_bad_binary_requests_are_refused_like_json_ones(tensors, length_change, message):
    body, length = _binary(tensors)
    with pytest.raises(ProtocolError, match=message) as caught:
        parse_infer_request(body, SCHEMA, length + length_change)
    assert caught.value.status == 400


def test_binary_sizes_must_account_for_every_byte():
    body, length = _binary([({"name": "x", "shape": [1, 3], "datatype": "FP64"}, b"\0" * 24)])
    with pytest.raises(ProtocolError, match="8 bytes after the binary tensors"):
        parse_infer_request(body + b"\0" * 8, SCHEMA, length)
    header = orjson.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                       "parameters": {"binary_data_size": 48}}]})
    with pytest.raises(ProtocolError, match="past the end of the body"):
        parse_infer_request(header + b"\0" * 24, SCHEMA, len(header))


def test_binary_outputs_follow_binary_data_output_unless_an_output_says_otherwise():
    tensor = _tensor([1, 2, 3], [1, 3])
    assert parse_infer_request(_body([tensor], parameters={"binary_data_output": True}), SCHEMA
                               ).binary_outputs == {"predict", "predict_proba"}
    parsed = parse_infer_request(_body([tensor], parameters={"binary_data_output": True}, outputs=[
        {"name": "predict", "parameters": {"binary_data": False}}, {"name": "explanation"}]), SCHEMA)
    assert parsed.binary_outputs == {"explanation"}
    parsed = parse_infer_request(_body([tensor], outputs=[{"name": "predict", "parameters": {"binary_data": True}},
                                                          {"name": "predict_proba"}]), SCHEMA)
    assert parsed.binary_outputs == {"predict"}


def test_a_binary_response_is_the_json_header_then_the_raw_tensors():
    proba, labels = np.array([[0.25, 0.75], [0.5, 0.5]]), np.array(["yes", "no"])
    body, length = protocol.infer_response("m", "1", None, [
        {"name": "predict_proba", "datatype": "FP64", "data": proba},
        {"name": "predict", "datatype": "BYTES", "data": labels},
        {"name": "explanation", "datatype": "FP64", "data": np.zeros((2, 3)), "parameters": {"base_value": -1.0}},
    ], binary=frozenset({"predict_proba", "predict"}))
    header = orjson.loads(body[:length])
    first, second, third = header["outputs"]
    assert first["parameters"] == {"binary_data_size": 32} and "data" not in first and first["shape"] == [2, 2]
    assert second["parameters"] == {"binary_data_size": 4 + 3 + 4 + 2}
    assert third["data"] == [0.0] * 6 and third["parameters"] == {"base_value": -1.0}
    np.testing.assert_array_equal(np.frombuffer(body[length:length + 32], "<f8").reshape(2, 2), proba)
    assert body[length + 32:] == b"\3\0\0\0yes\2\0\0\0no"


def test_the_response_is_row_major_json_with_shapes():
    body, header_length = protocol.infer_response("m", "1", "r-1", [
        {"name": "predict_proba", "datatype": "FP64", "data": np.array([[0.25, 0.75], [0.5, 0.5]])},
        {"name": "explanation", "datatype": "FP64", "data": np.zeros((2, 3)), "parameters": {"base_value": -1.0}},
    ])
    answer = orjson.loads(body)
    assert header_length is None
    assert answer["id"] == "r-1" and answer["model_name"] == "m" and answer["model_version"] == "1"
    assert answer["outputs"][0] == {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64",
                                    "data": [0.25, 0.75, 0.5, 0.5]}
    assert answer["outputs"][1]["parameters"] == {"base_value": -1.0}


# -- the server, over HTTP -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with course_model_server(tmp_path_factory.mktemp("serving"), GLASSBOX_MAX_BATCH_ROWS=2000,
                             GLASSBOX_MAX_BODY_BYTES=1_000_000) as (local, key, model_dir):
        with httpx.Client(base_url=local.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
            yield SimpleNamespace(url=local.url, key=key, client=client, model_dir=model_dir, local=local)


@pytest.fixture(scope="module")
def reference():
    art = artifacts.load(artifacts.build_course_model())
    data = load_credit()
    _, X_test, _, _ = train_test(data)
    return SimpleNamespace(model=art.model, X=X_test.drop(columns=[LEAKY_FEATURE])[art.feature_names],
                           features=art.feature_names)


def _infer(server, X, outputs=None, **extra):
    body = {"inputs": [{"name": "input-0", "shape": list(X.shape), "datatype": "FP64",
                        "data": np.asarray(X, dtype=float).ravel().tolist()}], **extra}
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    answer = server.client.post("/v2/models/credit/infer", content=orjson.dumps(body),
                                headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    return {o["name"]: (np.asarray(o["data"]).reshape(o["shape"]), o) for o in answer.json()["outputs"]}


def test_health_and_metadata(server, reference):
    anonymous = httpx.Client(base_url=server.url)
    assert anonymous.get("/v2/health/live").json() == {"live": True}
    assert anonymous.get("/v2/health/ready").json() == {"ready": True}
    assert anonymous.get("/v2/models/credit/ready").json() == {"name": "credit", "ready": True}
    assert server.client.get("/v2").json()["name"] == "glassbox"
    assert server.client.get("/v2").json()["extensions"] == ["model_repository"]
    meta = server.client.get("/v2/models/credit").json()
    assert meta["name"] == "credit" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 9]}]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba", "explanation"]
    assert meta["parameters"]["feature_names"] == reference.features
    assert meta["parameters"]["manifest_sha256"] == artifacts.manifest_digest(server.model_dir)
    assert server.client.get("/v2/models/credit/versions/1").json() == meta


def test_predictions_match_the_model_in_process(server, reference):
    for rows in (reference.X.iloc[:1], reference.X.iloc[:37], reference.X.iloc[:500]):
        out = _infer(server, rows.to_numpy())
        expected = reference.model.predict_proba(rows)
        assert out["predict_proba"][1]["datatype"] == "FP64" and out["predict"][1]["datatype"] == "INT64"
        np.testing.assert_allclose(out["predict_proba"][0], expected, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(out["predict"][0], reference.model.predict(rows))


def test_concurrent_large_batches_each_get_their_own_rows_answers(server, reference):
    """Batches over COMPILED_MAX_ROWS rows go to the batch workers, side by side: no answer goes to another."""
    X = reference.X.to_numpy()
    starts = range(0, 8 * 100, 100)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda start: _infer(server, X[start:start + 300]), starts))
    for start, out in zip(starts, answers):
        np.testing.assert_allclose(out["predict_proba"][0], reference.model.predict_proba(reference.X[start:start + 300]),
                                   rtol=0, atol=1e-9)


def test_the_batch_workers_are_one_per_cpu_with_one_openmp_thread_each(reference):  # the model loads OpenMP
    workers = batch_workers()
    assert workers._max_workers == len(os.sched_getaffinity(0)) and workers is batch_workers()
    threads = {info["user_api"]: info["num_threads"]
               for info in workers.submit(threadpool_info).result(timeout=30)}
    assert threads.get("openmp") == 1, threads


def test_the_batch_workers_count_the_cpus_where_there_is_no_cpu_affinity(monkeypatch):  # macOS
    monkeypatch.delattr(os, "sched_getaffinity")
    workers = batch_workers.__wrapped__()
    assert workers._max_workers == os.cpu_count()
    workers.shutdown()


def test_one_tensor_per_feature_gives_the_same_answer(server, reference):
    rows = reference.X.iloc[:4]
    inputs = [{"name": name, "shape": [4], "datatype": "FP64", "data": rows[name].tolist()}
              for name in reversed(reference.features)]
    answer = server.client.post("/v2/models/credit/infer", json={"inputs": inputs, "id": "per-feature"}).json()
    assert answer["id"] == "per-feature"
    proba = dict((o["name"], o["data"]) for o in answer["outputs"])["predict_proba"]
    np.testing.assert_allclose(np.reshape(proba, (4, 2)), reference.model.predict_proba(rows), atol=1e-9)


def test_explanations_add_up_and_match_shap_in_process(server, reference):
    rows = reference.X.iloc[:70]  # explained in chunks: the rows must come back whole and in order
    out = _infer(server, rows.to_numpy(), outputs=["predict_proba", "explanation"])
    contributions, tensor = out["explanation"]
    assert contributions.shape == (70, 9) and tensor["parameters"]["feature_names"] == reference.features
    base = tensor["parameters"]["base_value"]
    p = out["predict_proba"][0][:, 1]
    np.testing.assert_allclose(base + contributions.sum(axis=1), np.log(p / (1 - p)), atol=1e-6)
    expected = shap.TreeExplainer(reference.model).shap_values(rows.to_numpy())
    np.testing.assert_allclose(contributions, expected, atol=1e-9)


def test_the_versioned_route_and_unknown_models(server, reference):
    body = {"inputs": [{"name": "x", "shape": [1, 9], "datatype": "FP64", "data": [1.0] * 9}]}
    assert server.client.post("/v2/models/credit/versions/1/infer", json=body).status_code == 200
    for path in ("/v2/models/credit/versions/2/infer", "/v2/models/other/infer"):
        answer = server.client.post(path, json=body)
        assert answer.status_code == 404 and "credit" in answer.json()["error"]


@pytest.mark.parametrize("method, path, headers, content, status", [
    ("GET", "/v2/models/credit/infer", {}, None, 405),
    ("GET", "/v3/anything", {}, None, 404),
    ("POST", "/v2/models/credit/infer", {"content-type": "text/plain"}, b"{}", 415),
    ("POST", "/v2/models/credit/infer", {"content-type": "application/json", "content-encoding": "gzip"}, b"{}", 415),
    ("POST", "/v2/models/credit/infer", {"content-type": "application/json"}, b"", 400),
    ("POST", "/v2/models/credit/infer", {"content-type": "application/json"}, b" " * 1_000_001, 413),
    ("POST", "/v2/models/credit/infer", {"inference-header-content-length": "10"}, b"{}", 400),
])
def test_http_level_mistakes_get_a_4xx_with_an_error_body(server, method, path, headers, content, status):
    answer = server.client.request(method, path, headers=headers, content=content)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert isinstance(answer.json()["error"], str) and answer.json()["error"]


def test_a_chunked_body_over_the_limit_is_refused(server):
    def chunks():
        for _ in range(200):
            yield b" " * 10_000

    answer = server.client.post("/v2/models/credit/infer", content=chunks(),
                                headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "limit" in answer.json()["error"]


def test_metrics_count_requests_errors_latency_and_classes(server, reference):
    from glassbox import monitoring

    before = monitoring.scrape(server.url + "/metrics")
    rows = reference.X.iloc[:30]
    predicted = _infer(server, rows.to_numpy())["predict"][0]
    server.client.post("/v2/models/credit/infer", content=b"{", headers={"content-type": "application/json"})
    after = monitoring.scrape(server.url + "/metrics")

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("glassbox_requests_total", endpoint="infer", code="200") == 1
    assert delta("glassbox_request_errors_total", endpoint="infer", code="400") == 1
    assert delta("glassbox_request_duration_seconds_count", endpoint="infer") == 2
    for label in (0, 1):
        assert delta("glassbox_predictions_total", **{"class": str(label)}) == np.sum(predicted == label)
    assert after.value("glassbox_model_info", model="credit", compiled="true") == 1
    assert after.value("glassbox_api_key_version") == 1


def test_the_compiled_trees_are_bit_identical_to_scikit_learn(reference):
    runtime = ModelRuntime(artifacts.load(artifacts.build_course_model()), explain=False)
    assert runtime.compiled
    X = reference.X.to_numpy()
    for n in (1, 2, 64):
        np.testing.assert_array_equal(runtime.predict_proba(X[:n]), reference.model.predict_proba(reference.X[:n]))
    np.testing.assert_array_equal(runtime.predict_proba(X), reference.model.predict_proba(reference.X))


def test_a_reloaded_model_replaces_the_previous_model_series():
    from glassbox.serving.metrics import ServerMetrics

    metrics = ServerMetrics()
    metrics.model("credit", "1", "a" * 64, True)
    metrics.model("credit", "2", "b" * 64, True)
    series = [line for line in metrics.render().decode().splitlines() if line.startswith("glassbox_model_info{")]
    assert len(series) == 1 and 'version="2"' in series[0]
