"""Lab 00's self-checks pass on the solution and name each catalogued mistake, without revealing a value.

Every entry of ``tests/mistakes/lab00.py`` is proved here with the object its wrong code produces; the two
predictions are proved true against the real server.
"""

import secrets
import sys
import types

import hvac
import hvac.exceptions
import pytest

from glassbox.checks import lab00
from glassbox.checks.lab00 import check_first_secret, check_made_up_token, check_safe_to_commit
from helpers import assert_not_yet

PATH = "glassbox/tests/lab00"


@pytest.fixture(scope="module")
def response(vault_client):
    value = {"username": "learner", "password": secrets.token_urlsafe(18)}
    vault_client.secrets.kv.v2.create_or_update_secret(path=PATH, secret=value, mount_point="secret")
    return vault_client.secrets.kv.v2.read_secret_version(path=PATH, mount_point="secret",
                                                           raise_on_deleted_version=True)


@pytest.fixture
def printed_a_secret(monkeypatch):
    """The kernel's masking as it reports a cell that printed the password (whether or not it has landed)."""
    where = f"the value of 'password' at http://127.0.0.1/v1/secret/data/{PATH}"
    fake = types.SimpleNamespace(leaks_in_this_cell=lambda: [where])
    monkeypatch.setitem(sys.modules, "glassbox.masking", fake)
    monkeypatch.setattr("glassbox.masking", fake, raising=False)
    return where


# -- first-secret ---------------------------------------------------------------------------------------

def test_solution_passes(response, vault_client):
    feedback = check_first_secret(response["data"]["data"], vault_client, PATH)
    assert feedback, feedback
    assert "printed none" in feedback.message
    assert response["data"]["data"]["password"] not in repr(feedback)


def test_the_stub_fails_with_the_exercise_hints(vault_client):
    feedback = check_first_secret(..., vault_client, PATH)
    assert_not_yet(feedback, "still the stub")
    assert feedback.hints == check_first_secret.hints and len(feedback.hints) == 2


@pytest.mark.parametrize("part", [lambda r: r, lambda r: r["data"]], ids=["whole response", "its data part"])
def test_whole_response_or_its_data_part_is_refused(response, vault_client, part):
    assert_not_yet(check_first_secret(part(response), vault_client, PATH), "metadata")


def test_one_value_instead_of_the_dict_is_refused_without_showing_it(response, vault_client):
    password = response["data"]["data"]["password"]
    feedback = check_first_secret(password, vault_client, PATH)
    assert_not_yet(feedback, "should be a dict", "not a str")
    assert password not in repr(feedback)


def test_a_hand_built_dict_is_caught_without_revealing_the_value(response, vault_client):
    forged = {"username": "learner", "password": "hunter2-typed-by-hand"}
    feedback = check_first_secret(forged, vault_client, PATH)
    assert_not_yet(feedback, "a value differs")
    assert response["data"]["data"]["password"] not in repr(feedback)


def test_printing_the_secret_fails_even_with_the_right_answer(response, vault_client, printed_a_secret):
    feedback = check_first_secret(response["data"]["data"], vault_client, PATH)
    assert_not_yet(feedback, "printed a secret value", "password", "metadata")
    assert response["data"]["data"]["password"] not in repr(feedback)


def test_no_masking_module_means_no_leak(monkeypatch):
    monkeypatch.setitem(sys.modules, "glassbox.masking", None)  # import raises ImportError
    monkeypatch.delattr("glassbox.masking", raising=False)
    assert lab00._printed_secrets() == []


def test_a_path_that_includes_the_mount_raises_invalid_path_in_the_cell(vault_client, response):
    """The catalogue's 'mount in the path': hvac raises in the learner's cell, and the hints name the mount."""
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault_client.secrets.kv.v2.read_secret_version(path=f"secret/{PATH}", mount_point="secret",
                                                       raise_on_deleted_version=True)
    assert "mount_point" in " ".join(check_first_secret.hints)


# -- made-up-token (a prediction) -----------------------------------------------------------------------

def test_the_made_up_token_prediction_is_what_the_server_does(vault_server):
    stranger = hvac.Client(url=vault_server.addr, token="not-a-real-token")   # b: no error when created...
    assert stranger.is_authenticated() is False                                 # ...and False, not an error
    with pytest.raises(hvac.exceptions.Forbidden):                              # a real request raises
        stranger.secrets.kv.v2.read_secret_version(path=PATH, mount_point="secret", raise_on_deleted_version=True)
    feedback = check_made_up_token("b")
    assert feedback and "403" in feedback.message


@pytest.mark.parametrize("answer, says", [
    (..., "still the stub"),
    ("a", "sends nothing"),
    ("c", "sends nothing"),
    ("d", "catches the server's 403"),
    (True, "one of the letters"),
    ("e", "not one of the options"),
])
def test_each_wrong_prediction_is_told_its_misconception(answer, says):
    assert_not_yet(check_made_up_token(answer), says)


# -- safe-to-commit (an interpretation) -----------------------------------------------------------------

@pytest.mark.parametrize("answer", ["a c", "c a", "a, c", {"a", "c"}, ["C", "A"]])
def test_metadata_only_is_safe_to_commit(answer):
    feedback = check_safe_to_commit(answer)
    assert feedback, feedback
    assert "metadata" in feedback.message


@pytest.mark.parametrize("answer, says", [
    (..., "still the stub"),
    ("a c d", "is a credential"),
    ("a b c", "shows the password itself"),
    ("c", "not all that holds"),
    ("b d", "is a credential"),
])
def test_each_unsafe_choice_is_named(answer, says):
    assert_not_yet(check_safe_to_commit(answer), says)


def test_first_hints_never_paste_the_answers():
    for check, answer in ((check_made_up_token, '"b"'), (check_safe_to_commit, '"a c"'),
                          (check_first_secret, '["data"]["data"]')):
        assert answer not in check.hints[0]


def test_no_hint_tier_says_where_the_pairs_sit():
    hints = " ".join(check_first_secret.hints)
    assert '["data"]["data"]' not in hints and "two `data` levels" not in hints
    assert "keys" in check_first_secret.hints[1]     # it says how to find them instead


def test_the_course_map_names_every_lab_once():
    import re
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parents[1]
    table = nbformat.read(root / "solutions" / "00-setup.ipynb", as_version=4).cells[0].source
    ranges = re.findall(r"^\| [^|]+ \| (\d\d)–(\d\d) \|", table, flags=re.MULTILINE)
    mapped = [f"{n:02d}" for first, last in ranges for n in range(int(first), int(last) + 1)]
    labs = sorted(p.name[:2] for p in (root / "solutions").glob("[0-9][0-9]-*.ipynb") if p.name[:2] != "00")
    assert mapped == labs
    assert "image" in table.splitlines()[[i for i, line in enumerate(table.splitlines()) if "01–04" in line][0]]
