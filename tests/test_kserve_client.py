"""The KServe Python SDK (``kserve`` 0.21: ``InferenceRESTClient`` with protocol v2, and ``InferenceGRPCClient``)
works against the course's server.

The SDK pins clash with the course's, so it runs in a venv of its own (``kserve-venv`` in the machine's peer
cache, made once by :func:`helpers.peer_venv` and shared with the benchmark's KServe peer), driven by
``tests/clients/kserve_v2.py`` (REST) and ``kserve_v2_grpc.py`` (gRPC), both against one server; their answers
are compared here with the model's ``predict_proba`` and SHAP values in process, and with each other. JSON and
binary tensors, in and out; gRPC's ``contents`` and raw contents.
"""

import json
import subprocess

import numpy as np
import pytest
import shap

from glassbox import artifacts, peers
from glassbox.data import LEAKY_FEATURE, load_credit, train_test

from helpers import REPO, course_model_server, peer_venv

ROWS = 7


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    python = peer_venv("kserve-venv", peers.kserve_requirements())
    directory = tmp_path_factory.mktemp("kserve")
    art = artifacts.load(artifacts.build_course_model())
    _, X_test, _, _ = train_test(load_credit())
    X = X_test.drop(columns=[LEAKY_FEATURE])[art.feature_names].iloc[:ROWS].to_numpy(dtype=np.float64)
    rows = directory / "rows.json"
    rows.write_text(json.dumps(X.tolist()))
    runs = {}
    with course_model_server(directory, grpc=True) as (local, key, _):
        for script, address in (("kserve_v2.py", local.url), ("kserve_v2_grpc.py", local.grpc_target)):
            runs[script] = subprocess.run([str(python), str(REPO / "tests" / "clients" / script), address, key,
                                           str(rows)], capture_output=True, text=True, timeout=120)
    for run in runs.values():
        assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(runs["kserve_v2.py"].stdout), art, X, json.loads(runs["kserve_v2_grpc.py"].stdout)


def test_health_through_the_sdk(answers):
    results, _, _, _ = answers
    assert results["live"] is True and results["ready"] is True


@pytest.mark.parametrize("case", ["json", "binary-in"])
def test_inference_with_the_sdks_model_name_matches_the_model(answers, case):
    results, art, X, _ = answers
    answer = results[case]
    assert answer["id"] == case and answer["model_name"] == "credit"
    np.testing.assert_allclose(answer["outputs"]["predict_proba"], art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(answer["outputs"]["predict"], art.model.predict(X))


def test_binary_outputs_carry_probabilities_and_explanations(answers):
    results, art, X, _ = answers
    outputs = results["binary-out"]["outputs"]
    assert set(outputs) == {"predict_proba", "explanation"}
    np.testing.assert_allclose(outputs["predict_proba"], art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(outputs["explanation"], shap.TreeExplainer(art.model).shap_values(X), atol=1e-9)


def test_a_model_name_in_the_body_that_contradicts_the_url_is_refused(answers):
    results, _, _, _ = answers
    refused = results["wrong-model"]
    assert refused["status"] == 400 and "model_name is 'other'" in refused["body"]["error"]


def test_grpc_health_through_the_sdk(answers):
    grpc_results = answers[3]
    assert grpc_results["live"] is True and grpc_results["ready"] is True and grpc_results["model_ready"] is True


@pytest.mark.parametrize("case", ["raw", "contents"])
def test_grpc_inference_matches_the_model_and_rest(answers, case):
    rest, art, X, grpc_results = answers
    answer = grpc_results[case]
    assert answer["id"] == case and answer["model_name"] == "credit"
    outputs = answer["outputs"]
    np.testing.assert_allclose(outputs["predict_proba"], art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(outputs["predict"], art.model.predict(X))
    # the same numbers as the SDK's REST answer to the same rows: one computation behind both transports
    np.testing.assert_array_equal(outputs["predict_proba"], rest["json"]["outputs"]["predict_proba"])


def test_grpc_explanations_add_up_and_match_rest(answers):
    rest, art, X, grpc_results = answers
    answer = grpc_results["contents"]
    assert list(answer["outputs"]) == ["predict_proba", "explanation", "predict"]   # the order asked for
    contributions = np.array(answer["outputs"]["explanation"])
    np.testing.assert_allclose(contributions, shap.TreeExplainer(art.model).shap_values(X), atol=1e-9)
    np.testing.assert_array_equal(contributions, rest["binary-out"]["outputs"]["explanation"])
    parameters = answer["parameters"]["explanation"]
    assert json.loads(parameters["feature_names"]) == list(art.feature_names)
    p = np.array(answer["outputs"]["predict_proba"])[:, 1]
    np.testing.assert_allclose(json.loads(parameters["base_value"]) + contributions.sum(axis=1),
                               np.log(p / (1 - p)), atol=1e-6)


def test_grpc_refusals_carry_the_status_and_rests_message(answers):
    grpc_results = answers[3]
    assert grpc_results["no-key"] == {"code": "UNAUTHENTICATED",
                                      "details": 'missing or invalid API key: send "Authorization: Bearer <key>"'}
    refused = grpc_results["bad-shape"]
    assert refused["code"] == "INVALID_ARGUMENT"
    assert refused["details"].startswith(f"input 'input-0' has shape [{ROWS}, 8]; the model takes [n, 9]")
