"""What Vault says of a token a learner handed over, for the checks of labs 08 and 09.

Who issued it (its display name), its policies, and, for a wrapping token, what it wraps and for how long,
all without unwrapping it. Every function answers "nothing known" (``{}``, ``""``, ``None``, ``False``) rather
than raising, so a check can turn the answer into feedback.
"""

from __future__ import annotations

__all__ = ["MAX_WRAP_TTL", "ORCHESTRATOR_DISPLAY", "is_plain_secret_id", "token_display_name", "token_lookup",
           "token_policies", "wrapping_lookup"]

MAX_WRAP_TTL = 300  # seconds: a wrapped secret ID only has to survive its trip to the agent (= bootstrap.MAX_WRAP_TTL)
ORCHESTRATOR_DISPLAY = "token-glassbox-orchestrator"  # what Vault records for tokens the orchestrator made


def token_lookup(admin, token: str) -> dict:
    """``auth/token/lookup`` of any token (a wrapping token too), by the administrator; {} if unknown."""
    import hvac.exceptions

    try:
        return admin.adapter.post("/v1/auth/token/lookup", json={"token": token})["data"] or {}
    except (hvac.exceptions.VaultError, KeyError, TypeError, ValueError):
        return {}


def token_policies(admin, token: str) -> list:
    return list(token_lookup(admin, token).get("policies") or []) if token else []


def token_display_name(admin, token: str) -> str:
    return str(token_lookup(admin, token).get("display_name") or "")


def wrapping_lookup(addr: str, token: str) -> dict | None:
    """``sys/wrapping/lookup``: the token's creation path and TTL, without unwrapping it (None if not live)."""
    import hvac
    import hvac.exceptions

    try:
        return hvac.Client(url=addr, token="").adapter.post("/v1/sys/wrapping/lookup", json={"token": token})["data"]
    except (hvac.exceptions.VaultError, KeyError, TypeError):
        return None


def is_plain_secret_id(admin, value: str) -> bool:
    """Whether ``value`` is a secret ID of the service's role itself (not a wrapping token around one)."""
    import hvac.exceptions

    from glassbox.vault import bootstrap

    try:
        response = admin.auth.approle.read_secret_id(bootstrap.ROLE, str(value), mount_point=bootstrap.APPROLE_MOUNT)
    except (hvac.exceptions.VaultError, ValueError):
        return False
    return isinstance(response, dict) and bool(response.get("data"))  # an unknown one answers 204, no body
