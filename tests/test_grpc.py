"""The protocol's gRPC API through a client nobody here wrote, ``tritonclient.grpc``, on a real socket.

One server serves REST and gRPC; answers are compared with the model in this process and with REST's answer to
the same rows (tritonclient's HTTP client, JSON form). Refusals carry gRPC status codes and REST's messages;
a key rotated in the key file is honoured at once, as on REST, and so is a model loaded through REST's
repository extension.
"""

import json
import shutil

import httpx
import numpy as np
import pytest
import shap
from sklearn.ensemble import HistGradientBoostingClassifier
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from glassbox import artifacts
from glassbox.data import LEAKY_FEATURE, load_credit, train_test
from glassbox.serving import LocalServer

from helpers import course_model_server, eventually, write_atomically

MAX_ROWS = 120
OUTPUTS = ("predict", "predict_proba", "explanation")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    _, X_test, _, _ = train_test(load_credit())
    directory = tmp_path_factory.mktemp("grpc")
    model_dir = shutil.copytree(artifacts.build_course_model(), directory / "model")  # the last test replaces it
    with course_model_server(directory, grpc=True, GLASSBOX_MAX_BATCH_ROWS=MAX_ROWS,
                             GLASSBOX_MODEL_DIR=model_dir) as (local, key, _):
        art = artifacts.load(model_dir)
        X = X_test.drop(columns=[LEAKY_FEATURE])[art.feature_names].to_numpy(dtype=np.float64)
        client = triton_grpc.InferenceServerClient(local.grpc_target)
        rest = triton_http.InferenceServerClient(local.url.removeprefix("http://"))
        yield {"client": client, "rest": rest, "key": key, "key_file": directory / "api-key", "art": art, "X": X,
               "local": local, "model_dir": model_dir}
        client.close()
        rest.close()


def _auth(key):
    return {"authorization": f"Bearer {key}"}


def _input(X, datatype="FP64"):
    tensor = triton_grpc.InferInput("input-0", list(X.shape), datatype)
    tensor.set_data_from_numpy(X)                      # raw_input_contents, what tritonclient.grpc always sends
    return tensor


def _infer(setup, X, outputs=OUTPUTS, datatype="FP64", key=None):
    return setup["client"].infer("credit", [_input(X, datatype)], headers=_auth(key or setup["key"]),
                                 outputs=[triton_grpc.InferRequestedOutput(name) for name in outputs])


def _refusal(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def test_health_is_open_and_says_ready(setup):
    client = setup["client"]
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("credit")
    assert client.is_model_ready("credit", model_version="1")
    refused = _refusal(lambda: client.is_model_ready("other"))
    assert refused.status() == "StatusCode.NOT_FOUND" and "this server serves 'credit'" in refused.message()


def test_metadata_needs_the_key_and_describes_the_model(setup):
    client, art = setup["client"], setup["art"]
    server = client.get_server_metadata(headers=_auth(setup["key"]), as_json=True)
    assert server["name"] == "glassbox" and "model_repository" in server["extensions"]
    meta = client.get_model_metadata("credit", headers=_auth(setup["key"]), as_json=True)
    assert meta["versions"] == ["1"] and meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": ["-1", str(len(art.feature_names))]}]
    assert [output["name"] for output in meta["outputs"]] == list(OUTPUTS)
    refused = _refusal(lambda: client.get_model_metadata("credit"))
    assert refused.status() == "StatusCode.UNAUTHENTICATED"


@pytest.mark.parametrize("rows", [1, 40, MAX_ROWS])   # inline, explained on a worker, scikit-learn's batch path
def test_inference_matches_the_model_in_process(setup, rows):
    art, X = setup["art"], setup["X"][:rows]
    result = _infer(setup, X)
    np.testing.assert_allclose(result.as_numpy("predict_proba"), art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.as_numpy("predict"), art.model.predict(X))
    np.testing.assert_allclose(result.as_numpy("explanation"), shap.TreeExplainer(art.model).shap_values(X),
                               atol=1e-9)


def test_the_same_rows_get_the_same_numbers_as_rest(setup):
    X = setup["X"][:12]
    answer = _infer(setup, X)
    tensor = triton_http.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X, binary_data=False)
    rest = setup["rest"].infer("credit", [tensor], headers={"Authorization": f"Bearer {setup['key']}"},
                               outputs=[triton_http.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS])
    for name in OUTPUTS:
        np.testing.assert_array_equal(answer.as_numpy(name), rest.as_numpy(name))
    grpc_parameters = answer.get_output("explanation").parameters
    rest_parameters = rest.get_output("explanation")["parameters"]
    assert json.loads(grpc_parameters["base_value"].string_param) == rest_parameters["base_value"]
    assert json.loads(grpc_parameters["feature_names"].string_param) == rest_parameters["feature_names"]


def test_defaults_ids_and_fp32(setup):
    art, X = setup["art"], setup["X"][:5]
    result = setup["client"].infer("credit", [_input(X.astype(np.float32), "FP32")], headers=_auth(setup["key"]),
                                   request_id="grpc-7", model_version="1")            # no outputs: the defaults
    response = result.get_response()
    assert response.id == "grpc-7" and response.model_version == "1"
    assert [output.name for output in response.outputs] == ["predict", "predict_proba"]
    expected = art.model.predict_proba(X.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, rtol=0, atol=1e-9)


def test_explanations_add_up_to_the_log_odds(setup):
    result = _infer(setup, setup["X"][:6])
    base = json.loads(result.get_output("explanation").parameters["base_value"].string_param)
    p = result.as_numpy("predict_proba")[:, 1]
    np.testing.assert_allclose(base + result.as_numpy("explanation").sum(axis=1), np.log(p / (1 - p)), atol=1e-6)


def test_bad_requests_get_invalid_argument_with_rests_message(setup):
    X = setup["X"][:2]
    short = _refusal(lambda: _infer(setup, X[:, :-1]))
    assert short.status() == "StatusCode.INVALID_ARGUMENT"
    assert short.message().startswith("input 'input-0' has shape [2, 8]; the model takes [n, 9]")
    flags = _refusal(lambda: _infer(setup, X > 0, datatype="BOOL"))
    assert flags.status() == "StatusCode.INVALID_ARGUMENT" and "'BOOL' is not supported" in flags.message()
    nan = X.copy()
    nan[1, 3] = np.nan
    assert "must be finite" in _refusal(lambda: _infer(setup, nan)).message()
    unknown = _refusal(lambda: _infer(setup, X, outputs=("predict", "shap")))
    assert unknown.status() == "StatusCode.INVALID_ARGUMENT" and "unknown output 'shap'" in unknown.message()
    other = _refusal(lambda: setup["client"].infer("other", [_input(X)], headers=_auth(setup["key"])))
    assert other.status() == "StatusCode.NOT_FOUND"
    many = _refusal(lambda: _infer(setup, setup["X"][:MAX_ROWS + 1]))
    assert many.status() == "StatusCode.RESOURCE_EXHAUSTED" and f"at most {MAX_ROWS}" in many.message()
    huge = _refusal(lambda: _infer(setup, np.zeros((60_000, 9)), outputs=("predict",)))  # over REST's 4 MiB too
    assert huge.status() == "StatusCode.RESOURCE_EXHAUSTED"
    for refused in (short, flags, unknown, many):
        assert "/" not in refused.message()           # no server path in any answer


def test_counted_in_the_servers_metrics(setup):
    _infer(setup, setup["X"][:1])
    text = httpx.get(setup["local"].url + "/metrics", timeout=10).text
    assert 'glassbox_requests_total{code="200",endpoint="grpc_infer"}' in text
    assert 'glassbox_requests_total{code="400",endpoint="grpc_infer"}' in text


def test_a_wrong_key_is_refused_and_a_rotated_key_honoured(setup):
    X = setup["X"][:1]
    for key in (None, "not-the-key"):
        headers = {} if key is None else _auth(key)
        refused = _refusal(lambda: setup["client"].infer("credit", [_input(X)], headers=headers))
        assert refused.status() == "StatusCode.UNAUTHENTICATED" and "Authorization: Bearer" in refused.message()
    old, new = setup["key"], "rotated-" + setup["key"]
    write_atomically(setup["key_file"], new)          # as Vault Agent renders a new version
    try:
        assert eventually(lambda: _accepted(setup, X, new))   # an unknown key triggers a re-read of the file
        assert _refusal(lambda: _infer(setup, X, key=old)).status() == "StatusCode.UNAUTHENTICATED"
    finally:
        write_atomically(setup["key_file"], old)
        assert eventually(lambda: _accepted(setup, X, old))


def _accepted(setup, X, key) -> bool:
    try:
        _infer(setup, X, outputs=("predict",), key=key)
    except InferenceServerException:
        return False
    return True


def test_a_grpc_port_in_use_stops_the_start_in_one_line(setup):
    taken = setup["local"].grpc_target.rsplit(":", 1)[1]    # the running server's own gRPC port
    second = LocalServer({"GLASSBOX_MODEL_DIR": artifacts.build_course_model(),
                          "GLASSBOX_API_KEY_FILE": setup["key_file"], "GLASSBOX_GRPC_PORT": taken})
    try:
        with pytest.raises(RuntimeError, match="exited with code 1") as caught:
            second.start()   # grpcio's default SO_REUSEPORT would have let it share the port
    finally:
        second.stop()
    assert f"error: cannot listen for gRPC on 127.0.0.1:{taken} (GLASSBOX_GRPC_PORT)" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_a_model_loaded_through_rests_repository_extension_serves_grpc_too(setup):
    """Last: it replaces the module's model."""
    art, client = setup["art"], setup["client"]
    X_train, X_test, y_train, y_test = train_test(load_credit(1500, seed=11), seed=11)
    features = list(art.feature_names)
    candidate = HistGradientBoostingClassifier(max_iter=15, random_state=11).fit(X_train[features], y_train)
    artifacts.save(candidate, setup["model_dir"], X_train=X_train[features], X_test=X_test[features],
                   y_test=y_test, name="credit", version="2", overwrite=True)
    loaded = httpx.post(setup["local"].url + "/v2/repository/models/credit/load", timeout=60,
                        headers={"Authorization": f"Bearer {setup['key']}"})
    assert loaded.status_code == 200, loaded.text
    assert client.is_model_ready("credit", model_version="2")
    assert _refusal(lambda: client.is_model_ready("credit", model_version="1")).status() == "StatusCode.NOT_FOUND"
    X = setup["X"][:4]
    result = _infer(setup, X, outputs=("predict_proba",))
    assert result.get_response().model_version == "2"
    np.testing.assert_allclose(result.as_numpy("predict_proba"), candidate.predict_proba(X), rtol=0, atol=1e-9)
    assert np.abs(candidate.predict_proba(X) - art.model.predict_proba(X)).max() > 1e-3   # another model indeed
