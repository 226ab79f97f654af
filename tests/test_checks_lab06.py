"""Lab 06's self-checks pass on the solution's values and fail, with a hint, on the stubs and the mistakes the
lab warns about: trusting everything or too much, comparing sizes instead of hashes, flat or wrong outputs,
explanations read on the probability scale. The untouched lab runs end to end with every check 'not yet'."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shap
import skops.io as sio

from glassbox import artifacts
from glassbox.checks.lab06 import check_changed_files, check_explanation, check_http_inference, check_safe_load
from glassbox.data import LEAKY_FEATURE, load_credit, train_test
from helpers import assert_not_yet
from helpers import printed as printed_text

TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    model_dir = artifacts.build_course_model()
    art = artifacts.load(model_dir)
    _, X_test, _, _ = train_test(load_credit())
    X = X_test.drop(columns=[LEAKY_FEATURE])[art.feature_names]
    model_path = tmp_path_factory.mktemp("lab06") / "model.skops"
    sio.dump(art.model, model_path)
    return model_dir, art.model, model_path, X


# -- exercise 1: skops with a reviewed trusted list ------------------------------------------------------

def test_safe_load_passes_on_the_solution(course):
    _, model, model_path, X = course
    loaded = sio.load(model_path, trusted=[TREE_PREDICTOR])
    assert check_safe_load([TREE_PREDICTOR], loaded, model_path, X.iloc[:20])


@pytest.mark.parametrize("trusted, loaded, says", [
    (..., None, "stub"),
    (True, None, "CVE-2024-37065"),
    (TREE_PREDICTOR, None, "list of type names"),
    ([], None, "needs 1 more type"),
    ([TREE_PREDICTOR, "posix.system"], None, "posix.system"),
    ([TREE_PREDICTOR], None, "`loaded` is still the stub"),
    ([TREE_PREDICTOR], "model.skops", "not a model"),
])
def test_safe_load_catches_each_mistake(course, trusted, loaded, says):
    _, _, model_path, X = course
    assert_not_yet(check_safe_load(trusted, loaded, model_path, X.iloc[:20]), says)


def test_safe_load_catches_another_model(course):
    from sklearn.dummy import DummyClassifier

    _, _, model_path, X = course
    other = DummyClassifier().fit(X.iloc[:50], np.arange(50) % 2)
    assert_not_yet(check_safe_load([TREE_PREDICTOR], other, model_path, X.iloc[:20]), "does not predict like")


# -- exercise 2: changed files -------------------------------------------------------------------------

def _solution_changed_files(directory):
    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    return sorted(name for name, record in manifest["files"].items()
                  if hashlib.sha256((directory / name).read_bytes()).hexdigest() != record["sha256"])


def _sizes_only(directory):
    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    return sorted(n for n, r in manifest["files"].items() if (directory / n).stat().st_size != r["bytes"])


def test_changed_files_passes_on_the_solution(course):
    assert check_changed_files(_solution_changed_files, course[0])


@pytest.mark.parametrize("function, says", [
    (lambda directory: [], "flipped bit"),                 # the stub
    (_sizes_only, "flipped bit"),                          # sizes cannot see a flipped bit
    (lambda directory: ["model.skops"], "untouched copy"),  # a fixed answer
    (lambda directory: None, "returned None"),
    (lambda directory: "model.skops", "not a list"),
    ("changed_files", "should be a function"),
])
def test_changed_files_catches_each_mistake(course, function, says):
    assert_not_yet(check_changed_files(function, course[0]), says)


def test_changed_files_leaves_the_artifact_untouched(course):
    model_dir = course[0]
    before = artifacts.manifest_digest(model_dir), artifacts.verify(model_dir)["files"]
    check_changed_files(_sizes_only, model_dir)
    assert (artifacts.manifest_digest(model_dir), artifacts.verify(model_dir)["files"]) == before


# -- exercise 3: probabilities over HTTP ------------------------------------------------------------------

def test_http_inference_passes_on_the_servers_answer(course):
    _, model, _, X = course
    rows = X.iloc[:5]
    flat = model.predict_proba(rows).ravel().tolist()       # what the server sends: flat, full precision
    assert check_http_inference(np.array(flat).reshape(5, 2), model, rows)


@pytest.mark.parametrize("mutate, says", [
    (lambda p, m, r: None, "stub"),
    (lambda p, m, r: p.ravel(), "reshape"),
    (lambda p, m, r: p[:, ::-1], "differs"),
    (lambda p, m, r: np.column_stack([1 - m.predict(r), m.predict(r)]), "'predict' output"),
    (lambda p, m, r: p[:3], "5 rows"),
    (lambda p, m, r: np.round(p, 3), "differs"),
    (lambda p, m, r: "0.1, 0.9", "not numbers"),
])
def test_http_inference_catches_each_mistake(course, mutate, says):
    _, model, _, X = course
    rows = X.iloc[:5]
    assert_not_yet(check_http_inference(mutate(model.predict_proba(rows), model, rows), model, rows), says)


# -- exercise 4: an explanation over HTTP -----------------------------------------------------------------

@pytest.fixture(scope="module")
def explained(course):
    _, model, _, X = course
    applicant = X.iloc[[3]]
    explainer = shap.TreeExplainer(model)
    values = explainer.shap_values(applicant.to_numpy())[0]
    base = float(np.ravel(explainer.expected_value)[-1])
    contributions = pd.Series(values, index=list(X.columns)).sort_values(key=abs, ascending=False)
    return model, applicant, contributions, base


def test_explanation_passes_on_the_solution(explained):
    model, applicant, contributions, base = explained
    feedback = check_explanation(contributions, base, model, applicant)
    assert feedback and repr(contributions.index[0]) in feedback.message


def test_explanation_catches_each_mistake(explained):
    model, applicant, contributions, base = explained
    assert_not_yet(check_explanation(None, None, model, applicant), "stub")
    assert_not_yet(check_explanation(contributions.to_numpy(), base, model, applicant), "not a pandas Series")
    assert_not_yet(check_explanation(contributions.reset_index(drop=True), base, model, applicant), "feature names")
    assert_not_yet(check_explanation(contributions, None, model, applicant), "base_value")
    assert_not_yet(check_explanation(contributions.sort_index(), base, model, applicant), "sorted")
    assert_not_yet(check_explanation(contributions, 0.0, model, applicant), "log-odds")
    p = model.predict_proba(applicant)[0, 1]
    on_probability_scale = contributions * 0 + (p - 0.3) / len(contributions)   # sums to p with base 0.3
    assert_not_yet(check_explanation(on_probability_scale.sort_values(key=abs, ascending=False), 0.3, model, applicant),
           "log-odds scale")
    other = shap.TreeExplainer(model).shap_values(applicant.iloc[[0]].to_numpy() * 0 + 1)[0]
    wrong_row = pd.Series(other, index=contributions.index.sort_values()).sort_values(key=abs, ascending=False)
    assert_not_yet(check_explanation(wrong_row, base, model, applicant), "same single row")


# -- the untouched lab ------------------------------------------------------------------------------------

def test_the_untouched_lab_runs_on_past_every_stub(untouched_lab):
    """Later cells cope with the stubs (the checks themselves: tests/test_untouched_labs.py)."""
    texts = printed_text(untouched_lab("06-packaging-and-serving.ipynb"))
    assert "Complete exercise 3" in texts and "Complete exercise 4" in texts
