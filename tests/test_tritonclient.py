"""A protocol client nobody here wrote, tritonclient's HTTP client, works against the course's server.

The client's defaults (binary tensors in, ``binary_data_output`` with no ``outputs``), binary outputs asked for
one by one, and the protocol's JSON form (``binary_data=False`` on ``set_data_from_numpy`` and on each
``InferRequestedOutput``). Results are compared with the model's ``predict_proba`` in this process.
"""

import numpy as np
import pytest
import shap
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from glassbox import artifacts
from glassbox.data import LEAKY_FEATURE, load_credit, train_test

from helpers import course_model_server


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    _, X_test, _, _ = train_test(load_credit())
    with course_model_server(tmp_path_factory.mktemp("triton")) as (local, key, model_dir):
        art = artifacts.load(model_dir)
        client = triton.InferenceServerClient(local.url.removeprefix("http://"))
        yield client, (lambda: {"Authorization": f"Bearer {key}"}), art, X_test.drop(columns=[LEAKY_FEATURE])
        client.close()


# tritonclient adds headers to the dict it is given (Inference-Header-Content-Length for binary bodies), so
# every call gets a fresh one.
def _input(X, datatype="FP64", name="input-0"):
    tensor = triton.InferInput(name, list(X.shape), datatype)
    tensor.set_data_from_numpy(X, binary_data=False)
    return tensor


def test_health_and_metadata_through_the_client(setup):
    client, headers, art, _ = setup
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("credit")
    assert client.get_server_metadata(headers=headers())["name"] == "glassbox"
    meta = client.get_model_metadata("credit", headers=headers())
    assert meta["inputs"][0]["shape"] == [-1, len(art.feature_names)]
    assert meta["parameters"]["feature_names"] == art.feature_names


@pytest.mark.parametrize("rows", [1, 25])
def test_inference_matches_predict_proba_in_process(setup, rows):
    client, headers, art, X_test = setup
    X = X_test[art.feature_names].iloc[:rows]
    result = client.infer("credit", [_input(X.to_numpy(dtype=np.float64))], headers=headers(), request_id="t-1",
                          outputs=[triton.InferRequestedOutput("predict_proba", binary_data=False),
                                   triton.InferRequestedOutput("predict", binary_data=False)])
    np.testing.assert_allclose(result.as_numpy("predict_proba"), art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.as_numpy("predict"), art.model.predict(X))
    assert result.get_response()["id"] == "t-1"


@pytest.mark.parametrize("rows", [1, 40])
def test_the_clients_defaults_binary_in_and_out_match_predict_proba(setup, rows):
    client, headers, art, X_test = setup
    X = X_test[art.feature_names].iloc[:rows].to_numpy(dtype=np.float64)
    tensor = triton.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X)                              # binary_data=True: the client's default
    result = client.infer("credit", [tensor], headers=headers())  # no outputs: binary_data_output true
    assert {o["name"]: "data" in o for o in result.get_response()["outputs"]} == {"predict": False,
                                                                                   "predict_proba": False}
    np.testing.assert_allclose(result.as_numpy("predict_proba"), art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.as_numpy("predict"), art.model.predict(X))


def test_binary_and_json_outputs_in_one_answer(setup):
    client, headers, art, X_test = setup
    X32 = X_test[art.feature_names].iloc[:3].to_numpy(dtype=np.float32)
    tensor = triton.InferInput("input-0", list(X32.shape), "FP32")
    tensor.set_data_from_numpy(X32)
    result = client.infer("credit", [tensor], headers=headers(),
                          outputs=[triton.InferRequestedOutput("explanation", binary_data=True),
                                   triton.InferRequestedOutput("predict_proba", binary_data=False)])
    expected = shap.TreeExplainer(art.model).shap_values(X32.astype(np.float64))
    np.testing.assert_allclose(result.as_numpy("explanation"), expected, atol=1e-9)
    np.testing.assert_allclose(result.as_numpy("predict_proba"), art.model.predict_proba(X32.astype(np.float64)),
                               rtol=0, atol=1e-9)
    assert "data" in result.get_output("predict_proba") and "data" not in result.get_output("explanation")


def test_fp32_inputs_and_the_versioned_route(setup):
    client, headers, art, X_test = setup
    X32 = X_test[art.feature_names].iloc[:5].to_numpy(dtype=np.float32)
    result = client.infer("credit", [_input(X32, "FP32")], model_version="1", headers=headers(),
                          outputs=[triton.InferRequestedOutput("predict_proba", binary_data=False)])
    expected = art.model.predict_proba(X32.astype(np.float64))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, rtol=0, atol=1e-9)


def test_explanations_through_the_client(setup):
    client, headers, art, X_test = setup
    X = X_test[art.feature_names].iloc[:3]
    result = client.infer("credit", [_input(X.to_numpy())], headers=headers(),
                          outputs=[triton.InferRequestedOutput("explanation", binary_data=False),
                                   triton.InferRequestedOutput("predict_proba", binary_data=False)])
    contributions = result.as_numpy("explanation")
    base = result.get_output("explanation")["parameters"]["base_value"]
    p = result.as_numpy("predict_proba")[:, 1]
    np.testing.assert_allclose(base + contributions.sum(axis=1), np.log(p / (1 - p)), atol=1e-6)


def test_the_client_sees_the_servers_errors(setup):
    client, headers, art, X_test = setup
    X = X_test[art.feature_names].iloc[:2].to_numpy()
    with pytest.raises(InferenceServerException, match="missing or invalid API key"):
        client.infer("credit", [_input(X)], outputs=[triton.InferRequestedOutput("predict", binary_data=False)])
    # a binary tensor gets the JSON form's checks: non-finite values and a wrong datatype are refused
    nan = X.copy()
    nan[1, 2] = np.nan
    binary = triton.InferInput("input-0", list(X.shape), "FP64")
    binary.set_data_from_numpy(nan)
    with pytest.raises(InferenceServerException, match="finite"):
        client.infer("credit", [binary], headers=headers())
    flags = triton.InferInput("input-0", list(X.shape), "BOOL")
    flags.set_data_from_numpy(X > 0)
    with pytest.raises(InferenceServerException, match="'BOOL' is not supported"):
        client.infer("credit", [flags], headers=headers())
    short = X[:, :-1]                                     # one feature too few
    with pytest.raises(InferenceServerException, match=rf"shape \[2, {short.shape[1]}\]"):
        client.infer("credit", [_input(short)], headers=headers(),
                     outputs=[triton.InferRequestedOutput("predict", binary_data=False)])
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("other", [_input(X)], headers=headers(),
                     outputs=[triton.InferRequestedOutput("predict", binary_data=False)])
