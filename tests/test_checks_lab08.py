"""Lab 08's self-checks pass on the solution and fail, saying how to fix it, on the stub and the common mistakes.

The review and leak-finding functions are taken from the notebooks themselves (the solution's and the
generated lab's cells), so these tests judge what learners actually get. The last test runs the solution
with no Docker engine and compares its outputs with nbval: the lab must hold in both modes.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import hvac
import hvac.exceptions
import nbformat
import pytest
import yaml

from glassbox import artifacts, deploy, vault
from glassbox.checks import lab08
from glassbox.checks.lab08 import (
    CACHE_OPTIONS, CODES, LEAK_OPTIONS, RESTART_OPTIONS, check_agent_restart, check_cache_prediction,
    check_dockerfile_review, check_handover, check_image_leaks, check_real_leak, check_smoke_test, dockerfile_cases,
    metadata_case,
)
from glassbox.data import load_credit, train_test
from glassbox.paths import write_private
from glassbox.vault import agent, bootstrap

from helpers import assert_not_yet, pick_free_port

REPO = Path(__file__).resolve().parents[1]
SOLUTION, LAB = REPO / "solutions" / "08-containers.ipynb", REPO / "labs" / "08-containers.ipynb"
DOCKERFILE = (REPO / "Dockerfile").read_text()
OTHER_ROLE = "glassbox-tests-lab08-other"


def _definitions(notebook: Path, name: str) -> dict:
    """The notebook's functions up to ``name``: from each code cell defining one, in order, only its imports,
    assignments and functions run (no check is called)."""
    namespace = {"re": re, "deploy": deploy}
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code" or "\ndef " not in "\n" + cell.source:
            continue
        tree = ast.parse(cell.source)
        tree.body = [node for node in tree.body
                     if isinstance(node, (ast.FunctionDef, ast.Assign, ast.Import, ast.ImportFrom))]
        exec(compile(tree, str(notebook), "exec"), namespace)
        if name in namespace:
            return namespace
    raise LookupError(f"{notebook.name} defines no {name}()")


# -- exercise 1: the Dockerfile review ------------------------------------------------------------------

def test_review_passes_on_the_solution_and_finds_the_course_dockerfile_clean():
    review = _definitions(SOLUTION, "review")["review"]
    assert review(DOCKERFILE) == set()
    feedback = check_dockerfile_review(review, DOCKERFILE)
    assert feedback, feedback
    assert "course's own found clean" in feedback.message


def test_review_fails_on_the_untouched_lab():
    review = _definitions(LAB, "review")["review"]
    assert review(DOCKERFILE) == set()          # the stub finds nothing, which is right only for clean files
    assert_not_yet(check_dockerfile_review(review, DOCKERFILE), "missed 'runs-as-root'", "USER")


def test_review_cases_cover_every_code_both_ways():
    cases = dockerfile_cases()
    for code in CODES:
        assert any(code in expected for _, _, expected in cases), f"no case expects {code}"
    assert sum(not expected for _, _, expected in cases) >= 4, "clean look-alikes keep a review honest"


def _variant(wrong: str):
    """The solution's review with one rule broken the way learners break it."""
    solution = _definitions(SOLUTION, "review")["review"]

    def review(text):
        found = solution(text)
        stages = deploy.dockerfile_stages(text)
        if wrong == "root-anywhere" and any(k == "USER" and a.split(":")[0] in ("root", "0")
                                            for stage in stages for k, a in stage):
            found.add("runs-as-root")
        if wrong == "key-is-secret" and any(k in ("ARG", "ENV") and "KEY" in a.upper()
                                            for stage in stages for k, a in stage):
            found.add("secret-in-build")
        if wrong == "latest-only":
            found.discard("unpinned-base")
            if any(k == "FROM" and a.split()[0].endswith(":latest") for stage in stages for k, a in stage):
                found.add("unpinned-base")
        if wrong == "healthcheck-none-counts":
            final = stages[-1]
            if any(k == "HEALTHCHECK" for k, _ in final):
                found.discard("no-healthcheck")
        if wrong == "typo":
            found = {"root" if code == "runs-as-root" else code for code in found}
        return found

    return review


@pytest.mark.parametrize("wrong, says", [
    ("root-anywhere", "not a problem there"),     # a build stage may run as root
    ("key-is-secret", "SECRET_NAME"),             # KEY alone is not a secret's name
    ("latest-only", "missed 'unpinned-base'"),    # no tag at all floats too
    ("healthcheck-none-counts", "HEALTHCHECK NONE"),
    ("typo", "unknown code"),
])
def test_review_catches_the_common_mistakes(wrong, says):
    assert_not_yet(check_dockerfile_review(_variant(wrong), DOCKERFILE), says)


def test_review_must_find_the_course_dockerfile_clean():
    solution = _definitions(SOLUTION, "review")["review"]
    bad_course = DOCKERFILE.replace("USER 10001:10001", "USER root")
    assert_not_yet(check_dockerfile_review(solution, bad_course), "course's own Dockerfile", "runs-as-root")


def test_review_stub_values():
    assert_not_yet(check_dockerfile_review(..., DOCKERFILE), "not a function")
    assert_not_yet(check_dockerfile_review(lambda text: None, DOCKERFILE), "returns nothing")


# -- exercise 2: secrets in image metadata ------------------------------------------------------------------

def test_image_leaks_passes_on_the_solution_and_on_a_clean_image():
    image_leaks = _definitions(SOLUTION, "image_leaks")["image_leaks"]
    clean = SimpleNamespace(env={"PATH": "/opt/venv/bin:/usr/bin", "GLASSBOX_PORT": "8080"},
                            history=["/bin/sh -c #(nop)  USER 10001:10001", "/bin/sh -c pip install x"])
    assert check_image_leaks(image_leaks)
    assert check_image_leaks(image_leaks, clean)
    leaky = SimpleNamespace(env={"API_KEY": "changeme"}, history=[])
    assert_not_yet(check_image_leaks(image_leaks, leaky), "course's own image")


def test_image_leaks_fails_on_the_untouched_lab():
    image_leaks = _definitions(LAB, "image_leaks")["image_leaks"]
    assert_not_yet(check_image_leaks(image_leaks), "VAULT_TOKEN")


def test_image_leaks_catches_the_common_mistakes():
    solution = _definitions(SOLUTION, "image_leaks")["image_leaks"]
    env, history, _ = metadata_case()
    # only the environment: the build argument in the history is missed
    assert_not_yet(check_image_leaks(lambda e, h: [n for n in e if "TOKEN" in n]), "build argument")
    # names with KEY anywhere, empty values included
    assert_not_yet(check_image_leaks(lambda e, h: solution(e, h) + [n for n in e if "KEY" in n]), "KEY alone")
    assert_not_yet(check_image_leaks(lambda e, h: solution(e, h) + ["GLASSBOX_VAULT_ROLE_ID"]), "empty variable")
    # assignments only: the token written by a RUN line is missed
    assert_not_yet(check_image_leaks(lambda e, h: [x for x in solution(e, h) if x != history[3]]), "TOKEN_SHAPE")
    assert_not_yet(check_image_leaks(lambda e, h: solution(e, h) * 2), "twice")
    # the value reported with the name: the report leaks the secret again (and the message does not show it)
    def with_values(e, h):
        return [f"{n}={v}" for n, v in e.items() if n == "VAULT_TOKEN"] + solution(e, h)[1:]

    feedback = check_image_leaks(with_values)
    assert_not_yet(feedback, "value itself", "NAME")
    assert env["VAULT_TOKEN"] not in repr(feedback)
    assert_not_yet(check_image_leaks(lambda e, h: None), "returns nothing")


def test_secret_name_leaves_out_paths_to_secrets_and_whole_lines_are_not_names():
    """A name ending in _FILE, _PATH or _DIR says where a secret is (the best practice), not the secret."""
    for name in ("VAULT_TOKEN", "API_KEY", "PIP_PASSWORD", "db_password", "GLASSBOX_API_KEY",
                 "AWS_SECRET_ACCESS_KEY"):
        assert lab08.SECRET_NAME.search(name), name
    for name in ("GLASSBOX_API_KEY_FILE", "POSTGRES_PASSWORD_FILE", "VAULT_TOKEN_PATH", "SECRETS_DIR",
                 "GLASSBOX_KEY_REFRESH_SECONDS", "KEYBOARD", "PIP_INDEX_URL"):
        assert not lab08.SECRET_NAME.search(name), name
    # the notebook defines the same rule the check uses
    assert lab08.SECRET_NAME.pattern == _definitions(SOLUTION, "review")["SECRET_NAME"].pattern
    # the review's clean cases hold a path-to-secret ENV; the metadata case holds one, and a package named secret...
    clean = dict((label, text) for label, text, expected in dockerfile_cases() if not expected)
    assert "POSTGRES_PASSWORD_FILE=" in clean["settings that only sound like secrets"]
    env, history, expected = metadata_case()
    assert env["GLASSBOX_API_KEY_FILE"] and not expected & {"GLASSBOX_API_KEY_FILE", *history[4:]}
    # ... which a search of the whole line (not of the NAME=value names) reports
    namespace = _definitions(SOLUTION, "image_leaks")
    solution, token_shape = namespace["image_leaks"], namespace["TOKEN_SHAPE"]

    def whole_lines(e, h):
        return [n for n, v in e.items() if lab08.SECRET_NAME.search(n) and v] + [
            line for line in h if lab08.SECRET_NAME.search(line) or token_shape.search(line)]

    assert_not_yet(check_image_leaks(whole_lines), "pip install", "not the whole line")
    old_rule = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
    assert_not_yet(check_image_leaks(lambda e, h: solution(e, h) + [n for n in e if old_rule.search(n) and e[n]
                                                                    and n != "VAULT_TOKEN"]),
                   "GLASSBOX_API_KEY_FILE", "path to a secret")


def test_no_fixture_or_message_shows_the_fake_token():
    env, history, _ = metadata_case()
    token = env["VAULT_TOKEN"]
    for feedback in (check_image_leaks(lambda e, h: []), check_image_leaks(lambda e, h: list(e))):
        assert token not in repr(feedback) and token not in feedback._repr_html_()


# -- exercise 5: the orchestrator's delivery for the agent ---------------------------------------------------

@pytest.fixture(scope="module")
def admin(vault_client):
    bootstrap.ensure(vault_client)
    vault_client.auth.approle.create_or_update_approle(OTHER_ROLE, token_policies=["default"], secret_id_num_uses=1)
    return vault_client


@pytest.fixture(scope="module")
def orchestrator(admin):
    return hvac.Client(url=admin.url, token=bootstrap.orchestrator_token(admin))


def _delivery(client, wrap_ttl="60s", role=bootstrap.ROLE):
    role_id = client.auth.approle.read_role_id(bootstrap.ROLE)["data"]["role_id"]
    wrapped = client.auth.approle.generate_secret_id(role, wrap_ttl=wrap_ttl)["wrap_info"]["token"]
    return {"role-id": role_id, "wrapped-secret-id": wrapped}


def test_handover_passes_on_the_solution_and_leaves_the_token_usable(admin, orchestrator, tmp_path):
    delivery = _delivery(orchestrator)
    feedback = check_handover(delivery, admin)
    assert feedback, feedback
    assert "wrapped for 60 s by the orchestrator" in feedback.message
    # the check only looked the token up: a real agent can still unwrap it and render the key
    for name, text in delivery.items():
        write_private(tmp_path / name, text + "\n")
    with agent.LocalAgent(admin.url, tmp_path) as running:
        assert running.key_file.read_text() == bootstrap.read_api_key(admin)
        assert not (tmp_path / agent.SECRET_ID_FILE).exists()


def test_handover_fails_on_the_stub(admin):
    assert_not_yet(check_handover(None, admin), "stub")
    assert_not_yet(check_handover({}, admin), "lacks", "'role-id'")


def test_handover_refuses_the_secret_id_itself(admin, orchestrator):
    delivery = _delivery(orchestrator)
    delivery["wrapped-secret-id"] = admin.auth.approle.generate_secret_id(bootstrap.ROLE)["data"]["secret_id"]
    assert_not_yet(check_handover(delivery, admin), "secret ID itself", "wrap_ttl")


def test_handover_refuses_any_token_of_the_admin_or_the_orchestrator(admin, orchestrator):
    assert_not_yet(check_handover({**_delivery(orchestrator), "token": admin.token}, admin), "administrator", "root")
    assert_not_yet(check_handover({**_delivery(orchestrator), "wrapped-secret-id": orchestrator.token}, admin),
                   "orchestrator's own token")
    assert_not_yet(check_handover({**_delivery(orchestrator), "extra": "x"}, admin), "more than the agent needs")


def test_handover_refuses_a_secret_id_issued_with_the_root_token(admin):
    assert_not_yet(check_handover(_delivery(admin), admin), "administrator's (root) token", "orchestrator")


def test_handover_refuses_spent_foreign_and_long_lived_tokens(admin, orchestrator):
    spent = _delivery(orchestrator)
    bootstrap.login_with_wrapped_secret(admin.url, spent["role-id"], spent["wrapped-secret-id"])
    assert_not_yet(check_handover(spent, admin), "not a live wrapping token", "fresh")
    assert_not_yet(check_handover(_delivery(admin, role=OTHER_ROLE), admin), "not by the service's role")
    # the orchestrator may not wrap for longer than 300 s: Vault itself refuses, before any check
    with pytest.raises(hvac.exceptions.VaultError):
        _delivery(orchestrator, wrap_ttl="1h")
    assert_not_yet(check_handover(_delivery(admin, wrap_ttl="1h"), admin), "root")


def test_handover_refuses_a_wrong_role_id(admin, orchestrator):
    other = admin.auth.approle.read_role_id(OTHER_ROLE)["data"]["role_id"]
    assert_not_yet(check_handover({**_delivery(orchestrator), "role-id": other}, admin), "role ID")
    assert_not_yet(check_handover({**_delivery(orchestrator), "role-id": bootstrap.ROLE}, admin), "identifier")


# -- exercise 4: the smoke test ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_and_rows():
    model = artifacts.load(artifacts.build_course_model()).model
    data = load_credit(n_samples=4000, seed=0)
    X_test = train_test(data, test_size=0.25, seed=0)[1]
    return model, X_test[list(model.feature_names_in_)].iloc[:5]


def test_smoke_passes_on_right_answers(model_and_rows):
    model, rows = model_and_rows
    feedback = check_smoke_test({"ready": 200, "without_key": 401, "proba": model.predict_proba(rows)}, model, rows)
    assert feedback, feedback


def test_smoke_fails_on_the_stub_and_the_common_mistakes(model_and_rows):
    model, rows = model_and_rows
    good = {"ready": 200, "without_key": 401, "proba": model.predict_proba(rows)}
    assert_not_yet(check_smoke_test(None, model, rows), "stub")
    assert_not_yet(check_smoke_test({"ready": None, "without_key": None, "proba": None}, model, rows), "'ready'")
    assert_not_yet(check_smoke_test({**good, "ready": 503}, model, rows), "not 200")
    response = SimpleNamespace(status_code=200)
    assert_not_yet(check_smoke_test({**good, "ready": response}, model, rows), "holds the response", "status code")
    assert_not_yet(check_smoke_test({**good, "ready": {"ready": True}}, model, rows), "JSON body")
    assert_not_yet(check_smoke_test({**good, "proba": [{"a": 1}]}, model, rows), "does not read as numbers")
    assert_not_yet(check_smoke_test({**good, "without_key": 200}, model, rows), "401", "Authorization")
    assert_not_yet(check_smoke_test({**good, "proba": good["proba"].ravel()}, model, rows), "shape", "Reshape")
    assert_not_yet(check_smoke_test({**good, "proba": good["proba"][::-1]}, model, rows), "differs", "feature order")


# -- the thinking exercises ------------------------------------------------------------------------------

@pytest.mark.parametrize("check, options, variable", [
    (check_cache_prediction, CACHE_OPTIONS, "prediction"),
    (check_real_leak, LEAK_OPTIONS, "real_leak"),
    (check_agent_restart, RESTART_OPTIONS, "after_the_restart"),
])
def test_each_thinking_exercise_passes_only_its_answer_and_explains_every_wrong_one(check, options, variable):
    feedback = check("b")
    assert feedback and len(feedback.message) > 80, feedback  # the right answer comes with its reason
    for letter in set(options) - {"b"}:
        assert_not_yet(check(letter), "not quite")
    assert_not_yet(check(...), f"`{variable}` is still the stub")
    assert check(...).hints == check.hints  # the stub gets the exercise's own tiers
    assert_not_yet(check("e"), "not one of the options")


@pytest.mark.parametrize("options", [CACHE_OPTIONS, LEAK_OPTIONS, RESTART_OPTIONS])
def test_the_lab_shows_the_options_the_check_judges(options):
    text = "\n".join(cell.source for cell in nbformat.read(SOLUTION, as_version=4).cells
                     if cell.cell_type == "markdown")
    for letter, option in options.items():
        assert f"| `'{letter}'` | {option} |" in text, option


def test_the_wrong_answers_name_their_misconception():
    assert "requirements.lock" in check_cache_prediction("a").message
    assert "checksums" in check_cache_prediction("d").message
    assert "spent" in check_real_leak("a").message
    assert "single-use" in check_agent_restart("a").message
    assert "tmpfs" in check_agent_restart("c").message
    assert "no token sink" in check_agent_restart("d").message


def test_the_restart_exercise_states_the_stacks_real_settings():
    """The lab's claims about a restarted agent follow from what the bootstrap and compose really configure
    (tests/test_compose.py watches it happen on an engine)."""
    assert (bootstrap.TOKEN_PERIOD, bootstrap.SECRET_ID_NUM_USES) == ("15m", 1)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert compose["services"]["agent"]["restart"] == "unless-stopped"
    assert compose["volumes"]["key"]["driver_opts"]["type"] == "tmpfs"
    assert "sink" not in agent.config("", "/run/glassbox")
    assert "no known secret ID" in check_agent_restart("b").message


def test_every_exercise_has_hint_tiers_that_do_not_paste_the_solution():
    solution_lines = {line.strip() for cell in nbformat.read(SOLUTION, as_version=4).cells
                      if cell.cell_type == "code" and "# BEGIN SOLUTION" in cell.source
                      for line in cell.source.split("# BEGIN SOLUTION", 1)[1].splitlines()
                      if line.strip() and not line.strip().startswith("#")}
    checks = [item for item in vars(lab08).values() if callable(item) and hasattr(item, "exercise")]
    assert len(checks) == 7
    for check in checks:
        assert len(check.hints) >= 2, check.exercise
        for line in solution_lines:
            if len(line) > 12:
                assert line not in check.hints[0], (check.exercise, line)


def test_the_catalogue_covers_every_exercise():
    from mistakes.lab08 import MISTAKES

    names = {check.exercise[1] for check in vars(lab08).values() if callable(check) and hasattr(check, "exercise")}
    for name in names:
        mine = [m for m in MISTAKES if m.exercise == name]
        assert len(mine) >= 3, name
        assert sum(m.to_the_end for m in mine) == 1, name
    assert {m.exercise for m in MISTAKES} == names


# -- both modes ---------------------------------------------------------------------------------------------

def test_the_solution_holds_without_a_docker_engine(tmp_path, monkeypatch):
    """nbval on the solution with DOCKER_HOST pointing nowhere: the local-process path gives the same outputs."""
    home = tmp_path / "home"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", "GLASSBOX_HOME": str(home),
           "GLASSBOX_VAULT_PORT": str(pick_free_port()), "GLASSBOX_VAULT_BACKEND": "embedded"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SOLUTION.relative_to(REPO))],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        )
    finally:
        monkeypatch.setenv("GLASSBOX_HOME", str(home))
        monkeypatch.delenv("VAULT_ADDR", raising=False)
        monkeypatch.delenv("VAULT_TOKEN", raising=False)
        vault.down()  # the notebook's own dev server in its own home
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout), result.stdout[-2000:]
