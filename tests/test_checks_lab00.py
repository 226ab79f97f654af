"""Lab 00's self-check passes on the solution and explains each common mistake."""

import secrets

import pytest

from glassbox.checks.lab00 import check_first_secret

PATH = "glassbox/tests/lab00"


@pytest.fixture(scope="module")
def response(vault_client):
    value = {"username": "learner", "password": secrets.token_urlsafe(18)}
    vault_client.secrets.kv.v2.create_or_update_secret(path=PATH, secret=value, mount_point="secret")
    return vault_client.secrets.kv.v2.read_secret_version(path=PATH, mount_point="secret",
                                                           raise_on_deleted_version=True)


def test_solution_passes(response, vault_client):
    assert check_first_secret(response["data"]["data"], vault_client, PATH)


@pytest.mark.parametrize("answer, says", [
    (..., "still the stub"),
    ("learner", "should be a dict"),
])
def test_stub_and_wrong_type_fail_with_a_hint(answer, says, vault_client):
    feedback = check_first_secret(answer, vault_client, PATH)
    assert not feedback and says in feedback.message and feedback.hint


def test_whole_response_or_its_data_part_is_refused(response, vault_client):
    for answer in (response, response["data"]):
        feedback = check_first_secret(answer, vault_client, PATH)
        assert not feedback and "metadata" in feedback.message


def test_a_changed_value_is_caught_without_revealing_it(response, vault_client):
    forged = dict(response["data"]["data"], password="not-the-password")
    feedback = check_first_secret(forged, vault_client, PATH)
    assert not feedback and "a value differs" in feedback.message
    assert response["data"]["data"]["password"] not in repr(feedback)
