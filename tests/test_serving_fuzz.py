"""Fuzzing the model server with generated bad requests: never a 5xx, always a 4xx with {"error": "..."}.

A seeded generator (reproducible: the case number says how to rebuild a failing case) mutates valid requests
in ways that make them invalid by construction: broken or truncated JSON, wrong types anywhere, bad shapes,
bad datatypes, non-numbers among the values, wrong nesting, missing or extra features, unknown outputs,
binary-extension flags, binary tensors that lie about their sizes or values, huge bodies. Every request goes
over real HTTP to a real server process.
"""

import copy
import math
import random
import struct

import httpx
import orjson
import pytest

from glassbox import artifacts, monitoring

from helpers import course_model_server

N_CASES = 600
SEED = 20240611
OTHER_VALUES = [None, True, False, 0, -1, 2**63, 1.5, -0.0, 1e308, "", "x", "FP64", "NaN", "Infinity", [], [None],
                [[]], {}, {"a": 1}, [1, [2]], "\u0000", "\ud7ff" * 3]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with course_model_server(tmp_path_factory.mktemp("fuzz"), GLASSBOX_MAX_BODY_BYTES=200_000,
                             GLASSBOX_MAX_BATCH_ROWS=500) as (local, key, model_dir):
        features = artifacts.load(model_dir).feature_names
        with httpx.Client(base_url=local.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
            yield local, client, features


def _matrix_request(rng, features, rows=None):
    rows = rows or rng.randint(1, 4)
    return {"id": "fuzz", "inputs": [{"name": "input-0", "shape": [rows, len(features)], "datatype": "FP64",
                                      "data": [rng.uniform(0, 50) for _ in range(rows * len(features))]}],
            "outputs": [{"name": rng.choice(["predict", "predict_proba", "explanation"])}]}


def _per_feature_request(rng, features, rows=None):
    rows = rows or rng.randint(1, 3)
    return {"inputs": [{"name": name, "shape": [rows], "datatype": "FP64",
                        "data": [rng.uniform(0, 50) for _ in range(rows)]} for name in features]}


def _wrong_type(rng, valid_type):
    return rng.choice([v for v in OTHER_VALUES if not isinstance(v, valid_type) or isinstance(v, bool)])


# Each mutator takes (rng, request, features) and returns bytes that must be refused, or (bytes, the JSON
# header's length) for a body in Triton's binary extension.

def _truncate(rng, request, features):
    body = orjson.dumps(request)
    return body[:rng.randint(0, len(body) - 1)]


def _garbage(rng, request, features):
    body = bytearray(orjson.dumps(request))
    for _ in range(rng.randint(1, 5)):
        body[rng.randrange(len(body))] = rng.choice(b'{}[]:,"\\\x00\xff')
    try:  # a flip that still parses into a valid request is possible but rare: make sure it is not
        orjson.loads(bytes(body))
        return b"{" + bytes(body)
    except orjson.JSONDecodeError:
        return bytes(body)


def _not_an_object(rng, request, features):
    return orjson.dumps(rng.choice([None, True, 1, "inputs", [request], [], 3.5]))


def _deep_nesting(rng, request, features):
    depth = rng.choice([100, 1000, 5000])
    return b'{"inputs": ' + b"[" * depth + b"]" * depth + b"}"


def _top_level_field(rng, request, features):
    request = copy.deepcopy(request)
    key = rng.choice(["inputs", "outputs", "id", "parameters", "extra"])
    if key == "inputs":
        request["inputs"] = rng.choice([None, {}, [], "x", 1, [None], [[]], True])
    elif key == "outputs":
        request["outputs"] = rng.choice([{}, [], "predict", 1, [None], ["predict"], [{"name": 1}],
                                         [{"name": "logits"}], [{"name": "predict", "extra": 1}], True])
    elif key == "id":
        request["id"] = _wrong_type(rng, str)
    elif key == "parameters":
        request["parameters"] = rng.choice([[], "p", 1, True, {"binary_data_output": "yes"}])
    else:
        request[rng.choice(["input", "output", "model", "data", "inputs "])] = rng.choice(OTHER_VALUES)
    return orjson.dumps(request)


def _tensor_field(rng, request, features):
    request = copy.deepcopy(request)
    tensor = rng.choice(request["inputs"])
    key = rng.choice(["name", "shape", "datatype", "data", "parameters", "missing", "extra"])
    if key == "name":
        tensor["name"] = rng.choice([None, 1, "", [], {}, True])
    elif key == "shape":
        tensor["shape"] = rng.choice([None, "1,11", {}, [], [1.0, 11], [True, 11], [-1, 11], [1, -11], [0, 11],
                                      [2**62, len(features)], [1, len(features) + 1], [1, len(features) - 1],
                                      [1, 1, len(features)], [len(features)], [[1], [11]], ["1", "11"]])
    elif key == "datatype":
        tensor["datatype"] = rng.choice([None, 1, "", "fp64", "FP128", "BOOL", "BYTES", "STRING", "float64", []])
    elif key == "data":
        tensor["data"] = rng.choice([None, {}, "1,2,3", 1.0, True, []])
    elif key == "parameters":
        tensor["parameters"] = rng.choice([[], "p", 1, {"binary_data_size": 8},
                                           {"shared_memory_region": "r"}])
    elif key == "missing":
        tensor.pop(rng.choice(["name", "shape", "datatype", "data"]))
    else:
        tensor[rng.choice(["type", "dims", "contents", "dtype"])] = 1
    return orjson.dumps(request)


def _bad_value(rng, request, features):
    request = copy.deepcopy(request)
    tensor = rng.choice(request["inputs"])
    data = tensor["data"]
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] = rng.choice([None, True, False, "1.0", "NaN", "inf", [], {}, [1.0]])
    return orjson.dumps(request)


def _bad_count(rng, request, features):
    request = copy.deepcopy(request)
    tensor = rng.choice(request["inputs"])
    if rng.random() < 0.5 and len(tensor["data"]) > 1:
        del tensor["data"][rng.randrange(len(tensor["data"]))]
    else:
        tensor["data"].extend([1.0] * rng.randint(1, 5))
    return orjson.dumps(request)


def _wrong_nesting(rng, request, features):
    request = copy.deepcopy(request)
    tensor = request["inputs"][0]
    rows, width = (tensor["shape"] + [1])[:2]
    flat = tensor["data"]
    choice = rng.randint(0, 3)
    if choice == 0:    # rows of the wrong length
        step = max(width - 1, 1)
        tensor["data"] = [flat[i:i + step] for i in range(0, len(flat), step)]
    elif choice == 1:  # one level too deep
        tensor["data"] = [[[v] for v in flat]]
    elif choice == 2:  # ragged
        tensor["data"] = [flat[:1], flat[1:]]
    else:              # transposed
        tensor["data"] = [[flat[r * width + c] for r in range(rows)] for c in range(width)] + ([[]] if rows == width else [])
    return orjson.dumps(request)


def _out_of_range(rng, request, features):
    request = copy.deepcopy(request)
    tensor = rng.choice(request["inputs"])
    datatype, value = rng.choice([("FP32", 1e39), ("FP16", 70000.0), ("INT8", 128), ("UINT8", -1),
                                  ("INT64", 2**63), ("UINT64", 2**64 - 1 + 0.5), ("INT32", 1.5), ("FP16", -1e6)])
    tensor["datatype"] = datatype
    tensor["data"] = [int(v) if "INT" in datatype else v for v in tensor["data"]]
    tensor["data"][rng.randrange(len(tensor["data"]))] = value
    return orjson.dumps(request)


def _features(rng, request, features):
    request = _per_feature_request(rng, features)
    choice = rng.randint(0, 3)
    if choice == 0:
        request["inputs"].pop(rng.randrange(len(request["inputs"])))
    elif choice == 1:
        request["inputs"].append({"name": "days_in_collections", "shape": request["inputs"][0]["shape"],
                                  "datatype": "FP64", "data": request["inputs"][0]["data"]})
    elif choice == 2:
        request["inputs"].append(copy.deepcopy(rng.choice(request["inputs"])))
    else:
        tensor = rng.choice(request["inputs"])
        tensor["shape"] = [tensor["shape"][0] + 1]
        tensor["data"] = tensor["data"] + [1.0]
    return orjson.dumps(request)


def _binary(rng, request, features):
    request = copy.deepcopy(request)
    tensor = request["inputs"][0]
    values = struct.pack(f"<{len(tensor['data'])}d", *tensor.pop("data"))
    tensor["parameters"] = {"binary_data_size": len(values)}
    choice = rng.randint(0, 7)
    if choice == 0:
        tensor["parameters"]["binary_data_size"] -= 8
    elif choice == 1:
        values += b"\0" * rng.choice([1, 8])
    elif choice == 2:
        values = values[:8] + struct.pack("<d", rng.choice([math.nan, math.inf, -math.inf])) + values[16:]
    elif choice == 3:
        tensor["datatype"] = rng.choice(["BOOL", "BYTES", "FP128", ""])
    elif choice == 4:
        tensor["data"] = [1.0]
    elif choice == 5:
        tensor["parameters"]["binary_data_size"] = rng.choice([-8, "8", 8.0, None, True])
    header = orjson.dumps(request)
    length = len(header)
    if choice == 6:
        length += rng.choice([len(values) + 1, 10_000])
    elif choice == 7:
        length -= rng.randint(1, length - 1)
    return header + values, length


def _too_many_rows(rng, request, features):
    return orjson.dumps(_matrix_request(rng, features, rows=rng.choice([501, 1000])))


def _huge_body(rng, request, features):
    return b'{"inputs": [' + b" " * rng.choice([200_001, 1_000_000, 3_000_000]) + b"]}"


MUTATORS = [_truncate, _garbage, _not_an_object, _deep_nesting, _top_level_field, _tensor_field, _bad_value,
            _bad_count, _wrong_nesting, _out_of_range, _features, _binary, _too_many_rows, _huge_body]


def _case(number, features):
    rng = random.Random(SEED * 1000 + number)
    request = (_matrix_request if rng.random() < 0.7 else _per_feature_request)(rng, features)
    mutator = MUTATORS[number % len(MUTATORS)]
    body = mutator(rng, request, features)
    return (mutator.__name__, *body) if type(body) is tuple else (mutator.__name__, body, None)


def test_generated_bad_requests_never_get_a_5xx(server):
    local, client, features = server
    before = monitoring.scrape(local.url + "/metrics")
    failures, statuses = [], {}
    for number in range(N_CASES):
        name, body, header_length = _case(number, features)
        headers = ({"content-type": "application/json"} if header_length is None else
                   {"content-type": "application/octet-stream", "inference-header-content-length": str(header_length)})
        answer = client.post("/v2/models/credit/infer", content=body, headers=headers)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        try:
            error = answer.json()["error"]
            ok = 400 <= answer.status_code < 500 and isinstance(error, str) and error
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            failures.append(f"case {number} ({name}): {answer.status_code} {answer.text[:200]!r}")
    assert not failures, f"{len(failures)} of {N_CASES} cases:\n" + "\n".join(failures[:20])
    assert set(statuses) <= {400, 413} and statuses.get(413, 0) >= 2 * N_CASES // len(MUTATORS) - 2
    after = monitoring.scrape(local.url + "/metrics")
    assert after.value("glassbox_request_errors_total", code="500") == 0
    assert after.value("glassbox_request_errors_total", endpoint="infer") - \
        before.value("glassbox_request_errors_total", endpoint="infer") == N_CASES
    # the server is still well and answers a valid request
    valid = _matrix_request(random.Random(0), features)
    answer = client.post("/v2/models/credit/infer", json=valid)
    assert answer.status_code == 200 and answer.json()["id"] == "fuzz"
    assert local.running


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/jsonp", "application/octet-stream"])
def test_other_content_types_are_refused(server, content_type):
    local, client, features = server
    body = orjson.dumps(_matrix_request(random.Random(1), features))
    answer = client.post("/v2/models/credit/infer", content=body, headers={"content-type": content_type})
    assert answer.status_code == 415 and "application/json" in answer.json()["error"]


def test_every_mutator_is_exercised_and_every_case_is_invalid_by_construction(server):
    """A guard on the generator itself: each mutator yields bodies the protocol refuses even in-process."""
    from glassbox.serving.protocol import ModelSchema, ProtocolError, parse_infer_request

    _, _, features = server
    schema = ModelSchema(tuple(features), max_rows=500)
    seen = set()
    for number in range(N_CASES):
        name, body, header_length = _case(number, features)
        seen.add(name)
        if name == "_huge_body":
            continue  # refused by the HTTP layer's size limit before parsing
        with pytest.raises(ProtocolError):
            parse_infer_request(body, schema, header_length)
    assert seen == {m.__name__ for m in MUTATORS}
