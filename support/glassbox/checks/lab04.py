"""Self-checks for Lab 04 – Vault basics: KV version 2, versions and rollback, tokens, errors.

Every check reads the server's state through the learner's objects and the admin ``client``; no message
ever contains a secret value.
"""

from __future__ import annotations

import hvac
import hvac.exceptions

from glassbox.checks import exercise, expect, fail, is_stub

_MAX_TOKEN_TTL = 3600  # seconds: a token for a short task should not outlive an hour



def _read(client: hvac.Client, path: str, mount_point: str, version: int | None = None) -> dict | None:
    try:
        return client.secrets.kv.v2.read_secret_version(
            path=path, version=version, mount_point=mount_point, raise_on_deleted_version=True)["data"]
    except hvac.exceptions.InvalidPath:
        return None


@exercise(lab="04", name="kv-write", title="Write a secret where hvac expects it")
def check_kv_write(written, client: hvac.Client, path: str, mount_point: str = "secret",
                   keys=("api_url", "api_key")):
    """``written`` is hvac's response to the learner's write; the secret must sit at ``mount_point``/``path``."""
    expect(not is_stub(written), "`written` is still the stub.",
           hint="Call client.secrets.kv.v2.create_or_update_secret(path=API_PATH, secret={...}, "
                "mount_point='secret') and keep its response in `written`.")
    expect(isinstance(written, dict) and isinstance(written.get("data"), dict) and "version" in written["data"],
           "`written` is not hvac's response to a KV v2 write (it has no data.version).",
           hint="Keep what create_or_update_secret returns: written = client.secrets.kv.v2.create_or_update_secret(...).")
    stored = _read(client, path, mount_point)
    if stored is None:
        for wrong in (f"{mount_point}/data/{path}", f"{mount_point}/{path}", f"data/{path}"):
            if _read(client, wrong, mount_point) is not None:
                fail(f"nothing at `{path}`, but there is a secret at `{wrong}` inside the mount: the path you "
                     f"gave hvac includes the mount (the API path is then {mount_point}/data/{wrong}).",
                     hint=f"hvac adds the mount and `data/` itself: pass path={path!r}, "
                          f"mount_point={mount_point!r}.")
        fail(f"there is no secret at `{path}` in the `{mount_point}` mount.",
             hint=f"Write to path={path!r} with mount_point={mount_point!r}.")
    expect(set(keys) <= set(stored["data"]),
           f"the secret at `{path}` has keys {sorted(stored['data'])}, expected {sorted(keys)}.",
           hint="Write a dict with exactly those keys as `secret=`.")
    expect(written["data"]["version"] == stored["metadata"]["version"],
           "`written` is not the latest write at that path (a later write has happened since).",
           hint="Re-run your write cell, then the check.")
    return f"the secret is at {mount_point}/data/{path} in the API, which hvac reached from path={path!r}."


@exercise(lab="04", name="rollback", title="Roll back by writing an old version back")
def check_rollback(client: hvac.Client, path: str, to_version: int = 1, mount_point: str = "secret"):
    """The latest version at ``path`` must hold ``to_version``'s data, as a new version on top."""
    old = _read(client, path, mount_point, version=to_version)
    expect(old is not None, f"version {to_version} at `{path}` is not readable (deleted or destroyed).",
           hint="Re-run the lab's cells from the top of the KV section.")
    latest = _read(client, path, mount_point)
    expect(latest is not None, f"the latest version at `{path}` is deleted.",
           hint="Undelete it, or write the old version back as a new version.")
    version = latest["metadata"]["version"]
    expect(version > to_version,
           f"the latest version is {version}: a rollback writes version {to_version}'s data as a NEW version.",
           hint="Read version 1 and write its data back with create_or_update_secret (use cas=<current version>).")
    expect(set(latest["data"]) == set(old["data"]),
           f"the latest version has keys {sorted(latest['data'])}, version {to_version} has {sorted(old['data'])}.",
           hint="Write back response['data']['data'] of the old version, not the whole response.")
    expect(latest["data"] == old["data"],
           f"the latest version (v{version}) does not hold version {to_version}'s values.",
           hint=f"Read version {to_version} (version={to_version}) and write its data back unchanged.")
    return f"version {version} restores version {to_version}; the history (every version) is kept."


@exercise(lab="04", name="scoped-token", title="Create a token with a policy and a TTL")
def check_scoped_token(token_response, client: hvac.Client, policy: str = "lab04-reader",
                       max_ttl: int = _MAX_TOKEN_TTL):
    """``token_response`` is hvac's response to ``auth.token.create``; the token is looked up on the server."""
    expect(not is_stub(token_response), "`token_response` is still the stub.",
           hint="Call client.auth.token.create(policies=[...], ttl=..., explicit_max_ttl=...).")
    expect(isinstance(token_response, dict) and isinstance(token_response.get("auth"), dict),
           "`token_response` is not hvac's response to auth.token.create (it has no 'auth' part).",
           hint="Keep the whole response: token_response = client.auth.token.create(...).")
    token = token_response["auth"]["client_token"]
    expect(token != client.token, "`token_response` holds your own admin token, not a new one.",
           hint="Create a new token with client.auth.token.create(...).")
    try:
        info = client.auth.token.lookup(token)["data"]
    except hvac.exceptions.Forbidden:
        fail("that token is no longer valid (revoked or expired).", hint="Re-run the cell that creates it.")
    policies = info.get("policies") or []
    expect("root" not in policies, "the token carries the `root` policy: it may do anything, forever.",
           hint=f"Pass policies=[{policy!r}] so that the token gets only what it needs.")
    expect(policy in policies, f"the token's policies are {policies}, without {policy!r}.",
           hint=f"Pass policies=[{policy!r}].")
    creation_ttl = info.get("creation_ttl") or 0
    expect(0 < creation_ttl <= max_ttl,
           f"the token's TTL is {creation_ttl // 3600}h"
           + (" (the system default, 32 days)" if creation_ttl == 768 * 3600 else "")
           + ": it lives far longer than the task needs." if creation_ttl else "the token has no TTL: it never expires.",
           hint="Pass ttl='10m' (anything up to 1h).")
    explicit_max = info.get("explicit_max_ttl") or 0
    expect(explicit_max > 0,
           "the token has no explicit max TTL: renewals could keep it alive for as long as the system allows.",
           hint="Pass explicit_max_ttl='1h' as a hard ceiling on renewals.")
    expect(explicit_max <= 24 * 3600, "the token's max TTL is over a day.", hint="Use explicit_max_ttl='1h'.")
    expect(info.get("renewable"), "the token is not renewable, so the next cells cannot renew it.",
           hint="Leave renewable at its default (True).")
    return f"a renewable token with {policies}, TTL {creation_ttl // 60} min and a hard max of {explicit_max // 60} min."


@exercise(lab="04", name="read-or-none", title="Handle hvac's exceptions on purpose")
def check_read_or_none(read_secret_or_none, client: hvac.Client, present_path: str, deleted_path: str,
                       mount_point: str = "secret"):
    """``read_secret_or_none(client, path)``: pairs, ``None`` when nothing is there, and Forbidden propagates."""
    expect(callable(read_secret_or_none), "`read_secret_or_none` is not a function.",
           hint="Keep the `def read_secret_or_none(client, path):` line and fill in its body.")
    stored = _read(client, present_path, mount_point)
    expect(stored is not None, f"the lab's secret at `{present_path}` is missing.",
           hint="Re-run the lab's KV cells first.")
    got = read_secret_or_none(client, present_path)
    expect(not is_stub(got), f"read_secret_or_none(client, {present_path!r}) returned {got!r}.",
           hint="Read with client.secrets.kv.v2.read_secret_version(..., raise_on_deleted_version=True) "
                "and return response['data']['data'].")
    expect(isinstance(got, dict) and set(got) == set(stored["data"]),
           f"for an existing secret it should return the key/value pairs, got a {type(got).__name__}"
           + (f" with keys {sorted(got)}." if isinstance(got, dict) else "."),
           hint="Return response['data']['data'], the pairs themselves.")
    missing = f"{present_path}-does-not-exist"
    try:
        result = read_secret_or_none(client, missing)
    except hvac.exceptions.InvalidPath:
        fail("for a path with no secret it lets hvac.exceptions.InvalidPath escape.",
             hint="Catch hvac.exceptions.InvalidPath and return None.")
    expect(result is None, f"for a path with no secret it returned {type(result).__name__}, not None.",
           hint="Return None when hvac raises InvalidPath.")
    try:
        result = read_secret_or_none(client, deleted_path)
    except hvac.exceptions.InvalidPath:
        fail("for a secret whose latest version is deleted it lets InvalidPath escape.",
             hint="With raise_on_deleted_version=True a deleted version raises InvalidPath too: return None.")
    expect(result is None, "for a secret whose latest version is deleted it should return None.",
           hint="Pass raise_on_deleted_version=True, so that a deleted version raises InvalidPath.")
    nobody = client.auth.token.create(policies=["default"], ttl="2m", explicit_max_ttl="2m")["auth"]
    stranger = hvac.Client(url=client.url, token=nobody["client_token"])
    try:
        result = read_secret_or_none(stranger, present_path)
    except hvac.exceptions.Forbidden:
        pass
    else:
        fail("with a token that may not read the path it returned a value instead of raising Forbidden: "
             "a missing permission would look like a missing secret.",
             hint="Catch only hvac.exceptions.InvalidPath (not Exception or VaultError); let Forbidden propagate.")
    finally:
        client.auth.token.revoke(nobody["client_token"])
    return "missing and deleted secrets give None; a permission problem still raises Forbidden."
