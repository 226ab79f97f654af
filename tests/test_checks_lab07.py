"""Lab 07's self-checks pass on the solution and say "not yet", naming the mistake, on the stubs and on every
mistake of the catalogue (tests/mistakes/lab07.py).

Each exercise cell of the solution notebook is run here as the lab runs it: its solution blocks replaced by a
mistake's code (or by the stub), against the real course model and a real model server for the HTTP
exercises. A mistake whose code raises before the check runs is judged by the feedback the kernel hook builds
from the exception and the exercise's own hints (:func:`glassbox.checks.raised`). The untouched lab runs end to
end."""

import ast
import hashlib
import json
import pickle
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import nbformat
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier

from glassbox import artifacts
from glassbox.checks import lab07, raised
from glassbox.data import load_credit, train_test
from glassbox.vault import agent, bootstrap
from glassbox.vault import orchestrator as orchestrator_mod
from helpers import REPO, assert_not_yet, course_model_server
from helpers import printed as printed_text
from mistakes.lab07 import MISTAKES

NOTEBOOK = REPO / "solutions" / "07-packaging-and-serving.ipynb"
BEGIN, END, STUB = "# BEGIN SOLUTION", "# END SOLUTION", "# STUB: "
CHECKS = {check.exercise[1]: check for check in (
    lab07.check_safe_load, lab07.check_trusted_risk, lab07.check_group_metrics, lab07.check_changed_files,
    lab07.check_http_inference, lab07.check_explanation, lab07.check_status_prediction,
    lab07.check_agent_restart)}


def _cells():
    """The solution's exercise cells, by exercise name (the cell that calls the exercise's check)."""
    cells = {}
    for cell in nbformat.read(NOTEBOOK, 4).cells:
        if cell.cell_type == "code" and BEGIN in cell.source:
            for name, check in CHECKS.items():
                if f"{check.__name__}(" in cell.source:
                    cells[name] = cell.source
    assert sorted(cells) == sorted(CHECKS), sorted(cells)
    return cells


CELLS = _cells()


def _substitute(source: str, blocks) -> str:
    """``source`` with its solution blocks replaced by ``blocks`` (None: by the stub lines), indentation kept."""
    out, replacements, block, indent, stub = [], list(blocks) if blocks is not None else None, None, "", []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            block, indent, stub = [], line[: len(line) - len(line.lstrip())], []
        elif stripped == END:
            code = stub if replacements is None else replacements.pop(0).splitlines()
            out.extend(indent + text for text in (code or ["pass"]))
            block = None
        elif block is not None:
            if stripped.startswith(STUB):
                stub.append(stripped[len(STUB):])
        else:
            out.append(line)
    assert replacements in (None, []), "more code blocks than solution blocks"
    return "\n".join(out)


def _run(name: str, namespace: dict, code=...):
    """Run exercise ``name``'s cell (the solution; ``code=None``: the stub; else a mistake's code) in
    ``namespace`` and return the feedback it shows."""
    source = CELLS[name]
    if code is not ...:
        source = _substitute(source, None if code is None else ([code] if isinstance(code, str) else code))
    tree = ast.parse(source)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), "an exercise cell ends with its check call"
    try:
        exec(compile(tree, f"<{name}>", "exec"), namespace)
    except Exception as error:   # what the kernel hook turns into feedback
        return raised(CHECKS[name], error, "")
    return eval(compile(ast.Expression(last.value), f"<{name}>", "eval"), namespace)


# -- the state the cells find in the lab ------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("lab07")
    with course_model_server(scratch) as (server, key, model_dir):
        art = artifacts.load(model_dir)
        data = load_credit(n_samples=4000, seed=0)
        X_train, X_test, y_train, y_test = train_test(data, test_size=0.25, seed=0)
        features = art.feature_names
        candidate = HistGradientBoostingClassifier(**{**artifacts.COURSE_PARAMS, "max_iter": 60}).fit(
            X_train[features], y_train)
        yield {"art": art, "model": art.model, "model_dir": model_dir, "X_test": X_test, "FEATURES": features,
               "candidate": candidate, "scratch": scratch, "base_url": server.url,
               "headers": {"Authorization": f"Bearer {key}"}}


@pytest.fixture
def namespace(lab, tmp_path):
    """A fresh namespace with what the lab's earlier cells define (a fresh candidate file each time)."""
    model_path = tmp_path / "candidate.skops"
    sio.dump(lab["candidate"], model_path)
    return {"sio": sio, "pickle": pickle, "hashlib": hashlib, "json": json, "Path": Path, "np": np, "pd": pd,
            "httpx": httpx, "model": lab["model"], "model_dir": lab["model_dir"], "model_path": model_path,
            "unknown": sio.get_untrusted_types(file=model_path), "X_test": lab["X_test"],
            "FEATURES": lab["FEATURES"], "base_url": lab["base_url"], "headers": dict(lab["headers"]),
            "infer_url": f"{lab['base_url']}/v2/models/credit/infer",
            **{check.__name__: check for check in CHECKS.values()}}


# -- every exercise: the solution passes, the stub does not ------------------------------------------------

@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_solution_passes(namespace, name):
    feedback = _run(name, namespace)
    assert feedback, feedback


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_stub_says_not_yet_with_a_hint(namespace, name):
    feedback = _run(name, namespace, code=None)
    assert_not_yet(feedback)
    assert "could not read your answer" not in feedback.message, feedback


# -- every catalogued mistake: not yet, named --------------------------------------------------------------

@pytest.mark.parametrize("mistake", MISTAKES, ids=[f"{m.exercise}: {m.mistake}" for m in MISTAKES])
def test_each_catalogued_mistake_is_named(namespace, mistake):
    feedback = _run(mistake.exercise, namespace, code=mistake.code)
    assert not feedback, feedback
    assert feedback.hints, feedback
    text = (feedback.message + " " + feedback.hint).lower()
    for phrase in mistake.says:
        assert phrase.lower() in text, (phrase, feedback)
    assert "could not read your answer" not in feedback.message, feedback


def test_the_catalogue_has_three_mistakes_per_exercise_and_one_to_the_end_each():
    for name in CHECKS:
        entries = [m for m in MISTAKES if m.exercise == name]
        assert len(entries) >= 3, name
        assert sum(m.to_the_end for m in entries) == 1, name
    assert len({m.mistake for m in MISTAKES}) == len(MISTAKES)


def test_a_refused_request_shows_the_servers_own_message(namespace):
    """The 4xx message of the server reaches the learner (it used to hide behind KeyError: 'outputs')."""
    wrong = next(m for m in MISTAKES if "`size` instead of `shape`" in m.mistake)
    feedback = _run("http-inference", namespace, code=wrong.code)
    assert feedback.message.startswith("the server answered 400: inputs[0] has unknown field(s): size")
    assert namespace["proba_http"] is None and namespace["response"].status_code == 400


def test_a_copy_of_the_model_in_memory_is_not_a_loaded_model(namespace):
    """The file holds another model than ``model``: only reading it gives what the check expects."""
    model, X = namespace["model"], namespace["X_test"][namespace["FEATURES"]].iloc[:50]
    from_file = sio.load(namespace["model_path"], trusted=namespace["unknown"])
    assert not np.array_equal(from_file.predict_proba(X), model.predict_proba(X))
    assert_not_yet(lab07.check_safe_load(namespace["unknown"], lambda path: model, namespace["model_path"], model, X),
                   "itself")


def test_a_model_file_overwritten_with_a_pickle_is_refused(namespace):
    model, path = namespace["model"], namespace["model_path"]
    path.write_bytes(pickle.dumps(model))
    X = namespace["X_test"][namespace["FEATURES"]].iloc[:5]
    assert_not_yet(lab07.check_safe_load(namespace["unknown"], lambda p: pickle.loads(Path(p).read_bytes()), path,
                                         model, X),
                   "no longer a skops archive", "it holds a pickle")


def test_a_rule_that_trusts_what_the_file_lists_is_refused(namespace):
    """The same names as the reviewed list, but read from each file: the check hands the rule a file that needs
    ``os.system``, and the rule must refuse it (it would load it). A rule that raises its own error passes."""
    model, path = namespace["model"], namespace["model_path"]
    X = namespace["X_test"][namespace["FEATURES"]].iloc[:5]
    reviewed = list(namespace["unknown"])

    def from_the_file(p):
        return sio.load(p, trusted=sio.get_untrusted_types(file=p))

    feedback = lab07.check_safe_load(reviewed, from_the_file, path, model, X)
    assert_not_yet(feedback, "trusts whatever the file asks for", "system")

    def subset_or_raise(p):
        needed = sio.get_untrusted_types(file=p)
        if not set(needed) <= set(reviewed):
            raise ValueError(f"not reviewed: {sorted(set(needed) - set(reviewed))}")
        return sio.load(p, trusted=needed)

    for rule in (subset_or_raise, lambda p: sio.load(p, trusted=reviewed)):
        feedback = lab07.check_safe_load(reviewed, rule, path, model, X)
        assert feedback, feedback
        assert "refused" in feedback.message, feedback
    assert_not_yet(lab07.check_safe_load(reviewed, lambda p: None, path, model, X), "load_reviewed(model_path)")
    assert_not_yet(lab07.check_safe_load(reviewed, lambda p: 1 / 0, path, model, X), "ZeroDivisionError")


def test_an_answer_that_did_not_come_from_the_server_is_refused(lab):
    rows = lab["X_test"][lab["FEATURES"]].iloc[:5]
    model = lab["model"]
    proba = model.predict_proba(rows)
    assert_not_yet(lab07.check_http_inference(proba, proba, model, rows), "raw response")
    forged = httpx.Response(200, json={"outputs": [{"name": "predict_proba", "data": proba.ravel().tolist()}]})
    assert_not_yet(lab07.check_http_inference(forged, proba, model, rows), "not produced by a request")
    elsewhere = httpx.get(f"{lab['base_url']}/v2/health/ready")
    assert_not_yet(lab07.check_http_inference(elsewhere, proba, model, rows), "infer endpoint")


def test_changed_files_leaves_the_artifact_untouched(namespace):
    model_dir = namespace["model_dir"]
    before = artifacts.manifest_digest(model_dir), artifacts.verify(model_dir)["files"]
    _run("changed-files", namespace, code=MISTAKES[[m.exercise for m in MISTAKES].index("changed-files")].code)
    assert (artifacts.manifest_digest(model_dir), artifacts.verify(model_dir)["files"]) == before


def test_the_explanation_exercise_reports_the_largest_contribution(namespace):
    feedback = _run("explanation", namespace)
    top = namespace["contributions"].index[0]
    assert feedback and repr(top) in feedback.message
    assert top != "branch_id" and "branch_id" not in namespace["contributions"].index


@pytest.mark.parametrize("name, stub_letter_hint", [("trusted-risk", "risk"), ("group-metrics", "reading"),
                                                    ("status-prediction", "prediction"),
                                                    ("agent-restart", "restart")])
def test_the_thinking_exercises_explain_the_right_answer(namespace, name, stub_letter_hint):
    feedback = _run(name, namespace)
    assert feedback and feedback.message.startswith("Right:")
    assert_not_yet(_run(name, namespace, code=f"{stub_letter_hint} = 'z'"), "not one of the options")


def test_the_group_metrics_exercise_matches_the_card(lab):
    """Option e says the true positive rates differ the most and that gap's interval includes 0 and reaches
    about 0.19: the shipped card must say so too (and b's claim of a disparity must not follow from it)."""
    groups = lab["art"].manifest["group_metrics"]
    difference = groups["difference"]
    assert max(difference, key=difference.get) == "true_positive_rate"
    assert min(difference, key=difference.get) == "false_positive_rate"
    low, high = groups["difference_interval"]["true_positive_rate"]
    assert low < 0 and high == pytest.approx(0.19, abs=0.01)
    assert f"{low:+.3f} to {high:+.3f}" in lab["art"].card


def test_the_restart_exercise_matches_what_the_agent_does(vault_client, tmp_path):
    """Option c, as the lab shows it: an agent started again with its old directory cannot log in (no token kept,
    the secret ID spent and its file deleted); a new wrapped secret ID from the orchestrator lets it render the
    key again. The orchestrator itself cannot read the key it helps deliver."""
    bootstrap.ensure(vault_client)
    orchestrator = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client))
    with pytest.raises(hvac.exceptions.Forbidden):
        bootstrap.read_api_key(orchestrator)
    directory = tmp_path / "agent"
    orchestrator_mod.deliver(orchestrator, directory, wrap_ttl="60s")
    running = agent.LocalAgent(vault_client.url, directory, render_interval="2s").start()
    try:
        assert running.key_file.read_text().strip() == bootstrap.read_api_key(vault_client)
        assert not (directory / agent.SECRET_ID_FILE).exists()
        assert "sink" not in (directory / agent.CONFIG_FILE).read_text()   # the token is kept in memory only
        running.stop()
        with pytest.raises(agent.AgentError):
            running.start(timeout=5)
        assert running.count("no known secret ID") > 0 and running.count("authentication successful") == 0
        orchestrator_mod.deliver(orchestrator, directory, wrap_ttl="60s")
        running.start()
        assert running.count("authentication successful") == 1
        assert running.key_file.read_text().strip() == bootstrap.read_api_key(vault_client)
    finally:
        running.stop()
        orchestrator.auth.token.revoke_self()


# -- the untouched lab ------------------------------------------------------------------------------------

def test_the_untouched_lab_runs_on_past_every_stub(untouched_lab):
    """Later cells cope with the stubs and say what they wait for (the checks: tests/test_untouched_labs.py)."""
    texts = printed_text(untouched_lab("07-packaging-and-serving.ipynb"))
    assert "Waiting for exercise 5" in texts and "Waiting for exercise 6" in texts
    assert "the server answered 400" in texts
    assert "finish exercise 4" not in texts   # the stub's changed_files returns a list: nothing raised
