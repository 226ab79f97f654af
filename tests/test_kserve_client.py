"""The KServe Python SDK (``kserve`` 0.21, ``InferenceRESTClient``, protocol v2) works against the course's server.

The SDK pins clash with the course's, so it runs in a venv of its own (``.bench/kserve-venv``, made once by
:func:`helpers.peer_venv`), driven by ``tests/clients/kserve_v2.py``; its answers are compared here with the
model's ``predict_proba`` and SHAP values in process. JSON and binary tensors, in and out.
"""

import json
import subprocess

import numpy as np
import pytest
import shap

from glassbox import artifacts
from glassbox.data import LEAKY_FEATURE, load_credit, train_test

from helpers import REPO, course_model_server, peer_venv

KSERVE = ["kserve==0.21.0"]
ROWS = 7


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    python = peer_venv("kserve-venv", KSERVE)
    directory = tmp_path_factory.mktemp("kserve")
    art = artifacts.load(artifacts.build_course_model())
    _, X_test, _, _ = train_test(load_credit())
    X = X_test.drop(columns=[LEAKY_FEATURE])[art.feature_names].iloc[:ROWS].to_numpy(dtype=np.float64)
    rows = directory / "rows.json"
    rows.write_text(json.dumps(X.tolist()))
    with course_model_server(directory) as (local, key, _):
        run = subprocess.run([str(python), str(REPO / "tests" / "clients" / "kserve_v2.py"), local.url, key,
                              str(rows)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout), art, X


def test_health_through_the_sdk(answers):
    results, _, _ = answers
    assert results["live"] is True and results["ready"] is True


@pytest.mark.parametrize("case", ["json", "binary-in"])
def test_inference_with_the_sdks_model_name_matches_the_model(answers, case):
    results, art, X = answers
    answer = results[case]
    assert answer["id"] == case and answer["model_name"] == "credit"
    np.testing.assert_allclose(answer["outputs"]["predict_proba"], art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(answer["outputs"]["predict"], art.model.predict(X))


def test_binary_outputs_carry_probabilities_and_explanations(answers):
    results, art, X = answers
    outputs = results["binary-out"]["outputs"]
    assert set(outputs) == {"predict_proba", "explanation"}
    np.testing.assert_allclose(outputs["predict_proba"], art.model.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(outputs["explanation"], shap.TreeExplainer(art.model).shap_values(X), atol=1e-9)


def test_a_model_name_in_the_body_that_contradicts_the_url_is_refused(answers):
    results, _, _ = answers
    refused = results["wrong-model"]
    assert refused["status"] == 400 and "model_name is 'other'" in refused["body"]["error"]
