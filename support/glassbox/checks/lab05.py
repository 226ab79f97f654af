"""Self-checks for Lab 05 – Vault basics: KV version 2, versions and rollback, tokens, errors.

Every check reads the server's state through the learner's objects and the admin ``client``; no message
ever contains a secret value, and every exercise cell must print none (:func:`expect_no_secret_printed`).
Two exercises are predictions, checked with :func:`glassbox.checks.choose`; ``tests/test_checks_lab05.py``
proves each right answer against the real server.
"""

from __future__ import annotations

import hvac
import hvac.exceptions

from glassbox.checks import choose, exercise, expect, expect_answered, fail, is_stub
from glassbox.checks.lab00 import expect_no_secret_printed

_MAX_TOKEN_TTL = 3600  # seconds: a token for a short task should not outlive an hour


def _read(client: hvac.Client, path: str, mount_point: str, version: int | None = None) -> dict | None:
    try:
        return client.secrets.kv.v2.read_secret_version(
            path=path, version=version, mount_point=mount_point, raise_on_deleted_version=True)["data"]
    except hvac.exceptions.InvalidPath:
        return None


@exercise(lab="05", name="kv-write", title="Write a secret where hvac expects it",
          hint=("hvac builds the API path itself from the mount point and a path *inside* the mount; "
                "keep what the write returns.",
                "`kv.create_or_update_secret` takes `path=` (relative to the mount), `secret=` (a dict) and "
                "`mount_point=`; the course's KV mount is named `secret`."))
def check_kv_write(written, client: hvac.Client, path: str, mount_point: str = "secret",
                   keys=("api_url", "api_key")):
    """``written`` is hvac's response to the learner's write; the secret must sit at ``mount_point``/``path``."""
    expect_answered(written, "written")
    expect_no_secret_printed()
    expect(isinstance(written, dict) and isinstance(written.get("data"), dict) and "version" in written["data"],
           "`written` is not hvac's response to a KV v2 write (it has no data.version).",
           hint=("Keep the *response* of the write, not the dict you wrote.",
                 "Assign the value that `create_or_update_secret(...)` returns to `written`."))
    stored = _read(client, path, mount_point)
    if stored is None:
        for wrong in (f"{mount_point}/data/{path}", f"{mount_point}/{path}", f"data/{path}"):
            if _read(client, wrong, mount_point) is not None:
                fail(f"nothing at `{path}`, but there is a secret at `{wrong}` inside the mount: the path you "
                     f"gave hvac includes the mount (the API path is then {mount_point}/data/{wrong}).",
                     hint=("hvac adds the mount and `data/` itself: `path=` is relative to the mount.",
                           f"Pass the path as the lab defines it (`API_PATH`, {path!r}) and the mount "
                           f"separately as `mount_point={mount_point!r}`."))
        fail(f"there is no secret at `{path}` in the `{mount_point}` mount.",
             hint=("Write to the lab's path, in the lab's mount.",
                   f"`path=API_PATH` ({path!r}), `mount_point={mount_point!r}`."))
    expect(set(keys) <= set(stored["data"]),
           f"the secret at `{path}` has keys {sorted(stored['data'])}, expected {sorted(keys)}.",
           hint=("The app looks its settings up by name: the key names must be exactly the ones asked for.",
                 f"Write a dict whose keys are {', '.join(f'`{key}`' for key in keys)}."))
    expect(written["data"]["version"] == stored["metadata"]["version"],
           "`written` is not the latest write at that path (a later write has happened since).",
           hint=("The check compares your response with the server's latest version.",
                 "Re-run your write cell, which calls the check again."))
    return f"the secret is at {mount_point}/data/{path} in the API, which hvac reached from path={path!r}."


@exercise(lab="05", name="rollback", title="Roll back by writing an old version back",
          hint=("A rollback is a new write whose data is an old version's data; with check-and-set required, "
                "the write must say which version it believes is current.",
                "Read the old version with `read_secret_version(..., version=1)`, look up `current_version` in "
                "the metadata, and write the old pairs back with `cas=` that number."))
def check_rollback(client: hvac.Client, path: str, to_version: int = 1, mount_point: str = "secret"):
    """The latest version at ``path`` must hold ``to_version``'s data, as a new version on top."""
    expect_no_secret_printed()
    old = _read(client, path, mount_point, version=to_version)
    expect(old is not None, f"version {to_version} at `{path}` is not readable (deleted or destroyed).",
           hint=("The lab's first KV cell starts this secret's history again.",
                 "Re-run the lab's cells from the top of the KV section."))
    latest = _read(client, path, mount_point)
    expect(latest is not None, f"the latest version at `{path}` is deleted: deleting the bad version is not "
                               "a rollback (the app would find no secret at all).",
           hint=("Undo the delete first, then write the old data as a new version.",
                 "`kv.undelete_secret_versions(path=..., versions=[...])` brings the deleted version back."))
    version = latest["metadata"]["version"]
    expect(version > to_version,
           f"the latest version is {version}: a rollback writes version {to_version}'s data as a NEW version.",
           hint=("History is never rewritten: the old data goes on top, as a new version.",
                 "Write the old version's pairs back with `create_or_update_secret` (check-and-set: `cas=`)."))
    expect(set(latest["data"]) == set(old["data"]),
           f"the latest version has keys {sorted(latest['data'])}, version {to_version} has {sorted(old['data'])}.",
           hint=("You wrote back the layers around the pairs, not the pairs.",
                 "The old version's pairs are two `data` levels down in its read response."))
    expect(latest["data"] == old["data"],
           f"the latest version (v{version}) does not hold version {to_version}'s values.",
           hint=(f"Read version {to_version} itself (reads give the latest version unless you ask), and write "
                 "its data back unchanged.",
                 "`read_secret_version` takes `version=`; then `create_or_update_secret(..., cas=...)`."))
    return f"version {version} restores version {to_version}; the history (every version) is kept."


@exercise(lab="05", name="scoped-token", title="Create a token with a policy and a TTL",
          hint=("A task's token needs three limits: what it may do (a policy), how long it lives (a TTL), and a "
                "ceiling no renewal can pass (an explicit max TTL).",
                "`client.auth.token.create` takes `policies=`, `ttl=` and `explicit_max_ttl=`, as strings like "
                "`'30s'`, `'5m'` or `'2h'`."))
def check_scoped_token(token_response, client: hvac.Client, policy: str = "lab05-reader",
                       max_ttl: int = _MAX_TOKEN_TTL):
    """``token_response`` is hvac's response to ``auth.token.create``; the token is looked up on the server."""
    expect_answered(token_response, "token_response")
    expect_no_secret_printed()
    expect(isinstance(token_response, dict) and isinstance(token_response.get("auth"), dict),
           "`token_response` is not hvac's response to auth.token.create (it has no 'auth' part).",
           hint=("Keep the whole response of the create call: the next cells read the token out of it.",
                 "Assign what `client.auth.token.create(...)` returns, not the token inside it."))
    token = token_response["auth"]["client_token"]
    expect(token != client.token, "`token_response` holds your own admin token, not a new one.",
           hint=("A task gets a token of its own, never the administrator's.",
                 "Create a new token with `client.auth.token.create(...)`."))
    try:
        info = client.auth.token.lookup(token)["data"]
    except hvac.exceptions.Forbidden:
        fail("that token is no longer valid (revoked or expired).",
             hint=("A revoked token cannot come back: make a new one.", "Re-run the cell that creates it."))
    policies = info.get("policies") or []
    expect("root" not in policies,
           "the token carries the `root` policy: it may do anything (a token created without `policies=` "
           "inherits its parent's, here root's).",
           hint=("Name the policy the task needs; without one the new token copies yours.",
                 f"Pass `policies=` a list holding {policy!r}."))
    expect(policy in policies, f"the token's policies are {policies}, without {policy!r}.",
           hint=("The policy's name must match the one the lab created exactly.",
                 f"The policy is `READER_POLICY` ({policy!r})."))
    creation_ttl = info.get("creation_ttl") or 0
    expect(0 < creation_ttl <= max_ttl,
           f"the token's TTL is {creation_ttl // 3600}h"
           + (" (the token mount's default, 32 days: the system maximum)" if creation_ttl == 768 * 3600 else "")
           + ": it lives far longer than the task needs." if creation_ttl else "the token has no TTL: it never expires.",
           hint=("A task of a few minutes needs a token of a few minutes.",
                 f"Pass `ttl=` a duration string of at most {max_ttl // 60} minutes."))
    explicit_max = info.get("explicit_max_ttl") or 0
    expect(explicit_max > 0,
           "the token has no explicit max TTL: renewals could keep it alive up to the system maximum (32 days).",
           hint=("A ceiling of its own stops renewals from keeping the token alive for weeks.",
                 "Pass `explicit_max_ttl=` as well (one hour is plenty here)."))
    expect(explicit_max <= 24 * 3600, "the token's max TTL is over a day.",
           hint=("The ceiling is for this task, not for the week.", "An explicit max TTL of one hour is enough."))
    expect(info.get("renewable"), "the token is not renewable, so the next cells cannot renew it.",
           hint=("The lab renews this token below.", "Leave `renewable` at its default (True)."))
    return f"a renewable token with {policies}, TTL {creation_ttl // 60} min and a hard max of {explicit_max // 60} min."


@exercise(lab="05", name="read-or-none", title="Handle hvac's exceptions on purpose",
          hint=("Decide which failure means \"absent\" and catch only that one; every other failure must still "
                "reach the caller.",
                "Which HTTP status means \"nothing there\" in section 4's table, and what must the read be told "
                "so that a deleted latest version counts too?"))
def check_read_or_none(read_secret_or_none, client: hvac.Client, present_path: str, deleted_path: str,
                       mount_point: str = "secret"):
    """``read_secret_or_none(client, path)``: pairs, ``None`` when nothing is there, and Forbidden propagates."""
    expect(callable(read_secret_or_none), "`read_secret_or_none` is not a function.",
           hint=("The exercise is the body of a function.",
                 "Keep the `def read_secret_or_none(client, path):` line and fill in its body."))
    stored = _read(client, present_path, mount_point)
    expect(stored is not None, f"the lab's secret at `{present_path}` is missing.",
           hint=("The check reads the lab's database secret through your function.",
                 "Re-run the lab's KV cells first."))
    got = read_secret_or_none(client, present_path)
    expect(not is_stub(got), f"read_secret_or_none(client, {present_path!r}) returned {got!r}.",
           hint=("Fill in the body: read the path, and return what the caller needs.",
                 "Read with `client.secrets.kv.v2.read_secret_version` and return the pairs out of the response."))
    expect_no_secret_printed()
    expect(isinstance(got, dict) and set(got) == set(stored["data"]),
           f"for an existing secret it should return the key/value pairs, got a {type(got).__name__}"
           + (f" with keys {sorted(got)}." if isinstance(got, dict) else "."),
           hint=("Return the pairs themselves, not the response around them.",
                 "The pairs are two `data` levels down in the read's response."))
    missing = f"{present_path}-does-not-exist"
    try:
        result = read_secret_or_none(client, missing)
    except hvac.exceptions.InvalidPath:
        fail("for a path with no secret it lets hvac.exceptions.InvalidPath escape.",
             hint=("\"Nothing there\" is a normal case here: turn that one exception into `None`.",
                   "Wrap the read in `try:` and catch `hvac.exceptions.InvalidPath` only."))
    expect(result is None, f"for a path with no secret it returned {type(result).__name__}, not None.",
           hint=("Absent means `None`.", "Return `None` when hvac raises InvalidPath."))
    try:
        result = read_secret_or_none(client, deleted_path)
    except hvac.exceptions.InvalidPath:
        fail("for a secret whose latest version is deleted it lets InvalidPath escape.",
             hint=("A deleted latest version is \"absent\" too.",
                   "With `raise_on_deleted_version=True` a deleted version raises InvalidPath: return None."))
    expect(result is None, "for a secret whose latest version is deleted it should return None.",
           hint=("A deleted latest version is \"absent\" too.",
                 "Pass `raise_on_deleted_version=True`, so that a deleted version raises InvalidPath."))
    nobody = client.auth.token.create(policies=["default"], ttl="2m", explicit_max_ttl="2m")["auth"]
    stranger = hvac.Client(url=client.url, token=nobody["client_token"])
    try:
        result = read_secret_or_none(stranger, present_path)
    except hvac.exceptions.Forbidden:
        pass
    else:
        fail("with a token that may not read the path it returned a value instead of raising Forbidden: "
             "a missing permission would look like a missing secret.",
             hint=("Catch only the exception that means \"absent\"; let a permission problem reach the caller.",
                   "Catch `hvac.exceptions.InvalidPath`, not `Exception` or `VaultError` (Forbidden is one)."))
    finally:
        client.auth.token.revoke(nobody["client_token"])
    return "missing and deleted secrets give None; a permission problem still raises Forbidden."


DESTROYED = {
    "a": "undelete brings version 2 back, as it does after a delete.",
    "b": "undelete is refused with an error (`InvalidRequest`), because version 2 is destroyed.",
    "c": "undelete answers without an error, yet reading version 2 still raises `InvalidPath`.",
    "d": "reading version 2 returns its metadata with an empty dict as its data.",
}


@exercise(lab="05", name="predict-destroy", title="Predict: undelete after destroy",
          hint=("Delete marks a version; destroy removes its data. What could an undelete still find?",
                "Undelete clears a mark that delete set. What does destroy leave for it to clear, and is "
                "\"nothing to do\" an error elsewhere in KV?"))
def check_destroy_prediction(prediction):
    """``prediction``: what happens when version 2 is destroyed and then undeleted (:data:`DESTROYED`)."""
    expect_answered(prediction, "prediction")
    return choose(prediction, DESTROYED, correct="c", why={
        "a": "undelete only clears a deletion mark; a destroyed version's data is gone, so there is nothing to "
             "bring back.",
        "b": "Vault does not refuse: the undelete succeeds (HTTP 204) and changes nothing. An operation that "
             "\"works\" without an effect is why the lab reads the version again instead of trusting the call.",
        "c": "right: the undelete succeeds (HTTP 204) and changes nothing; the version stays `destroyed`, and a "
             "read raises `InvalidPath`. Only a read tells you what really happened.",
        "d": "a destroyed version's read is a 404: hvac raises `InvalidPath` (the metadata, with "
             "`destroyed: true`, is only in the error's body).",
    })


NO_POLICY = {
    "a": "`InvalidPath` (404): the server says there is nothing there.",
    "b": "`Forbidden` (403): the token's policies do not allow the read.",
    "c": "the read works: the token is valid, and the secret exists.",
    "d": "`InvalidRequest` (400): the request is malformed for that token.",
}


@exercise(lab="05", name="predict-no-policy", title="Predict: a valid token without the policy",
          hint=("A valid token says *who* you are; a policy says *what* you may do. Which answer does Vault give "
                "when the second is missing?",
                "Look at the row of the table of `hvac` exceptions (section 4) about policies, or think of the "
                "HTTP status that means \"I know you, and no\"."))
def check_no_policy_prediction(prediction):
    """``prediction``: what a token with only the ``default`` policy gets when it reads the app's secret."""
    expect_answered(prediction, "prediction")
    return choose(prediction, NO_POLICY, correct="b", why={
        "a": "Vault checks the policy before it looks at the path: the token gets 403 whether or not something "
             "is there (so it cannot even probe which secrets exist), never 404.",
        "b": "right: 403 `Forbidden`. Vault checks the policy before it looks, so the same token gets 403 for a "
             "path where nothing exists: it cannot probe which secrets exist.",
        "c": "being a valid token only says who you are; the `default` policy names no path under `secret/`, "
             "so the read is denied (403).",
        "d": "the request is well formed; it is the token's policies that refuse it: 403 `Forbidden`.",
    })
