"""The self-check helper: clear feedback instead of tracebacks, and progress recorded."""

import json

import pytest

from glassbox.checks import choose, exercise, expect, expect_answered, expect_close
from glassbox.course import progress


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))


@exercise(lab="99", name="square", title="Square a number")
def check_square(value):
    expect(value is not ..., "`value` is still the stub `...`.", hint="Assign 3 ** 2 to `value`.")
    expect(value == 9, f"expected 9, got {value!r}.", hint="Square means multiply by itself.")
    return "9 is right."


def test_passing_check_is_truthy_and_says_so():
    feedback = check_square(9)
    assert feedback and feedback.message == "9 is right."
    assert "[PASSED] Lab 99 · Square a number" in repr(feedback)
    assert "Passed" in feedback._repr_html_()


def test_stub_fails_with_message_and_hint():
    feedback = check_square(...)
    assert not feedback
    assert feedback.message == "`value` is still the stub `...`." and feedback.hint == "Assign 3 ** 2 to `value`."
    assert "Hint: Assign 3 ** 2" in repr(feedback)


def test_unexpected_error_becomes_feedback_not_traceback():
    @exercise(lab="99", name="len", title="Length")
    def check_len(items):
        expect(len(items) == 2, "two items expected")

    feedback = check_len(5)  # len() of an int raises TypeError inside the check
    assert not feedback and "TypeError" in feedback.message and feedback.hint


def test_html_escapes_learner_values():
    assert "<script>" not in check_square("<script>")._repr_html_()


def test_progress_keeps_the_best_outcome_and_the_latest_and_reset_forgets(tmp_path):
    check_square(4)
    assert progress.load()["99"]["square"]["passed"] is False
    check_square(9)   # a pass keeps the counts and the last "not yet" message
    assert progress.load()["99"]["square"] | {"at": None} == {
        "title": "Square a number", "passed": True, "latest": True, "attempts": 2, "failures": 1,
        "feedback": "expected 9, got 4.", "at": None}
    check_square(...)
    assert progress.load()["99"]["square"] | {"at": None} == {
        "title": "Square a number", "passed": True, "latest": False, "attempts": 3, "failures": 2,
        "feedback": "`value` is still the stub `...`.", "at": None}
    assert progress.reset("99") == 1 and "99" not in progress.load()


def test_damaged_progress_file_is_set_aside_not_lost(tmp_path):
    (tmp_path / "progress.json").write_text("{not json")
    check_square(9)
    assert json.loads((tmp_path / "progress.json").read_text())["99"]["square"]["passed"] is True
    assert [p.read_text() for p in tmp_path.glob("progress.damaged-*.json")] == ["{not json"]


@exercise(lab="99", name="tiers", title="Hint tiers", hint=("Think about `len`.", "Count with **len(items)**."))
def check_tiers(items):
    expect_answered(items, "items")
    expect(len(items) == 2, "`items` should hold two things.", hint=("Which two?", "The first two letters."))


def test_a_stub_gets_the_exercises_own_hint_tiers_and_markdown_renders():
    feedback = check_tiers(...)
    assert feedback.message == "`items` is still the stub." and feedback.hints == ("Think about `len`.",
                                                                                  "Count with **len(items)**.")
    assert repr(feedback).endswith("Hint: Think about `len`.\n  Hint 2: Count with **len(items)**.")
    html = feedback._repr_html_()
    assert "<code>items</code> is still the stub." in html and "<b>Hint:</b> Think about <code>len</code>." in html
    assert "<details><summary>Another hint</summary>Count with <strong>len(items)</strong>.</details>" in html


def test_a_failure_gives_its_own_tiers():
    assert check_tiers([1]).hints == ("Which two?", "The first two letters.")


@exercise(lab="99", name="choice", title="A choice")
def check_choice(answer):
    expect_answered(answer, "answer")
    return choose(answer, {"a": "PD", "b": "ALE"}, correct="b",
                  why={"a": "PD averages over impossible pairs.", "b": "ALE stays within the data."})


@pytest.mark.parametrize("answer, says", [
    ("a", "not quite: PD averages over impossible pairs."),
    ("c", "'c' is not one of the options"),
    (2, "should be one of the letters"),
    (..., "`answer` is still the stub."),
])
def test_a_wrong_choice_names_its_misconception(answer, says):
    feedback = check_choice(answer)
    assert not feedback and says in feedback.message and feedback.hints


def test_the_right_choice_passes_with_its_explanation():
    assert check_choice(" B ").message == "ALE stays within the data."


@exercise(lab="99", name="number", title="A number")
def check_number(value):
    expect_close(value, 5.0, 0.5, "about five, not that.", hint="Read the table.")


@pytest.mark.parametrize("value, passed", [(5.2, True), ("5.4", True), (6.0, False), ("five", False)])
def test_a_numeric_answer_within_its_tolerance(value, passed):
    assert bool(check_number(value)) is passed


def test_a_vault_that_stopped_is_not_blamed_on_the_learner(tmp_path):
    import hvac

    @exercise(lab="99", name="vault-read", title="Read from Vault")
    def check_vault_read(client):
        client.secrets.kv.v2.read_secret_version(path="x", mount_point="secret")

    feedback = check_vault_read(hvac.Client(url="http://127.0.0.1:9", token="t"))  # nothing listens on port 9
    assert not feedback and feedback.message.startswith("the course's Vault does not answer: it has stopped.")
    assert "not your answer's fault" in feedback.message and "glassbox vault up" in feedback.message
    assert "could not read your answer" not in feedback.message
    assert "99" not in progress.load()      # nothing is recorded against the learner
