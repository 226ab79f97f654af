"""Self-checks for Lab 08 – Containers.

A Dockerfile review, secrets in an image's metadata, the orchestrator's delivery of secret zero to Vault
Agent, the smoke test of the running server, and what a restarted agent needs. Every check works the same with or without a Docker engine (the lab runs
the server as a local process where none answers), so its message is the same in both. No message ever
contains a secret value.
"""

from __future__ import annotations

import re

import numpy as np

from glassbox.checks import choose, exercise, expect, expect_answered, fail, is_stub
from glassbox.checks.vault_tokens import MAX_WRAP_TTL as _MAX_WRAP_TTL
from glassbox.checks.vault_tokens import ORCHESTRATOR_DISPLAY as _ORCHESTRATOR_DISPLAY
from glassbox.checks.vault_tokens import is_plain_secret_id as _is_plain_secret_id
from glassbox.checks.vault_tokens import token_display_name as _token_display_name
from glassbox.checks.vault_tokens import token_lookup as _token_lookup  # noqa: F401 (kept for callers)
from glassbox.checks.vault_tokens import token_policies as _token_policies
from glassbox.checks.vault_tokens import wrapping_lookup as _wrapping_lookup

__all__ = [
    "SECRET_NAME", "check_agent_restart", "check_cache_prediction", "check_dockerfile_review", "check_handover",
    "check_image_leaks", "check_real_leak", "check_smoke_test", "dockerfile_cases", "metadata_case",
    "CACHE_OPTIONS", "LEAK_OPTIONS", "RESTART_OPTIONS",
]

# Names that announce a secret. KEY alone is not one (GLASSBOX_KEY_REFRESH_SECONDS is a setting), and a name
# ending in _FILE, _PATH or _DIR says where a secret is (POSTGRES_PASSWORD_FILE, the best practice), not the secret.
SECRET_NAME = re.compile(r"^(?!.*_(?:FILE|PATH|DIR)$).*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL)",
                         re.I)
CODES = ("runs-as-root", "secret-in-build", "unpinned-base", "no-healthcheck")
_HINTS = {
    "runs-as-root": "Look at the final stage only: its last USER decides (none at all means root; so do "
                    "`root`, `0` and `0:0`).",
    "secret-in-build": "Look at every ARG and ENV in every stage: is the variable's NAME one that SECRET_NAME "
                       "matches? (For `ENV A=1 B=2` check each name.)",
    "unpinned-base": "Every FROM must name a tag (python:3.11-slim-bookworm) or a digest (@sha256:...); no tag "
                     "at all, or `:latest`, floats. A FROM naming an earlier stage is fine, and a `:` before the "
                     "last `/` is a registry's port, not a tag.",
    "no-healthcheck": "The final stage needs a HEALTHCHECK, and `HEALTHCHECK NONE` switches it off.",
}



def _fake_token() -> str:
    """A made-up Vault-style token for the fixtures (built at run time, so no file holds one)."""
    return "hvs." + "CAESIJ" * 5


# --- exercise 1: review a Dockerfile -----------------------------------------------------------------------

_GOOD_TAIL = """HEALTHCHECK CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/')"]
USER 10001:10001
CMD ["python", "-m", "http.server", "8080"]
"""


def dockerfile_cases() -> list[tuple[str, str, set[str]]]:
    """Small Dockerfiles with what a review must find: ``(label, text, expected codes)``."""
    good = "FROM python:3.11-slim-bookworm\nCOPY app /app\n" + _GOOD_TAIL
    return [
        ("a clean single-stage file", good, set()),
        ("no USER at all", good.replace("USER 10001:10001\n", ""), {"runs-as-root"}),
        ("USER root at the end", good.replace("USER 10001:10001\n", "USER 10001\nRUN id\nUSER root\n"),
         {"runs-as-root"}),
        ("USER 0:0", good.replace("USER 10001:10001", "USER 0:0"), {"runs-as-root"}),
        ("root only in the build stage",
         "FROM python:3.11-slim-bookworm AS build\nUSER root\nRUN pip wheel -w /w .\n"
         "FROM python:3.11-slim-bookworm\nCOPY --from=build /w /w\n" + _GOOD_TAIL, set()),
        ("a token as a build argument",
         "FROM python:3.11-slim-bookworm\nARG VAULT_TOKEN\nRUN echo building\n" + _GOOD_TAIL, {"secret-in-build"}),
        ("an API key in ENV, second of two",
         "FROM python:3.11-slim-bookworm\nENV LANG=C.UTF-8 API_KEY=changeme\n" + _GOOD_TAIL, {"secret-in-build"}),
        ("a password argument in the build stage",
         "FROM python:3.11-slim-bookworm AS build\nARG PIP_PASSWORD\nRUN pip wheel -w /w .\n"
         "FROM python:3.11-slim-bookworm\nCOPY --from=build /w /w\n" + _GOOD_TAIL, {"secret-in-build"}),
        ("settings that only sound like secrets",
         "FROM python:3.11-slim-bookworm\nARG PIP_INDEX_URL\nENV GLASSBOX_KEY_REFRESH_SECONDS=30 KEYBOARD=us\n"
         "ENV GLASSBOX_API_KEY_FILE=/run/glassbox/api-key POSTGRES_PASSWORD_FILE=/run/secrets/db\n"
         + _GOOD_TAIL, set()),
        ("no tag on the base", good.replace("python:3.11-slim-bookworm", "python"), {"unpinned-base"}),
        ("the latest tag", good.replace("python:3.11-slim-bookworm", "python:latest"), {"unpinned-base"}),
        ("a registry port but no tag", good.replace("python:3.11-slim-bookworm", "localhost:5000/python"),
         {"unpinned-base"}),
        ("pinned by digest", good.replace("python:3.11-slim-bookworm", "python@sha256:" + "0" * 64), set()),
        ("the base from a global ARG",
         "ARG BASE=python:3.11-slim-bookworm\nFROM ${BASE}\n" + _GOOD_TAIL, set()),
        ("a stage built on an earlier stage",
         "FROM python:3.11-slim-bookworm AS base\nRUN pip install --no-cache-dir flask\nFROM base\n" + _GOOD_TAIL,
         set()),
        ("no HEALTHCHECK", good.replace(_GOOD_TAIL.splitlines()[0] + "\n", ""), {"no-healthcheck"}),
        ("HEALTHCHECK NONE", good.replace(_GOOD_TAIL.splitlines()[0], "HEALTHCHECK NONE"), {"no-healthcheck"}),
        ("everything wrong", "FROM python\nARG DB_PASSWORD\nCOPY app /app\nCMD [\"python\"]\n", set(CODES)),
    ]


@exercise(lab="08", name="dockerfile-review", title="Review a Dockerfile for the four classic mistakes",
          hint=("A review asks one question of each instruction: which stage is it in, and what does it name or "
                "declare? Only the final stage decides who runs the server and whether Docker can check it.",
                "`from_image` gives a FROM's image and stage name, `declared_names` the names an ARG or ENV "
                "declares; compare an image's last path part (after the final `/`) for a tag or digest, and "
                "look at `final` for USER and HEALTHCHECK."))
def check_dockerfile_review(review, course_dockerfile: str):
    expect(callable(review), "`review` is not a function.", hint="Keep `def review(dockerfile_text): ...`.")
    cases = dockerfile_cases() + [("the course's own Dockerfile", course_dockerfile, set())]
    for label, text, expected in cases:
        found = review(text)
        expect(not is_stub(found), "`review` returns nothing yet.",
               hint="Return the set of problem codes it found (an empty set when there are none).")
        found = set(found)
        unknown = found - set(CODES)
        expect(not unknown, f"`review` returned unknown code(s) {sorted(unknown)}.",
               hint=f"Use exactly these codes: {', '.join(CODES)}.")
        missed, extra = expected - found, found - expected
        if missed:
            code = sorted(missed)[0]
            fail(f"For {label}, `review` missed {code!r} (it found {sorted(found) or 'nothing'}).",
                 hint=_HINTS[code])
        if extra:
            code = sorted(extra)[0]
            fail(f"For {label}, `review` reported {code!r}, which is not a problem there.", hint=_HINTS[code])
    return f"all {len(cases)} Dockerfiles judged right, the course's own found clean."


# --- exercise 2: secrets in an image's metadata ------------------------------------------------------------

def metadata_case() -> tuple[dict, list[str], set[str]]:
    """A leaky image's metadata, as ``image_report`` gives it: ``(env, history, expected leaks)``."""
    token = _fake_token()
    env = {"PATH": "/opt/venv/bin:/usr/bin", "VAULT_TOKEN": token, "GLASSBOX_KEY_REFRESH_SECONDS": "30",
           "GLASSBOX_VAULT_ROLE_ID": "", "GLASSBOX_API_KEY_FILE": "/run/glassbox/api-key", "LANG": "C.UTF-8"}
    history = [
        "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf in /",
        f"|1 PIP_PASSWORD=hunter2-{'x' * 8} /bin/sh -c pip install --no-cache-dir -r requirements.txt",
        "/bin/sh -c #(nop)  ENV PATH=/opt/venv/bin:/usr/bin",
        f"/bin/sh -c echo {token} > /etc/vault-token",
        "/bin/sh -c #(nop)  ENV GLASSBOX_KEY_REFRESH_SECONDS=30",
        "/bin/sh -c pip install --no-cache-dir keyring secretstorage",
        "/bin/sh -c #(nop)  ENV GLASSBOX_API_KEY_FILE=/run/glassbox/api-key",
        "/bin/sh -c #(nop)  USER 10001:10001",
    ]
    return env, history, {"VAULT_TOKEN", history[1], history[3]}


@exercise(lab="08", name="image-leaks", title="Find secrets in an image's environment and history",
          hint=("Whoever pulls an image reads its environment and its history: look for secret-shaped names "
                "that hold a value, and for values shaped like a token.",
                "Test each name in `env` with `SECRET_NAME`; in each history line find the `NAME=value` pairs "
                "with a regular expression (`re.findall`) and test their names, and test the whole line with "
                "`TOKEN_SHAPE`."))
def check_image_leaks(image_leaks, report=None):
    expect(callable(image_leaks), "`image_leaks` is not a function.",
           hint="Keep `def image_leaks(env, history): ...`.")
    env, history, expected = metadata_case()
    found = image_leaks(env, history)
    expect(not is_stub(found), "`image_leaks` returns nothing yet.",
           hint="Return a list: the names of secret-holding variables, and the history lines that show a secret.")
    found = list(found)
    token = env["VAULT_TOKEN"]
    if any(token in str(item) for item in found if item != history[3]):
        fail("`image_leaks` reports the token's value itself: a leak report must not leak the secret again.",
             hint=("Report the variable's NAME, never its value.",
                   "Keep the names of `env` (its keys) whose name matches and whose value is not empty."))
    if "VAULT_TOKEN" not in found:
        fail("The variable VAULT_TOKEN, which holds a token, was not reported.",
             hint="Report the NAME of every variable in `env` whose name SECRET_NAME matches and whose value "
                  "is not empty.")
    if history[1] not in found:
        fail("The layer built with a password as a build argument was not reported.",
             hint="`docker history` shows a RUN's build arguments as `|N NAME=value ...`: report every line in "
                  "which a NAME=value pair has a name SECRET_NAME matches.")
    if history[3] not in found:
        fail("The layer that wrote a Vault token into a file was not reported.",
             hint="Also report lines containing something shaped like a Vault token: TOKEN_SHAPE.search(line).")
    wrong = [item for item in found if item not in expected]
    if wrong:
        key_hint = "An empty variable gives nothing away, and KEY alone is not a secret's name: use SECRET_NAME."
        if "GLASSBOX_VAULT_ROLE_ID" in wrong:
            fail("`image_leaks` also reported an empty variable.", hint=key_hint)
        if any("KEY_REFRESH" in str(w) for w in wrong):
            fail("`image_leaks` also reported a setting whose name only contains KEY.", hint=key_hint)
        if any("secretstorage" in str(w) for w in wrong):
            fail("`image_leaks` also reported a `pip install` line whose only secret-shaped word is a package's "
                 "name: test the names of the line's NAME=value pairs with SECRET_NAME, not the whole line.",
                 hint=("A history line gives a secret away when it assigns one (`NAME=value`) or holds a token.",
                       "Find the line's NAME=value pairs with a regular expression and test each name; test the "
                       "whole line only with TOKEN_SHAPE."))
        if any("_FILE" in str(w) for w in wrong):
            fail("`image_leaks` also reported GLASSBOX_API_KEY_FILE, which holds a path to a secret, not a secret.",
                 hint=("A name ending in _FILE, _PATH or _DIR says where a secret is: SECRET_NAME leaves it out.",
                       "Test each variable's name alone with SECRET_NAME, not a line around it."))
        fail(f"`image_leaks` also reported {len(wrong)} harmless item(s).", hint=key_hint)
    if len(found) != len(set(found)):
        fail("`image_leaks` reported the same item twice.", hint="Report each variable or line once.")
    if report is not None:  # the course's own image: nothing may be found there
        own = list(image_leaks(report.env, report.history))
        expect(not own, f"`image_leaks` finds {len(own)} leak(s) in the course's own image.",
               hint="Look at what it reported: either the image leaks, or the function flags something harmless.")
    return "the token variable, the password build argument and the token in a layer found; nothing harmless."


# --- exercise 5: the orchestrator's delivery for the agent -------------------------------------------------

@exercise(lab="08", name="handover", title="Deliver secret zero to the agent, as the orchestrator",
          hint=("The agent logs in with the service's AppRole: it needs the role's identifier and a single-use, "
                "short-lived, wrapped credential, made by the orchestrator, whose policy allows nothing else.",
                "Lab 06 read a role ID and asked for a wrapped answer; here the same two calls go through "
                "`orchestrator`, and what you hand over is the wrapper, not the secret ID."))
def check_handover(delivery, admin):
    from glassbox.vault import agent, bootstrap

    expect_answered(delivery, "delivery")
    expect(isinstance(delivery, dict), f"`delivery` is a {type(delivery).__name__}, not a dict.",
           hint=f"A dict of the agent's two files: {agent.ROLE_ID_FILE!r} and {agent.SECRET_ID_FILE!r}.")
    for value in delivery.values():
        policies = _token_policies(admin, str(value))
        if "root" in policies:
            fail("`delivery` hands the agent an administrator's (root) token.",
                 hint="The agent needs no token at all: it logs in with the service's AppRole.")
        if bootstrap.ORCHESTRATOR_POLICY in policies:
            fail("`delivery` hands the agent the orchestrator's own token.",
                 hint="The orchestrator's token stays with the orchestrator: hand over what it issues, a "
                      "wrapped secret ID.")
    missing = [name for name in (agent.ROLE_ID_FILE, agent.SECRET_ID_FILE) if not delivery.get(name)]
    expect(not missing, f"`delivery` lacks {', '.join(repr(name) for name in missing)}.",
           hint=f"The agent reads exactly these two files: {agent.ROLE_ID_FILE!r} and {agent.SECRET_ID_FILE!r}.")
    extra = sorted(set(delivery) - {agent.ROLE_ID_FILE, agent.SECRET_ID_FILE})
    expect(not extra, f"`delivery` holds more than the agent needs: {', '.join(map(repr, extra))}.",
           hint="Hand over the role ID and the wrapped secret ID, nothing else.")
    expect(str(delivery[agent.ROLE_ID_FILE]).strip() == bootstrap.role_id(admin),
           f"{agent.ROLE_ID_FILE!r} is not the role ID of the AppRole {bootstrap.ROLE!r}.",
           hint=("A role ID is an identifier Vault generated for the role, not the role's name.",
                 "Ask Vault for it with `read_role_id` and take the `role_id` field of its `data`."))
    wrapped = str(delivery[agent.SECRET_ID_FILE]).strip()
    info = _wrapping_lookup(admin.url, wrapped)
    if info is None:
        if _is_plain_secret_id(admin, wrapped):
            fail(f"{agent.SECRET_ID_FILE!r} holds the secret ID itself, not a wrapping token.",
                 hint=("Hand over a wrapping token instead: it works once, so whoever reads it after the agent "
                       "(or before: then the agent's unwrap fails, and that is the alarm) gains nothing silently.",
                       "Ask `generate_secret_id` for a response-wrapped answer (`wrap_ttl`) and hand over the token "
                       "of its `wrap_info`, not the `data`."))
        fail(f"{agent.SECRET_ID_FILE!r} is not a live wrapping token (unknown, expired or already used).",
             hint="Make a fresh one right before starting the agent: each works once, within its TTL.")
    expected_path = f"auth/{bootstrap.APPROLE_MOUNT}/role/{bootstrap.ROLE}/secret-id"
    expect(info.get("creation_path") == expected_path,
           f"The wrapping token was made at {info.get('creation_path')!r}, not by the service's role.",
           hint=f"Wrap a secret ID of the role {bootstrap.ROLE!r}.")
    maker = _token_display_name(admin, wrapped)
    expect(maker == _ORCHESTRATOR_DISPLAY,
           "The wrapped secret ID was issued with the administrator's (root) token, not the orchestrator's.",
           hint=("Secret zero comes from the trusted orchestrator, whose token can do nothing else: the root "
                 "token never needs to leave the administrator.", "Use the `orchestrator` client."))
    ttl = int(info.get("creation_ttl") or 0)
    expect(0 < ttl <= _MAX_WRAP_TTL, f"The wrapping token lives {ttl} s.",
           hint=f"It only has to reach the agent: keep wrap_ttl at {_MAX_WRAP_TTL} s or less (60s is plenty).")
    return (f"the role ID of {bootstrap.ROLE} and a single-use secret ID, wrapped for {ttl} s by the orchestrator; "
            "no token of anyone's.")


# --- exercise 4: the smoke test ----------------------------------------------------------------------------

@exercise(lab="08", name="smoke-test", title="Smoke-test the running server",
          hint=("Three requests prove a deployment: is it up, does it refuse a stranger, does it answer right "
                "for a caller with the key?",
                "`httpx.get` and `httpx.post(infer_url, json=body, ...)`; keep each response's `.status_code`, and "
                "reshape the 'predict_proba' output's `data` to its `shape`."))
def check_smoke_test(smoke, model, rows):
    expect_answered(smoke, "smoke")
    expect(isinstance(smoke, dict), f"`smoke` is a {type(smoke).__name__}, not a dict.",
           hint="Keep the dict of the stub: 'ready', 'without_key' and 'proba'.")
    missing = [key for key in ("ready", "without_key", "proba") if is_stub(smoke.get(key))]
    expect(not missing, f"`smoke` has no {', '.join(repr(k) for k in missing)} yet.",
           hint="Three requests: GET /v2/health/ready; the inference without a key; the inference with it.")
    if hasattr(smoke["ready"], "status_code") or isinstance(smoke["ready"], dict):
        fail(f"'ready' holds the {'response' if hasattr(smoke['ready'], 'status_code') else 'JSON body'}, "
             "not its status code.",
             hint=("A smoke test compares numbers: the HTTP status code, an int.",
                   "Keep `.status_code` of the response to GET /v2/health/ready."))
    expect(smoke["ready"] == 200, f"'ready' is {smoke['ready']!r}, not 200.",
           hint="Store the status code of GET {url}/v2/health/ready (an int), once the server has started.")
    expect(smoke["without_key"] == 401,
           f"'without_key' is {smoke['without_key']!r}: a request without the API key must get 401.",
           hint="Send the same inference request with no Authorization header and store its status code.")
    try:
        proba = np.asarray(smoke["proba"], dtype=float)
    except (TypeError, ValueError):
        fail(f"'proba' is a {type(smoke['proba']).__name__} that does not read as numbers.",
             hint=("'proba' should be the probabilities themselves, an array of floats.",
                   "Take the 'predict_proba' output's `data` (a flat list) and reshape it to its `shape`."))
    expected = model.predict_proba(rows)
    expect(proba.shape == expected.shape, f"'proba' has shape {proba.shape}, not {expected.shape}.",
           hint="Reshape the predict_proba output's flat 'data' to its 'shape'.")
    gap = float(np.max(np.abs(proba - expected)))
    expect(gap <= 1e-6, f"'proba' differs from predict_proba in this process by up to {gap:.3g}.",
           hint="Send the rows in the model's feature order, row after row, and read the 'predict_proba' output.")
    return "ready, 401 without the key, and the same probabilities as predict_proba in this process."


# --- thinking exercises: a prediction about the build cache, a real leak among findings, a restarted agent -

CACHE_OPTIONS = {
    "a": "Step 4, the `RUN` that installs the dependencies: the whole environment is installed again.",
    "b": "Step 6, `COPY support /src/support`, and the build stage's steps after it; in the final stage only "
         "the last `COPY` (the package and the model) makes a new layer.",
    "c": "Only the very last step, `COPY --from=build /opt/glassbox /opt/glassbox`.",
    "d": "No step: Docker caches by the Dockerfile's text, and the Dockerfile did not change.",
}
_CACHE_WHY = {
    "a": "The dependency layer's inputs are `requirements.lock` and the `RUN` line, and neither changed: it "
         "comes from the cache. That is why the Dockerfile installs them before it copies the package.",
    "b": "A `COPY` is cached by the checksum of the files it copies, so the edit invalidates `COPY support` and "
         "every step after it in that stage (the package install, the model). In the final stage `/opt/venv` "
         "has the same content as before, so only `COPY --from=build /opt/glassbox` makes a new layer: a few "
         "megabytes, not the whole environment.",
    "c": "The final stage copies what the build stage made, so the build stage must run `COPY support` and the "
         "package install again first: the first step to miss the cache is earlier.",
    "d": "For `COPY` and `ADD` Docker compares the checksums of the files copied, not only the instruction's "
         "text: an edited file misses the cache.",
}

LEAK_OPTIONS = {
    "a": "The token in the file `wrapped-secret-id` of the Vault Agent's hand-over directory, found in a backup "
         "taken after the agent had started.",
    "b": "The history line `/bin/sh -c rm -f /root/.vault-token`, right after the layer "
         "`COPY .vault-token /root/.vault-token`.",
    "c": "`GLASSBOX_KEY_REFRESH_SECONDS=30` in the image's environment.",
    "d": "`VAULT_ADDR=http://vault:8200` in the image's environment.",
}
_LEAK_WHY = {
    "a": "That wrapping token was unwrapped by the agent when it logged in; it works once, so what the backup "
         "holds is spent (a lookup answers 400). The agent deletes the file after reading it, too.",
    "b": "A layer is never changed by a later one: `rm` in a new layer only hides the file. The `COPY` layer "
         "still holds the token, and `docker save` (or any registry pull) hands it to whoever asks.",
    "c": "It is a setting, how often the key is re-read; `KEY` alone is not a secret's name.",
    "d": "It says where Vault is, not how to get in: an address is no credential.",
}

RESTART_OPTIONS = {
    "a": "The agent logs in again at once with the secret ID it used two days ago, and rotations keep arriving.",
    "b": "The agent cannot log in; the server keeps serving the key already rendered, and rotations stop "
         "arriving until the orchestrator delivers a new wrapped secret ID (`docker compose run --rm bootstrap`).",
    "c": "The server starts refusing every caller: its key file went away with the agent's container.",
    "d": "The agent reuses the Vault token it kept in the shared volume; nothing changes.",
}
_RESTART_WHY = {
    "a": "The secret ID was single-use (`secret_id_num_uses=1`), spent by the first login and known only to "
         "the old agent process (it deleted the file); it had also expired after 10 minutes.",
    "b": "Its periodic token lived as long as the old agent renewed it; the new process has neither a token "
         "nor a usable secret ID, so it retries (\"no known secret ID\") until a new wrapped one arrives. The "
         "key file is in a tmpfs volume the running server still mounts: it stays, and the server serves on.",
    "c": "The key lives in a volume shared with the server, not in the agent's container: the tmpfs stays "
         "mounted while the server uses it, and the file stays in it.",
    "d": "The agent's configuration has no token sink: no Vault token is ever written to a file. The shared "
         "volume holds the rendered key only.",
}


@exercise(lab="08", name="cache-prediction", title="Predict what an edit to the package rebuilds",
          hint=("Docker reuses a step's cached layer only while the step and everything it reads are unchanged; "
                "after the first miss, every later step of that stage runs again.",
                "For `COPY`, what counts is the content of the files copied. Which `COPY` reads the package, "
                "and what does the final stage copy from the build stage?"))
def check_cache_prediction(prediction):
    expect_answered(prediction, "prediction")
    return choose(prediction, CACHE_OPTIONS, correct="b", why=_CACHE_WHY)


@exercise(lab="08", name="real-leak", title="Tell a real leak from harmless findings",
          hint=("A finding is a leak only if it still gives someone a way in: a live credential.",
                "Ask of each: is it a secret at all, is it still valid, and is it really gone from the image?"))
def check_real_leak(answer):
    expect_answered(answer, "real_leak")
    return choose(answer, LEAK_OPTIONS, correct="b", why=_LEAK_WHY)


@exercise(lab="08", name="agent-restart", title="What the stack does when its agent restarts",
          hint=("A periodic token lives as long as someone renews it; ask what the new agent process holds.",
                "How many times can a secret ID log in, where did the old agent keep it, and where is the key?"))
def check_agent_restart(answer):
    expect_answered(answer, "after_the_restart")
    return choose(answer, RESTART_OPTIONS, correct="b", why=_RESTART_WHY)
