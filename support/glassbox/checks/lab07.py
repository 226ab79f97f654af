"""Self-checks for Lab 07 – Containers.

A Dockerfile review, secrets in an image's metadata, the run-time hand-over of Vault credentials, and the
smoke test of the running server. Every check works the same with or without a Docker engine (the lab runs
the server as a local process where none answers), so its message is the same in both. No message ever
contains a secret value.
"""

from __future__ import annotations

import re

import numpy as np

from glassbox.checks import exercise, expect, fail, is_stub

__all__ = [
    "SECRET_NAME", "check_dockerfile_review", "check_image_leaks", "check_handover", "check_smoke_test",
    "dockerfile_cases", "metadata_case",
]

# Names that announce a secret. KEY alone is not one (GLASSBOX_KEY_REFRESH_SECONDS is a setting).
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
CODES = ("runs-as-root", "secret-in-build", "unpinned-base", "no-healthcheck")
_MAX_WRAP_TTL = 300  # seconds: a wrapped secret ID only has to survive its trip into the container
_HINTS = {
    "runs-as-root": "Look at the final stage only: its last USER decides (none at all means root; so do "
                    "`root`, `0` and `0:0`).",
    "secret-in-build": "Look at every ARG and ENV in every stage: is the variable's NAME one that SECRET_NAME "
                       "matches? (For `ENV A=1 B=2` check each name.)",
    "unpinned-base": "Every FROM must name a tag (python:3.11-slim-bookworm) or a digest (@sha256:...); no tag "
                     "at all, or `:latest`, floats. A FROM naming an earlier stage is fine.",
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
         + _GOOD_TAIL, set()),
        ("no tag on the base", good.replace("python:3.11-slim-bookworm", "python"), {"unpinned-base"}),
        ("the latest tag", good.replace("python:3.11-slim-bookworm", "python:latest"), {"unpinned-base"}),
        ("a registry port but no tag", good.replace("python:3.11-slim-bookworm", "localhost:5000/python"),
         {"unpinned-base"}),
        ("pinned by digest", good.replace("python:3.11-slim-bookworm", "python@sha256:" + "0" * 64), set()),
        ("the base from a global ARG",
         "ARG BASE=python:3.11-slim-bookworm\nFROM ${BASE}\n" + _GOOD_TAIL, set()),
        ("no HEALTHCHECK", good.replace(_GOOD_TAIL.splitlines()[0] + "\n", ""), {"no-healthcheck"}),
        ("HEALTHCHECK NONE", good.replace(_GOOD_TAIL.splitlines()[0], "HEALTHCHECK NONE"), {"no-healthcheck"}),
        ("everything wrong", "FROM python\nARG DB_PASSWORD\nCOPY app /app\nCMD [\"python\"]\n", set(CODES)),
    ]


@exercise(lab="07", name="dockerfile-review", title="Review a Dockerfile for the four classic mistakes")
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
           "GLASSBOX_VAULT_ROLE_ID": "", "LANG": "C.UTF-8"}
    history = [
        "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf in /",
        f"|1 PIP_PASSWORD=hunter2-{'x' * 8} /bin/sh -c pip install --no-cache-dir -r requirements.txt",
        "/bin/sh -c #(nop)  ENV PATH=/opt/venv/bin:/usr/bin",
        f"/bin/sh -c echo {token} > /etc/vault-token",
        "/bin/sh -c #(nop)  ENV GLASSBOX_KEY_REFRESH_SECONDS=30",
        "/bin/sh -c #(nop)  USER 10001:10001",
    ]
    return env, history, {"VAULT_TOKEN", history[1], history[3]}


@exercise(lab="07", name="image-leaks", title="Find secrets in an image's environment and history")
def check_image_leaks(image_leaks, report=None):
    expect(callable(image_leaks), "`image_leaks` is not a function.",
           hint="Keep `def image_leaks(env, history): ...`.")
    env, history, expected = metadata_case()
    found = image_leaks(env, history)
    expect(not is_stub(found), "`image_leaks` returns nothing yet.",
           hint="Return a list: the names of secret-holding variables, and the history lines that show a secret.")
    found = list(found)
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
        shown = "an empty variable" if "GLASSBOX_VAULT_ROLE_ID" in wrong else (
            "a setting whose name only contains KEY" if any("KEY_REFRESH" in str(w) for w in wrong)
            else f"{len(wrong)} harmless item(s)")
        fail(f"`image_leaks` also reported {shown}.",
             hint="An empty variable gives nothing away, and KEY alone is not a secret's name: use SECRET_NAME.")
    if len(found) != len(set(found)):
        fail("`image_leaks` reported the same item twice.", hint="Report each variable or line once.")
    if report is not None:  # the course's own image: nothing may be found there
        own = list(image_leaks(report.env, report.history))
        expect(not own, f"`image_leaks` finds {len(own)} leak(s) in the course's own image.",
               hint="Look at what it reported: either the image leaks, or the function flags something harmless.")
    return "the token variable, the password build argument and the token in a layer found; nothing harmless."


# --- exercise 3: credentials handed over at run time ------------------------------------------------------

@exercise(lab="07", name="handover", title="Hand the server its Vault credentials at run time")
def check_handover(run_env, admin):
    from glassbox.vault import bootstrap

    expect(not is_stub(run_env), "`run_env` is still the stub.",
           hint="Build a dict with VAULT_ADDR, GLASSBOX_VAULT_ROLE_ID and GLASSBOX_VAULT_WRAPPED_SECRET_ID.")
    expect(isinstance(run_env, dict), f"`run_env` is a {type(run_env).__name__}, not a dict.")
    token = getattr(admin, "token", None)
    if "VAULT_TOKEN" in run_env or (token and token in run_env.values()):
        fail("`run_env` hands the server an administrator's token.",
             hint="The server needs no token at all: it logs in with its own AppRole. Remove VAULT_TOKEN.")
    missing = [name for name in ("VAULT_ADDR", "GLASSBOX_VAULT_ROLE_ID", "GLASSBOX_VAULT_WRAPPED_SECRET_ID")
               if not run_env.get(name)]
    expect(not missing, f"`run_env` lacks {', '.join(missing)}.",
           hint="The server reads exactly these three variables to log in to Vault.")
    expect(run_env["VAULT_ADDR"].rstrip("/") == admin.url.rstrip("/"),
           "VAULT_ADDR is not the address of the course's Vault.", hint="Use `server.addr`.")
    expect(run_env["GLASSBOX_VAULT_ROLE_ID"] == bootstrap.role_id(admin),
           f"GLASSBOX_VAULT_ROLE_ID is not the role ID of the AppRole {bootstrap.ROLE!r}.",
           hint=f"admin.auth.approle.read_role_id({bootstrap.ROLE!r})['data']['role_id']")
    wrapped = str(run_env["GLASSBOX_VAULT_WRAPPED_SECRET_ID"])
    info = _wrapping_lookup(admin.url, wrapped)
    if info is None:
        if _is_plain_secret_id(admin, wrapped):
            fail("GLASSBOX_VAULT_WRAPPED_SECRET_ID holds the secret ID itself, not a wrapping token.",
                 hint="Pass wrap_ttl='60s' to generate_secret_id and hand over response['wrap_info']['token']: "
                      "whoever reads the container's settings later finds only a spent, single-use token.")
        fail("GLASSBOX_VAULT_WRAPPED_SECRET_ID is not a live wrapping token (unknown, expired or already used).",
             hint="Generate a fresh one right before starting the server: each works once, within its TTL.")
    expected_path = f"auth/{bootstrap.APPROLE_MOUNT}/role/{bootstrap.ROLE}/secret-id"
    expect(info.get("creation_path") == expected_path,
           f"The wrapping token was made at {info.get('creation_path')!r}, not by the service's role.",
           hint=f"Wrap a secret ID of the role {bootstrap.ROLE!r}.")
    ttl = int(info.get("creation_ttl") or 0)
    expect(0 < ttl <= _MAX_WRAP_TTL, f"The wrapping token lives {ttl} s.",
           hint=f"It only has to reach the container: keep wrap_ttl at {_MAX_WRAP_TTL} s or less (60s is plenty).")
    return f"the role ID of {bootstrap.ROLE}, a single-use wrapped secret ID valid {ttl} s, and no admin token."


def _wrapping_lookup(addr: str, token: str) -> dict | None:
    """``sys/wrapping/lookup``: the token's creation path and TTL, without unwrapping it (None if not live)."""
    import hvac
    import hvac.exceptions

    try:
        return hvac.Client(url=addr, token="").adapter.post("/v1/sys/wrapping/lookup", json={"token": token})["data"]
    except (hvac.exceptions.VaultError, KeyError, TypeError):
        return None


def _is_plain_secret_id(admin, value: str) -> bool:
    import hvac.exceptions

    from glassbox.vault import bootstrap

    try:
        response = admin.auth.approle.read_secret_id(bootstrap.ROLE, value, mount_point=bootstrap.APPROLE_MOUNT)
    except (hvac.exceptions.VaultError, ValueError):
        return False
    return isinstance(response, dict) and bool(response.get("data"))  # an unknown one answers 204, no body


# --- exercise 4: the smoke test ----------------------------------------------------------------------------

@exercise(lab="07", name="smoke-test", title="Smoke-test the running server")
def check_smoke_test(smoke, model, rows):
    expect(not is_stub(smoke), "`smoke` is still the stub.",
           hint="Fill the dict: 'ready' and 'without_key' status codes, and 'proba' from an authorised request.")
    expect(isinstance(smoke, dict), f"`smoke` is a {type(smoke).__name__}, not a dict.")
    missing = [key for key in ("ready", "without_key", "proba") if is_stub(smoke.get(key))]
    expect(not missing, f"`smoke` has no {', '.join(repr(k) for k in missing)} yet.",
           hint="Three requests: GET /v2/health/ready; the inference without a key; the inference with it.")
    expect(smoke["ready"] == 200, f"'ready' is {smoke['ready']!r}, not 200.",
           hint="Store the status code of GET {url}/v2/health/ready (an int), once the server has started.")
    expect(smoke["without_key"] == 401,
           f"'without_key' is {smoke['without_key']!r}: a request without the API key must get 401.",
           hint="Send the same inference request with no Authorization header and store its status code.")
    proba = np.asarray(smoke["proba"], dtype=float)
    expected = model.predict_proba(rows)
    expect(proba.shape == expected.shape, f"'proba' has shape {proba.shape}, not {expected.shape}.",
           hint="Reshape the predict_proba output's flat 'data' to its 'shape'.")
    gap = float(np.max(np.abs(proba - expected)))
    expect(gap <= 1e-6, f"'proba' differs from predict_proba in this process by up to {gap:.3g}.",
           hint="Send the rows in the model's feature order, row after row, and read the 'predict_proba' output.")
    return "ready, 401 without the key, and the same probabilities as predict_proba in this process."
