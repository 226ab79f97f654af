"""The self-check helper: clear feedback instead of tracebacks, and progress recorded."""

import json

import pytest

from glassbox.checks import exercise, expect
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


def test_progress_records_latest_outcome_and_reset_forgets(tmp_path):
    check_square(4)
    assert progress.load()["99"]["square"]["passed"] is False
    check_square(9)
    assert progress.load()["99"]["square"]["passed"] is True
    assert progress.reset("99") == 1 and "99" not in progress.load()


def test_damaged_progress_file_is_set_aside_not_lost(tmp_path):
    (tmp_path / "progress.json").write_text("{not json")
    check_square(9)
    assert json.loads((tmp_path / "progress.json").read_text())["99"]["square"]["passed"] is True
    assert [p.read_text() for p in tmp_path.glob("progress.damaged-*.json")] == ["{not json"]
