"""Self-checks for Lab 00 – Setup and orientation.

A check whose exercise should print only metadata says "not yet" when a secret value reached the output of
the running cell: the course masks such values in the kernel (:mod:`glassbox.masking`), and
:func:`expect_no_secret_printed` reads what was masked. Lab 05's checks use it too.
"""

from __future__ import annotations

import hvac

from glassbox.checks import choose, exercise, expect, expect_answered


def _printed_secrets() -> list[str]:
    """Where the secret values printed by the running cell came from (none without kernel masking)."""
    try:
        from glassbox import masking
    except ImportError:  # an older support package: no masking, so nothing to report
        return []
    return masking.leaks_in_this_cell()


def expect_no_secret_printed() -> None:
    """Stop the running check when the cell's output showed a secret value (masked on screen, but shown)."""
    leaked = _printed_secrets()
    expect(not leaked,
           f"this cell printed a secret value ({'; '.join(leaked)}). The course masked it here, but the same "
           "line shows the value wherever nothing masks it: a terminal, a log, a kernel without the course.",
           hint=("Print metadata instead of the value: the keys, each value's length, the version.",
                 "Remove the `print` (or the bare expression at the end of a line) that shows the value, and "
                 "re-run the cell: the check looks only at what this cell printed."))


@exercise(lab="00", name="first-secret", title="Read your first secret back",
          hint=("A read's response wraps the secret in layers: look at the response's *keys* (never its values) "
                "to find the layer that holds `username` and `password`.",
                "`client.secrets.kv.v2.read_secret_version` takes the same `path` (inside the mount: no `secret/` "
                "in it) and `mount_point` as the write. Print `response.keys()`, then the keys of each nested "
                "dict, until you reach `username`."))
def check_first_secret(first_secret, client: hvac.Client, path: str, mount_point: str = "secret"):
    """``first_secret`` must be exactly the key/value pairs stored at ``path``, and this cell printed no value."""
    expect_answered(first_secret, "first_secret")
    expect_no_secret_printed()
    expect(isinstance(first_secret, dict),
           f"`first_secret` should be a dict of the secret's pairs, not a {type(first_secret).__name__}.",
           hint=("Keep the whole dict of pairs, not one value out of it.",
                 "The dict you want has the keys `username` and `password`."))
    expect(not {"data", "metadata"} & set(first_secret),
           "`first_secret` is the whole response or its 'data' part, with the metadata still around the pairs.",
           hint=("Look at the keys of what you kept: the pairs are one level deeper.",
                 "Inside the response's `data` there is a second `data` (the pairs) beside `metadata`."))
    stored = client.secrets.kv.v2.read_secret_version(
        path=path, mount_point=mount_point, raise_on_deleted_version=True)["data"]["data"]
    expect(set(first_secret) == set(stored),
           f"`first_secret` has keys {sorted(first_secret)}, the stored secret has {sorted(stored)}.",
           hint=("Read the secret at `PATH`, the one the cell above wrote.",
                 "Pass `path=PATH` and `mount_point='secret'`, as the write did."))
    expect(first_secret == stored, "the keys match but a value differs from the stored one.",
           hint=("Read the value from Vault rather than typing it: the password is random on every run.",
                 "Re-run the write cell, then your read: the check compares with the latest version."))
    return "you read the secret back, and this cell printed none of its values."


MADE_UP_TOKEN = {
    "a": "`True`: creating the client checked the token, so the client is authenticated.",
    "b": "`False`: `is_authenticated()` asks the server about the token, and the server does not know it.",
    "c": "creating the client raises `hvac.exceptions.Forbidden`.",
    "d": "`is_authenticated()` raises `hvac.exceptions.Forbidden`.",
}


@exercise(lab="00", name="made-up-token", title="Predict: a client with a made-up token",
          hint=("Ask yourself when an `hvac.Client` first talks to the server: when it is created, or when it "
                "makes a request?",
                "`is_authenticated()` is a question the client asks the server, and hvac answers it for you."))
def check_made_up_token(prediction):
    """``prediction``: which of :data:`MADE_UP_TOKEN` happens (the next cell shows it for real)."""
    expect_answered(prediction, "prediction")
    return choose(prediction, MADE_UP_TOKEN, correct="b", why={
        "a": "creating an `hvac.Client` sends nothing to the server: a made-up token looks fine until a request "
             "carries it.",
        "b": "right: creating the client sends nothing; `is_authenticated()` sends one lookup of the token, and "
             "hvac turns the server's 403 into `False`. A real request with that token (a read) raises "
             "`Forbidden`.",
        "c": "creating an `hvac.Client` sends nothing to the server, so nothing can fail yet: the token is only "
             "checked when a request carries it.",
        "d": "`is_authenticated()` catches the server's 403 itself and answers `False`; only a real request "
             "(a read, a write) raises `Forbidden`.",
    })


SAFE_TO_COMMIT = {
    "a": "`stored version 4`",
    "b": "`{'username': 'learner', 'password': 'kF3v…'}` (the output of `print(first_secret)`)",
    "c": "`{'password': '<24 characters>', 'username': '<7 characters>'}`",
    "d": "`root token: s.Xq…` (only the dev server's token, and the dev server runs on your laptop)",
}


@exercise(lab="00", name="safe-to-commit", title="Which outputs are safe to commit?",
          hint=("An output is safe when a stranger who reads it can do nothing they could not do before.",
                "Sort the outputs into metadata (about the secret) and credentials (the secret, or a key to it)."))
def check_safe_to_commit(answer):
    """``answer``: the letters of every output of :data:`SAFE_TO_COMMIT` that may be committed."""
    expect_answered(answer, "answer")
    return choose(answer, SAFE_TO_COMMIT, correct={"a", "c"}, why={
        "a": "a version number is metadata: it tells a reader that the secret changed, not what it is.",
        "b": "(b) shows the password itself: once an output is saved in the notebook, every copy, commit and "
             "screen-share carries it, and only changing the password undoes that.",
        "c": "keys and lengths are metadata: enough to see that the read worked, nothing anyone can log in with.",
        "d": "(d) is a credential: whoever holds a token can do what its policies allow for as long as it lives "
             "(a dev root token: anything, until the server stops), and the habit carries over to real servers.",
    })
