"""The orchestrator's Delivery keeps working for as long as it runs: it renews its own (periodic) token.

Lifetimes are compressed to seconds: an orchestrator token with a period of 8 s must still deliver after four
periods, and a token that cannot be renewed (the control: what the tests would catch without renewal) stops
delivering once it expires, with errors to show for it, as does a renewal that fails.
"""

import logging
import time

import hvac
import pytest

from glassbox.vault import agent, bootstrap, orchestrator

from helpers import eventually

PERIOD = 8  # seconds


@pytest.fixture(scope="module")
def setup(vault_client):
    return bootstrap.ensure(vault_client)


def _live_wrapping_token(vault_client, directory) -> bool:
    wrapped = (directory / agent.SECRET_ID_FILE).read_text().strip()
    anonymous = hvac.Client(url=vault_client.url, token="")
    try:
        info = anonymous.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapped})["data"]
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden):
        return False
    return info["creation_path"] == bootstrap.Setup().secret_id_creation_path


def test_the_orchestrator_token_is_periodic_with_its_policy_only(vault_client, setup):
    client = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client))
    info = client.auth.token.lookup_self()["data"]
    assert sorted(info["policies"]) == ["default", bootstrap.ORCHESTRATOR_POLICY]
    assert info["period"] == bootstrap.duration_seconds(bootstrap.ORCHESTRATOR_TOKEN_PERIOD) == 3600
    assert info["renewable"] and info["explicit_max_ttl"] == 0 and info["display_name"] == "token-glassbox-orchestrator"
    client.auth.token.revoke_self()
    one_off = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client, ttl="5m"))
    info = one_off.auth.token.lookup_self()["data"]
    assert (info.get("period") or 0, info["renewable"], info["creation_ttl"]) == (0, False, 300)
    one_off.auth.token.revoke_self()


def test_delivery_renews_its_periodic_token_and_delivers_past_many_periods(vault_client, setup, tmp_path):
    client = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client, period=f"{PERIOD}s"))
    with orchestrator.Delivery(client, tmp_path, wrap_ttl="2s") as delivery:  # a new one every second
        time.sleep(4 * PERIOD + 2)
        assert delivery.errors == []
        start = delivery.delivered
        assert eventually(lambda: delivery.delivered > start + 1, timeout=5)  # still delivering after 4 periods
        assert _live_wrapping_token(vault_client, tmp_path)
    assert delivery.errors == []
    assert delivery.renewed >= 4                    # alive after 4 periods: renewed at least once in each
    assert 0 < client.auth.token.lookup_self()["data"]["ttl"] <= PERIOD
    client.auth.token.revoke_self()


def test_without_renewal_delivery_stops_when_the_token_expires(vault_client, setup, tmp_path, caplog):
    """The control: a token nobody can renew dies, and so do the deliveries; the directory keeps a dead one."""
    client = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client, ttl="4s"))
    with caplog.at_level(logging.WARNING, logger="glassbox.vault.orchestrator"):
        with orchestrator.Delivery(client, tmp_path, wrap_ttl="2s") as delivery:
            assert eventually(lambda: delivery.errors, timeout=10)
            delivered = delivery.delivered
            time.sleep(2.5)  # the last wrapped secret ID expires too
    assert delivery.delivered == delivered and delivery.renewed == 0
    assert all(error.startswith("delivering a wrapped secret ID: Forbidden") for error in delivery.errors)
    assert not _live_wrapping_token(vault_client, tmp_path)
    messages = [record.getMessage() for record in caplog.records]
    assert any("cannot be renewed" in message for message in messages), messages
    assert sum("delivering a wrapped secret ID" in message for message in messages) == 1  # once, not each poll


def test_a_failed_renewal_is_reported_in_errors_and_the_log(vault_client, setup, tmp_path, caplog):
    client = hvac.Client(url=vault_client.url, token=bootstrap.orchestrator_token(vault_client, period="4s"))
    with caplog.at_level(logging.ERROR, logger="glassbox.vault.orchestrator"):
        with orchestrator.Delivery(client, tmp_path, wrap_ttl="2s") as delivery:
            assert eventually(lambda: delivery.delivered >= 1)
            vault_client.auth.token.revoke(client.token)   # someone revoked it: its next renewal fails
            assert eventually(lambda: any(e.startswith("renewing the orchestrator's token: Forbidden")
                                          for e in delivery.errors), timeout=6), delivery.errors
    assert delivery.renewed == 0
    assert any("orchestrator: renewing the orchestrator's token: Forbidden" in record.getMessage()
               for record in caplog.records)
