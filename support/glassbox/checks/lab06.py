"""Self-checks for Lab 06 – Vault for a machine-learning service.

Least privilege (a policy string, proven on the server), the AppRole's settings, the service's login, transit
encoding and key rotation, finding readers in the audit log, and the hardening review of the whole setup
(:func:`hardening_findings` lists the shortfalls; :func:`check_hardening` is the exercise built on it), and three
exercises of judgement: predicting the status code a service token gets (:func:`check_status_prediction`),
what ``min_decryption_version`` does and does not protect against (:func:`check_min_decryption`), and what
revoking a certificate's lease changes for the callers of a server that presents it (:func:`check_revocation`).
No message ever contains a secret value.

What a status code proves about a policy (:func:`status_verdict`, measured on OpenBao 2.x with a token that
holds only the service's policy and ``default``):

| code | meaning for the policy |
|---|---|
| 200, 204 | the request passed the policy; on a path the policy should not grant, that is a **hole** |
| 403 | denied by policy: the proof of least privilege (a non-root token gets 403 even in a mount that does not exist) |
| 404 | the policy let the request through and there was nothing (version 99 of a secret), or the mount is missing |
| 400, 405, 415 | a malformed or unsupported request: it says nothing about the policy (a body that is not JSON gets 400 on a
  path the policy denies: the policy was never asked) |
"""

from __future__ import annotations

import base64
import binascii
import re

import hvac
import hvac.exceptions

from glassbox.checks import choose, exercise, expect, expect_answered, expect_close, fail, is_stub
from glassbox.vault.bootstrap import duration_seconds

__all__ = [
    "check_service_policy", "check_status_prediction", "check_role", "check_service_login", "check_transit_batch",
    "check_rotation", "check_min_decryption", "check_who_read", "check_hardening", "hardening_findings",
    "check_revocation", "REVOCATION_OPTIONS", "policy_paths", "status_verdict", "wildcards",
]

_PATH_BLOCK = re.compile(r'path\s+"([^"]*)"\s*\{(.*?)\}', re.S)
_CAPABILITIES = re.compile(r'capabilities\s*=\s*\[([^\]]*)\]', re.S)
_LIMITS = {  # seconds
    "token_ttl": 3600,        # a service token: at most an hour before it must be renewed
    "token_max_ttl": 4 * 3600,
    "token_period": 3600,     # a periodic token nobody renews must die soon: at most an hour
    "secret_id_ttl": 3600,
    "wrap_ttl": 300,          # a wrapped secret ID only has to survive its trip to the service
}
# Samples that catch a missing base64 step: "Jane" and "Anna" are valid base64 themselves, so transit would
# accept them raw and decrypt them to other bytes.
_SAMPLES = ["Jane", "Anna Weber", "zoë.müller@example.org"]

def _without_comments(hcl: str) -> str:
    """``hcl`` with its comments removed (``#`` and ``//`` to the end of the line, ``/* ... */``), strings kept."""
    kept, i, quoted = [], 0, False
    while i < len(hcl):
        char = hcl[i]
        if quoted:
            kept.append(char)
            if char == "\\" and i + 1 < len(hcl):
                kept.append(hcl[i + 1])
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            kept.append(char)
        elif char == "#" or hcl.startswith("//", i):
            end = hcl.find("\n", i)
            i = len(hcl) if end < 0 else end
            continue
        elif hcl.startswith("/*", i):
            end = hcl.find("*/", i + 2)
            i = len(hcl) if end < 0 else end + 2
            kept.append(" ")
            continue
        else:
            kept.append(char)
        i += 1
    return "".join(kept)


def policy_paths(hcl: str) -> dict[str, list[str]]:
    """The ``path "..." { capabilities = [...] }`` blocks of an HCL policy, as ``{path: capabilities}``.

    Comments (``#``, ``//``, ``/* */``) are left out, as Vault's HCL parser leaves them out.
    """
    paths: dict[str, list[str]] = {}
    for path, body in _PATH_BLOCK.findall(_without_comments(hcl)):
        found = _CAPABILITIES.search(body)
        capabilities = re.findall(r'"([^"]*)"', found.group(1)) if found else []
        paths.setdefault(path, []).extend(capabilities)
    return paths


def denies(capabilities) -> bool:
    """Whether a path block denies: ``deny`` wins over every other capability on the path, ``sudo`` included."""
    return "deny" in capabilities


def _matches(pattern: str, path: str) -> bool:
    """Whether the policy path ``pattern`` (``+``: one segment, a trailing ``*``: any ending) covers ``path``."""
    regex = "".join("[^/]+" if part == "+" else re.escape(part) for part in re.split(r"(\+)", pattern.rstrip("*")))
    return re.fullmatch(regex + (".*" if pattern.endswith("*") else ""), path) is not None


def _human(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# -- least privilege ------------------------------------------------------------------------------------

def wildcards(path: str) -> list[str]:
    """The wildcards in a policy path: ``*`` (any suffix) and ``+`` (any one segment)."""
    return [mark for mark in ("*", "+") if mark in path]


def status_verdict(status: int, granted: bool) -> str:
    """What one response proves about a policy, for a request it should allow (``granted``) or should deny.

    Only a 403 proves a denial and only a 2xx proves access; a 404 or a 400/405 is not a hole, and not a proof
    either (see the table in this module's docstring).
    """
    if 200 <= status < 300:
        return "allowed, as it should be" if granted else "HOLE: allowed on a path outside the policy"
    if status == 403:
        return ("denied, but the policy should allow it: check its path" if granted
                else "denied by policy: least privilege holds")
    if status == 404:
        return ("permitted by the policy, but nothing is there" if granted
                else "not found: the request got past the policy (or the mount is missing); not a proof of denial")
    if status in (400, 405, 415):
        return "a malformed or unsupported request: it says nothing about the policy"
    if status == 401:
        return "no valid token: it says nothing about the policy"
    return f"unexpected status {status}: it says nothing about the policy"


def _status(raw: hvac.adapters.RawAdapter, method: str, api_path: str, body=None) -> int:
    """The HTTP status of one request (``body``: a dict sent as JSON, or a string sent as it is)."""
    send = {"json": body} if isinstance(body, dict) else ({"data": body} if body is not None else {})
    return raw.request(method, f"/v1/{api_path}", raise_exception=False, **send).status_code


class _ScratchToken:
    """A short-lived token holding only ``hcl`` (and ``default``), removed with its policy on exit."""

    name = "lab06-policy-selfcheck"

    def __init__(self, client: hvac.Client, hcl: str):
        self.client, self.hcl = client, hcl

    def __enter__(self) -> hvac.adapters.RawAdapter:
        self.client.sys.create_or_update_policy(name=self.name, policy=self.hcl)
        self.token = self.client.auth.token.create(policies=[self.name], ttl="2m",
                                                   explicit_max_ttl="2m")["auth"]["client_token"]
        return hvac.adapters.RawAdapter(base_uri=self.client.url, token=self.token)

    def __exit__(self, *exc) -> None:
        self.client.auth.token.revoke(self.token)
        self.client.sys.delete_policy(self.name)


@exercise(lab="06", name="service-policy", title="A least-privilege policy for the model service",
          hint=("A policy grants capabilities on API paths; the service only ever reads one secret.",
                "KV v2 serves a secret's value under `<mount>/data/<path>`; name that one path, without wildcards, "
                "and grant the single capability a reader needs."))
def check_service_policy(service_policy, client: hvac.Client | None = None, *, path: str,
                         neighbour: str, mount_point: str = "secret"):
    """The HCL must grant ``read`` on the service's own KV v2 path and nothing else (proved on the server)."""
    expect_answered(service_policy, "service_policy")
    expect(isinstance(service_policy, str), "`service_policy` should be a string of HCL.",
           hint="Keep the triple-quoted string and edit the policy inside it.")
    paths = policy_paths(service_policy)
    expect(paths, "no `path \"...\" { ... }` block found in `service_policy`.",
           hint=("A policy is one or more `path \"...\" { capabilities = [...] }` blocks.",))
    api_path = f"{mount_point}/data/{path}"
    denied = sorted(p for p, capabilities in paths.items() if denies(capabilities) and _matches(p, api_path))
    expect(not denied, f"the policy denies `{denied[0] if denied else ''}`, which covers the service's own path: "
           "a deny wins over every grant, so the service could not read its secret.",
           hint="Deny only paths the service must never reach, or leave them out: what is not granted is denied.")
    paths = {p: capabilities for p, capabilities in paths.items() if not denies(capabilities)}
    expect(paths, "the policy only denies: it grants the service nothing, not even its own secret.",
           hint=("A policy is one or more `path \"...\" { capabilities = [...] }` blocks.",))
    for granted, capabilities in paths.items():
        marks = wildcards(granted)
        expect(not marks,
               f"the policy grants `{granted}`: the wildcard `{marks[0] if marks else ''}` reaches every path it "
               "matches (`*` any ending, `+` any one segment), today's and tomorrow's.",
               hint=("Least privilege names exactly the path the service reads.",
                     "Spell out the service's path in full, inside the `data/` part of the mount."))
        expect("sudo" not in capabilities, f"the policy grants `sudo` on `{granted}`.",
               hint="sudo is for root-protected admin endpoints; the service never needs it.")
    expect(api_path in paths, _which_path_is_wrong(paths, api_path, path, mount_point),
           hint=("Policies name the full API path, mount included.",
                 "For KV v2 that path has `data/` between the mount and the secret's path."))
    extra = sorted(set(paths) - {api_path})
    expect(not extra, f"the policy also grants {extra}: the service reads only its own secret.",
           hint="Remove every other path block.")
    capabilities = sorted(set(paths[api_path]))
    expect(capabilities == ["read"], f"the policy grants {capabilities} on the service's path; it needs ['read'].",
           hint="The service never writes, deletes or lists: one capability is enough.")
    if client is not None:
        _prove_on_server(client, service_policy, path, neighbour, mount_point)
        return "read on its own path only, and the server answers 403 to write, the neighbour's path and list."
    return "read on its own path only."


def _which_path_is_wrong(paths, api_path, path, mount_point) -> str:
    names = ", ".join(f"`{p}`" for p in paths)
    if f"{mount_point}/{path}" in paths:
        return (f"the policy names `{mount_point}/{path}`, but KV v2 serves secrets under "
                f"`{mount_point}/data/...`: this rule matches no request.")
    if path in paths or f"data/{path}" in paths:
        return "the policy's path lacks the mount: policies name the full API path, mount included."
    return f"the policy grants {names}, not the service's secret `{api_path}`."


def _prove_on_server(client, hcl, path, neighbour, mount_point) -> None:
    """Load the policy under a scratch name, then try the service's would-be mistakes with a real token.

    Only a 403 counts as a denial. A 2xx is a hole. A 404 or 400 proves nothing either way (the write is sent
    with ``cas=0``, "only if absent", so a write the policy allows gets a 400 and overwrites nothing): then
    ``sys/capabilities-self`` says what the policy grants on that path.
    """
    api_path, folder = f"{mount_point}/data/{path}", path.rsplit("/", 1)[0] if "/" in path else ""
    with _ScratchToken(client, hcl) as raw:
        own = _status(raw, "GET", api_path)
        if own == 403:
            fail("on the server, a token with this policy gets 403 on the service's own secret.",
                 hint="Check the path: the mount, then `data/`, then the service's path.")
        if own == 404:
            fail("the service's secret is missing, so the policy cannot be tried on the server.",
                 hint="Re-run the cell that writes the service's secret.")
        attempts = {  # what, (method, path, body, the capability it needs)
            "write its own secret": ("POST", api_path, {"options": {"cas": 0}, "data": {"probe": "x"}}, "update"),
            "read the neighbour's secret": ("GET", f"{mount_point}/data/{neighbour}", None, "read"),
            "list the secrets around it": ("LIST", f"{mount_point}/metadata/{folder}", None, "list"),
        }
        for what, (method, target, body, needed) in attempts.items():
            status = _status(raw, method, target, body)
            if status == 403:
                continue
            if 200 <= status < 300:
                fail(f"on the server, a token with this policy may {what} (HTTP {status}): a hole.",
                     hint="Grant one capability on one path.")
            granted = raw.request("POST", "/v1/sys/capabilities-self", json={"paths": [target]}).json()
            capabilities = granted.get(target) or granted.get("capabilities") or []
            if needed in capabilities or ("update" == needed and "create" in capabilities):
                fail(f"on the server, a token with this policy may {what}: the request got HTTP {status} "
                     f"(not a denial), and sys/capabilities-self lists {capabilities} there.",
                     hint="Grant one capability on one path.")


# -- predicting the denial matrix -----------------------------------------------------------------------

_STATUS_WHY = {
    200: "200: the policy allows it and the secret is there.",
    204: "204: the policy allows it; there is nothing to return.",
    400: "400: Vault could not parse or accept the request, and refused it before asking the policy (or after): "
         "a 400 says nothing about the policy.",
    403: "403: no policy of the token grants the capability on that path, so Vault denies it, whether the "
         "path, or even the mount, exists or not: a token learns nothing about paths it may not touch.",
    404: "404: the policy grants read on that path (a version is a parameter, not a path), and there is "
         "nothing there.",
    405: "405: Vault does not speak that HTTP method at all, so the policy is never asked.",
}


@exercise(lab="06", name="status-prediction", title="Predict the status code of each request",
          hint=("Vault checks a request's token against its policies first, but only once it understands the "
                "request; only a 403 means the policy said no.",
                "Ask of each request: does the policy grant this capability on this exact path? Is there anything "
                "there? Is the request even well-formed?"))
def check_status_prediction(prediction, client: hvac.Client, requests: dict, *, path: str,
                            mount_point: str = "secret"):
    """``prediction`` maps each of ``requests`` to a status code; compared with what a token holding only a read
    on ``<mount>/data/<path>`` really gets from the server."""
    expect_answered(prediction, "prediction")
    expect(isinstance(prediction, dict), f"`prediction` should be a dict of request -> status code, not "
           f"{type(prediction).__name__}.", hint="Keep the dict and put a number in place of each `...`.")
    missing, unknown = [r for r in requests if r not in prediction], [r for r in prediction if r not in requests]
    expect(not unknown, f"{unknown[:1]} is not one of the requests.", hint="Keep the dict's keys as they are.")
    expect(not missing, f"`prediction` has no code for {missing[:1]}.", hint="Keep every key of the dict.")
    stubs = [r for r in requests if is_stub(prediction[r])]
    expect(not stubs, f"`prediction` is still `...` for {len(stubs)} request(s), such as {stubs[0]!r}."
           if stubs else "", hint="Commit to a number for each request before you run the next cell.")
    not_codes = [r for r in requests if not (isinstance(prediction[r], int) and 100 <= prediction[r] < 600)]
    expect(not not_codes, f"the prediction for {not_codes[:1]} is {prediction[not_codes[0]]!r}, not a status code "
           "such as 403." if not_codes else "", hint="Write each code as a number: 200, 400, 403, 404 or 405.")
    hcl = f'path "{mount_point}/data/{path}" {{\n  capabilities = ["read"]\n}}\n'
    with _ScratchToken(client, hcl) as raw:
        truth = {what: _status(raw, *request) for what, request in requests.items()}
    wrong = [what for what in requests if prediction[what] != truth[what]]
    for first in wrong[:1]:
        said, real = prediction[first], truth[first]
        lesson = {
            (403, 400): " A 403 would be the policy speaking; a 400 is about the request itself.",
            (403, 405): " A 403 would be the policy speaking; a 405 is about the method itself.",
            (404, 403): " A 404 would tell a stranger the path is free: Vault says 403 instead.",
            (403, 404): " The policy is not what refused: a 404 is a permitted read of nothing.",
        }.get((said, real), "")
        expect_close(said, real, 0, f"{len(wrong)} of {len(requests)} predictions differ from the server: for "
                     f"*{first}* you said {said}, the server answers {real}.{lesson}",
                     hint=(_STATUS_WHY.get(real, f"{real}: look the code up."),
                           "Not every refusal is the policy: tell 403 (denied by policy) from 404 (nothing "
                           "there) and 400/405 (a malformed or unsupported request)."))
    return ("all predictions hold. Only the 403s prove least privilege; the 404 is a permitted read of nothing, "
            "and the 400 and 405 say nothing about the policy.")


# -- AppRole --------------------------------------------------------------------------------------------

@exercise(lab="06", name="approle", title="An AppRole with short TTLs and single-use secret IDs",
          hint=("Every limit you leave out falls back to 'unlimited' or to the server's 32 days.",
                "The role takes `token_ttl` and `token_max_ttl` (durations such as \"10m\"), and "
                "`secret_id_num_uses` and `secret_id_ttl` for the secret IDs."))
def check_role(client: hvac.Client, role: str, policy: str, mount_point: str = "approle"):
    """Read the role from the server and judge its settings."""
    try:
        settings = client.auth.approle.read_role(role, mount_point=mount_point)["data"]
    except hvac.exceptions.InvalidPath:
        fail(f"there is no AppRole `{role}`.", hint="Run the cell that calls create_or_update_approle(...).")
    problems = _role_problems(settings, policy, periodic_ok=False)
    expect(not problems, problems[0] if problems else "",
           hint=("Compare each setting with the numbers the exercise asks for: 10 and 30 minutes, one use, "
                 "5 minutes.", "Durations are strings with a unit (\"10m\"); a bare number is seconds."))
    return (f"tokens live {_human(settings['token_ttl'])} (at most {_human(settings['token_max_ttl'])}); "
            f"each secret ID works once, within {_human(settings['secret_id_ttl'])}.")


def _role_problems(settings: dict, policy: str | None, periodic_ok: bool = True) -> list[str]:
    """What falls short in a role's settings. A periodic role (``token_period``) is judged by its period, not
    by TTL and max TTL: its tokens live as long as they are renewed, and die within one period otherwise
    (``periodic_ok=False``: the exercise asked for TTLs, so a period is a finding)."""
    problems = []
    policies = settings.get("token_policies") or []
    if "root" in policies:
        problems.append("the role hands out tokens with the `root` policy.")
    if policy and policies != [policy]:
        problems.append(f"the role's token_policies are {policies}, expected [{policy!r}].")
    ttl, max_ttl = settings.get("token_ttl") or 0, settings.get("token_max_ttl") or 0
    period = settings.get("token_period") or settings.get("period") or 0
    if period and not periodic_ok:
        problems.append(f"the role's tokens are periodic (token_period {_human(period)}): this exercise asks for "
                        "a TTL and a max TTL instead.")
    elif period:
        if period > _LIMITS["token_period"]:
            problems.append(f"token period {_human(period)}: too long (at most 1h): a token nobody renews "
                            "should die soon.")
    if not period:
        problems += _ttl_problems(ttl, max_ttl)
    uses = settings.get("secret_id_num_uses") or 0
    if uses == 0:
        problems.append("secret IDs have unlimited uses: a leaked one logs in again and again.")
    elif uses > 1:
        problems.append(f"secret IDs work {uses} times: make them single-use.")
    secret_ttl = settings.get("secret_id_ttl") or 0
    if not secret_ttl:
        problems.append("secret IDs never expire.")
    elif secret_ttl > _LIMITS["secret_id_ttl"]:
        problems.append(f"secret IDs live {_human(secret_ttl)}: too long (at most 1h).")
    return problems


def _ttl_problems(ttl: int, max_ttl: int) -> list[str]:
    problems = []
    if not ttl:
        problems.append("no token TTL: the role's tokens get the system default (32 days).")
    elif ttl < 60:
        problems.append(f"token TTL {ttl}s: a bare number is seconds, so the service's token dies before it "
                        "is used; give a duration with a unit.")
    elif ttl > _LIMITS["token_ttl"]:
        problems.append(f"token TTL {_human(ttl)}: too long for a service token (at most 1h).")
    if not max_ttl:
        problems.append("no token max TTL: renewals can keep a token alive for the system maximum (32 days).")
    elif max_ttl > _LIMITS["token_max_ttl"]:
        problems.append(f"token max TTL {_human(max_ttl)}: too long (at most 4h).")
    elif ttl and max_ttl < ttl:
        problems.append("the token max TTL is shorter than the TTL.")
    return problems


@exercise(lab="06", name="service-login", title="The service logs in with AppRole on a client of its own",
          hint=("The service proves who it is with its two AppRole halves, on its own client; the unwrapped "
                "secret ID is the second half, not the wrapping token.",
                "hvac's AppRole login is `service.auth.approle.login(...)`: it takes the role ID and the secret "
                "ID, and keeps the token it gets on that client."))
def check_service_login(service, client: hvac.Client, role: str, policy: str):
    """``service`` is the service's ``hvac.Client``; ``client`` the admin's."""
    expect(isinstance(service, hvac.Client), "`service` is not an hvac.Client.",
           hint="Keep the service's own client from the cell above (`hvac.Client(url=..., token=\"\")`).")
    expect(service is not client, "`service` is the admin client itself.",
           hint="Log the service in on a client of its own: a login replaces that client's token.")
    expect(service.token, "`service` has no token: the login's token was not kept on the client "
           "(`use_token=False`?), or there was no login.",
           hint="A login with hvac's defaults stores the token it gets on the client that logged in.")
    expect(service.token != client.token, "the service uses the admin's (root) token.",
           hint="Log the service in with AppRole instead, on `service`.")
    try:
        info = service.auth.token.lookup_self()["data"]
    except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
        fail("the service's token is not valid (expired, revoked, or still the spent wrapping token: the "
             "wrapping token only carries the secret ID, it is not a login).",
             hint="Log in with the role ID and the secret ID that `unwrap` returned.")
    policies = info.get("policies") or []
    expect("root" not in policies, "the service uses a root token: it may do anything, forever.",
           hint="Log in with AppRole instead.")
    expect(info.get("path", "").startswith("auth/approle/login"),
           f"the service's token was not issued by an AppRole login (it came from `{info.get('path')}`): a "
           "token the administrator makes by hand has to be copied to the service, which is what AppRole avoids.",
           hint="Let the service log in itself, with its role ID and secret ID.")
    role_name = (info.get("meta") or {}).get("role_name")
    expect(role_name in (None, role), f"the service logged in with the role `{role_name}`, not `{role}`.",
           hint=f"Use the role ID of `{role}`.")
    expect(policy in policies, f"the service's token has {policies}, without {policy!r}.",
           hint="Check the role's token_policies.")
    return f"the service holds its own AppRole token with {policies}."


# -- transit --------------------------------------------------------------------------------------------

@exercise(lab="06", name="transit-batch", title="Prepare plaintext for transit (base64)",
          hint=("Transit encrypts bytes and reads every plaintext as base64 text: text -> UTF-8 bytes -> base64 "
                "bytes -> ASCII text.",
                "`str.encode`, `base64.b64encode` and `bytes.decode`, in that order, on each value."))
def check_transit_batch(to_transit_batch, client: hvac.Client | None = None, key: str | None = None,
                        mount_point: str = "transit"):
    """``to_transit_batch(values)`` must give ``[{"plaintext": base64(utf-8 bytes)}, ...]``; with a client and
    key, the batch is also encrypted and decrypted for real, and must come back as the same text."""
    expect(callable(to_transit_batch), "`to_transit_batch` is not a function.",
           hint="Keep the `def to_transit_batch(values):` line and fill in its body.")
    try:
        batch = to_transit_batch(list(_SAMPLES))
    except Exception as error:  # the learner's function, run by the check: its error is the feedback
        fail(f"`to_transit_batch` raised {type(error).__name__}: {error}.",
             hint=("`base64.b64encode` takes bytes, not text; `str.encode` makes the bytes.",))
    expect(not is_stub(batch), f"to_transit_batch(...) returned {batch!r}.",
           hint="Return a list with one dict per value.")
    batch = list(batch)
    expect(len(batch) == len(_SAMPLES), f"{len(_SAMPLES)} values gave {len(batch)} batch item(s).",
           hint="One item per value, in the same order.")
    for value, item in zip(_SAMPLES, batch):
        expect(isinstance(item, dict) and "plaintext" in item,
               f"a batch item should be a dict with a 'plaintext' key, got a {type(item).__name__}.",
               hint="Transit's batch items are dicts; the key it reads is `plaintext`.")
        plaintext = item["plaintext"]
        expect_answered(plaintext, "plaintext")
        expect(isinstance(plaintext, str),
               f"the plaintext of {value!r} is a {type(plaintext).__name__}; Vault's JSON API needs a str.",
               hint=("`b64encode` returns bytes; JSON carries text.", "Decode the base64 bytes as ASCII."))
        expect(plaintext != value,
               f"the plaintext for {value!r} is the value itself, not its base64 encoding: transit decodes "
               "every plaintext as base64, so it refuses most text and silently garbles some (\"Jane\" "
               "decodes to three other bytes).",
               hint=("Encode the value's bytes with base64 first.",
                     "`base64.b64encode` takes bytes: turn the text into UTF-8 bytes before it."))
        try:
            decoded = base64.b64decode(plaintext, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            fail(f"the plaintext for {value!r} is not valid base64 of UTF-8 text (another encoding, such as "
                 "latin-1, garbles accents).",
                 hint=("Transit gives back exactly the bytes it got: use UTF-8, which every character has.",))
        expect(decoded == value, f"the plaintext for {value!r} decodes to {decoded!r}, not to the value.",
               hint=("Encode each value itself, not a placeholder or the whole list.",))
    if client is not None and key:
        transit = client.secrets.transit
        encrypted = transit.encrypt_data(key, batch_input=batch, mount_point=mount_point)["data"]["batch_results"]
        decrypted = transit.decrypt_data(key, batch_input=[{"ciphertext": item["ciphertext"]} for item in encrypted],
                                         mount_point=mount_point)["data"]["batch_results"]
        back = [base64.b64decode(item["plaintext"]).decode("utf-8") for item in decrypted]
        expect(back == _SAMPLES, "a round trip through transit did not give the same text back.",
               hint=("Encode the UTF-8 bytes of each value with base64.",))
        return "base64 of the UTF-8 bytes: a round trip through transit gives every value back, accents included."
    return "base64 of the UTF-8 bytes, one item per value."


@exercise(lab="06", name="rotation", title="Rotate, rewrap, then raise the minimum decryption version",
          hint=("Three steps, in this order: a new key version, the stored data moved onto it, then the old "
                "version retired.",
                "transit's `rotate_key`, `rewrap_data` (in batches, on each personal column) and "
                "`update_key_configuration` with `min_decryption_version`; `read_key` tells the latest version."))
def check_rotation(client: hvac.Client, key: str, stored, columns, mount_point: str = "transit", *,
                   stored_path=None):
    """``stored`` is the frame as rewrapped in memory; its ``columns`` hold transit ciphertexts. Given
    ``stored_path``, the CSV file there (what a backup or the next run reads) must hold the latest version too."""
    expect_answered(stored, "stored", hint="Read the encrypted file back with pandas.")
    try:
        info = client.secrets.transit.read_key(key, mount_point=mount_point)["data"]
    except hvac.exceptions.InvalidPath:
        fail(f"there is no transit key `{key}`.", hint="Re-run the transit cells from the top.")
    latest, minimum = info["latest_version"], info["min_decryption_version"]
    expect(latest >= 2, "the key has never been rotated (it has one version).",
           hint=("Step 1 gives the key a new version.", "That is transit's `rotate_key`."))
    values = [str(v) for column in columns for v in stored[column]]
    expect(values, "the stored frame has no ciphertext in the personal columns.", hint="Check `columns`.")
    expect(all(isinstance(v, str) for column in columns for v in stored[column]),
           "some stored personal values are not strings: a ciphertext is a `vault:v<N>:...` string.",
           hint="Put each batch result's `ciphertext` back into its column.")
    expect(all(v.startswith("vault:v") for v in values),
           "some stored personal values are not transit ciphertexts (they do not start with 'vault:v').",
           hint="Encrypt the personal columns before writing the file.")
    versions = sorted({int(v.split(":")[1][1:]) for v in values})
    old = [v for v in versions if v < latest]
    if old and minimum > min(old):
        fail(f"the stored data is still encrypted with key version {min(old)}, but min_decryption_version is "
             f"{minimum}: that data can no longer be decrypted, nor rewrapped. The minimum was raised before "
             "rewrapping.",
             hint=("It is a setting, so it can be lowered again: lower it, rewrap, write the file, raise it.",
                   f"update_key_configuration({key!r}, min_decryption_version={min(old)}) lowers it."))
    expect(not old, f"the stored data still uses key version(s) {old}; the latest is {latest}.",
           hint=("Step 2 moves every stored ciphertext onto the latest version, without decrypting it.",
                 "`rewrap_data` with `batch_input`, and put its ciphertexts back into `stored` before writing."))
    if stored_path is not None:
        on_disk = _versions_on_disk(stored_path, columns)
        stale = [v for v in on_disk if v < latest]
        expect(not stale,
               f"the file on disk still holds key version(s) {stale}: the rewrapped ciphertexts never reached it"
               + (f" (and with min_decryption_version {minimum} it can no longer be decrypted or rewrapped)"
                  if stale and minimum > min(stale) else "") + ".",
               hint=("`stored` is a copy in memory: the file is what a backup, a colleague or the next run reads.",
                     "Write `stored` back to `stored_path` after rewrapping, before raising the minimum."))
    expect(minimum == latest,
           f"min_decryption_version is {minimum}: ciphertext made with older key versions (an old backup of the "
           "file, say) still decrypts through the API.",
           hint=("Step 3 retires the old versions once nothing stored needs them.",
                 "`update_key_configuration` takes `min_decryption_version`: the latest version, from `read_key`."))
    return (f"all {len(values)} stored values use key version {latest}, and older versions no longer decrypt "
            "through the API.")


def _versions_on_disk(stored_path, columns) -> list[int]:
    """The key versions of the ciphertexts in ``columns`` of the CSV file at ``stored_path``."""
    import pandas as pd

    try:
        on_disk = pd.read_csv(stored_path, index_col=0)
    except (OSError, ValueError) as error:
        fail(f"the stored file could not be read back ({type(error).__name__}).",
             hint="Re-run the cell that writes the encrypted file, then this one.")
    values = [str(v) for column in columns if column in on_disk for v in on_disk[column]]
    return sorted({int(v.split(":")[1][1:]) for v in values if re.match(r"vault:v\d+:", v)})


MIN_DECRYPTION_OPTIONS = {
    "a": "Key version 1 is destroyed: nobody can ever decrypt version-1 ciphertext again.",
    "b": "A leaked copy of key version 1 is now worthless.",
    "c": "Version-1 ciphertext, such as an old backup of the file, no longer decrypts through the API, until "
         "someone allowed to update the key's configuration lowers the minimum again.",
    "d": "A leaked token that may decrypt with this key can no longer decrypt anything.",
}
_MIN_DECRYPTION_WHY = {
    "a": "(a) is what trimming does (`trim_key`), not the minimum: it is a setting, and the lab lowered it "
         "again in the out-of-order demo; version 1 still exists inside Vault.",
    "b": "(b) protects against nothing here: transit keys never leave Vault through its API (this one is not "
         "exportable), so no client holds a copy of a key version; what leaks is a token or ciphertext. A storage "
         "snapshot together with the unseal keys would be a copy, and no key setting helps against it.",
    "c": "(c) holds: old ciphertext (a backup, a copy attached to a ticket) stops decrypting through the API, "
         "until a token with `update` on `transit/keys/<key>/config` lowers the minimum. Rotation itself limits "
         "how much data one key version protects; only revoking a leaked token stops that token.",
    "d": "(d) is what revoking the token does: it still decrypts everything made with version 2, which is all "
         "the stored data now.",
}


@exercise(lab="06", name="min-decryption", title="What raising min_decryption_version protects against",
          hint=("Transit keys never leave Vault: think about what an attacker could hold instead.",
                "Ask of each option: is it about the key's versions, about old ciphertext, or about a token?"))
def check_min_decryption(answer):
    """Multiple choice over :data:`MIN_DECRYPTION_OPTIONS`; (c) is right."""
    expect_answered(answer, "answer")
    return choose(answer, MIN_DECRYPTION_OPTIONS, correct="c", why=_MIN_DECRYPTION_WHY)



# -- audit ----------------------------------------------------------------------------------------------

def _expect_no_secret_printed() -> None:
    """Stop when the running cell printed a secret value (the notebook's masking saw it; outside one, never)."""
    from glassbox import masking

    leaked = masking.leaks_in_this_cell()
    expect(not leaked, f"this cell printed a secret value ({leaked[0] if leaked else ''}). The notebook masked "
           "it, but a terminal, a log or a shared screen would not.",
           hint=("Show metadata instead: a length, a version, a digest's first characters, or a comparison "
                 "(`a == b`).",))


def _contains(value, needle) -> bool:
    if isinstance(value, dict):
        return any(_contains(v, needle) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, needle) for v in value)
    return value == needle


@exercise(lab="06", name="who-read", title="Find who read a secret in the audit log",
          hint=("A read's value is in the log's *response* entry, as a digest: compare digests, never values.",
                "A denied read and a read of another secret have entries too; only one part of an entry says what "
                "came back."))
def check_who_read(readers, entries, hashed: str):
    """``readers``: the response entries among ``entries`` whose returned data holds ``hashed``."""
    _expect_no_secret_printed()
    expect_answered(readers, "readers")
    expect(isinstance(hashed, str) and hashed.startswith("hmac-"),
           "`hashed` is not an audit hash (it should start with 'hmac-').",
           hint="`client.sys.calculate_hash` gives the digest of a value with the audit device's key.")
    readers = list(readers)
    expect(all(isinstance(e, dict) for e in readers), "`readers` should be a list of audit entries (dicts).",
           hint="Filter `entries`; keep the whole entries.")
    expected = [e for e in entries if e.get("type") == "response" and _contains(e.get("response", {}), hashed)]
    ids = lambda items: sorted(e.get("request", {}).get("id", "") for e in items)  # noqa: E731
    requests_only = [e for e in readers if e.get("type") == "request"]
    expect(not requests_only, f"{len(requests_only)} of your entries are requests: a read's value is in the response.",
           hint="Keep e['type'] == 'response'.")
    expect(readers or not expected,
           f"you found 0 read(s); the log holds {len(expected)} response(s) returning that value. The log holds "
           "HMAC digests, never the value itself: compare with `hashed`.",
           hint=("Compare the returned api_key of each response with `hashed`.",))
    expect(ids(readers) == ids(expected),
           f"you found {len(readers)} read(s); the log holds {len(expected)} response(s) returning that value: "
           "keep only the responses that returned the API key, not every response.",
           hint=("A denied request and a read of another secret have responses too.",
                 "Compare the returned api_key of each response with `hashed`."))
    expect(expected, "no entry returns that value: was audit on before the reads?", hint="Re-run the audit cells.")
    return f"{len(expected)} read(s) found, each with the reader's policies."


# -- hardening ------------------------------------------------------------------------------------------

def hardening_findings(client: hvac.Client, service, *, role: str, wrap_ttl, policy: str | None = None,
                       approle_mount: str = "approle") -> list[str]:
    """What falls short in a service's Vault setup; an empty list when nothing does.

    Looks at the service's token (root? from an AppRole login?), the role's TTLs and secret-ID limits, the
    wrap TTL used to deliver secret IDs, the policies the role hands out (a ``*`` or ``+`` wildcard, or ``sudo``),
    and whether any
    audit device is on. ``client`` must be allowed to read roles, policies and audit devices.
    """
    findings: list[str] = []
    try:
        settings = client.auth.approle.read_role(role, mount_point=approle_mount)["data"]
    except hvac.exceptions.InvalidPath:
        settings = None
    if not isinstance(service, hvac.Client) or not service.token:
        findings.append("the service has no client or no token.")
    elif service.token == client.token:
        findings.append("the service uses the root token (the admin's token).")
    else:
        try:
            info = service.auth.token.lookup_self()["data"]
            if "root" in (info.get("policies") or []):
                findings.append("the service uses a root token.")
            elif not str(info.get("path", "")).startswith(f"auth/{approle_mount}/login"):
                findings.append("the service's token does not come from an AppRole login.")
        except hvac.exceptions.VaultError:
            findings.append("the service's token is no longer valid: " + _token_life(settings)
                            + "; run the 'log the service in again' cell.")
    if settings is None:
        findings.append(f"the AppRole `{role}` does not exist.")
        settings = {}
    if settings:
        findings += _role_problems(settings, policy)
    if wrap_ttl in (None, "", 0):
        findings.append("secret IDs are delivered unwrapped (no wrap TTL).")
    else:
        try:
            wrap = duration_seconds(wrap_ttl)
            if wrap > _LIMITS["wrap_ttl"]:
                findings.append(f"wrap TTL {_human(wrap)}: too long for a secret ID in transit (at most 5m).")
        except ValueError:
            findings.append(f"wrap TTL {wrap_ttl!r} is not a duration.")
    for name in settings.get("token_policies") or []:
        if name in ("root", "default"):
            continue
        try:
            hcl = client.sys.read_policy(name)["data"]["rules"]
        except hvac.exceptions.InvalidPath:
            findings.append(f"the role's policy `{name}` does not exist.")
            continue
        for path, capabilities in policy_paths(hcl).items():
            if denies(capabilities):   # a deny takes away, whatever its path: no wildcard or sudo finding
                continue
            if wildcards(path):
                findings.append(f"policy `{name}` grants the wildcard path `{path}` "
                                f"({' and '.join(f'`{mark}`' for mark in wildcards(path))}).")
            if "sudo" in capabilities:
                findings.append(f"policy `{name}` grants sudo on `{path}`.")
    if not client.sys.list_enabled_audit_devices()["data"]:
        findings.append("audit is off: nobody could tell who read what.")
    return findings


def _token_life(settings) -> str:
    """How long a token of a role with these settings lives, in words (for a token that has died)."""
    settings = settings or {}
    period = duration_seconds(settings.get("token_period") or 0)
    ttl, max_ttl = (duration_seconds(settings.get(name) or 0) for name in ("token_ttl", "token_max_ttl"))
    if period:
        return f"tokens of this role die {_human(period)} after their last renewal"
    if ttl:
        return (f"tokens of this role die {_human(ttl)} after login unless renewed"
                + (f" ({_human(max_ttl)} at most)" if max_ttl else ""))
    return "it expired or was revoked, and a token must be renewed or obtained again for as long as the service runs"


@exercise(lab="06", name="hardening", title="Hardening review of the service's setup",
          hint=("Point the review at what the service really runs with: its own client, its role, its policy, and "
                "the wrap TTL its secret ID travelled with.",
                "Every value was created earlier in this notebook; the weak demo above used other names on "
                "purpose."))
def check_hardening(client: hvac.Client, service, *, role: str, wrap_ttl, policy: str | None = None,
                    approle_mount: str = "approle"):
    """Passes when :func:`hardening_findings` finds nothing; otherwise lists every shortfall."""
    for name, value in (("service", service), ("role", role), ("wrap_ttl", wrap_ttl), ("policy", policy)):
        if value is ...:
            expect_answered(value, f"review['{name}']")
    findings = hardening_findings(client, service, role=role, wrap_ttl=wrap_ttl, policy=policy,
                                  approle_mount=approle_mount)
    if findings:
        fail(f"{len(findings)} shortfall(s): " + " | ".join(findings),
             hint=("Each finding names the exercise to revisit: policy, role settings, login, delivery.",
                   "Fix it there, re-run the cells after it, then run this review again."))
    return "no root token, short TTLs, single-use secret IDs, a short wrap TTL, no wildcard or sudo, audit on."


# -- leases: what revoking a certificate changes ----------------------------------------------------------

REVOCATION_OPTIONS = {
    "a": "All three are refused: Vault revoked the certificate, so it stops working everywhere at once.",
    "b": "Only the new connection that checks the fresh CRL is refused. The open connection goes on, and the "
         "client that checks no CRL keeps connecting until the certificate expires.",
    "c": "The open connection and the CRL-checking client are refused; the client that checks no CRL connects.",
    "d": "Nothing changes for any of them until the lease's 10 minutes are up: revocation takes effect when "
         "the lease ends.",
}
_REVOCATION_WHY = {
    "a": "(a) would need Vault to reach into every client and connection: it cannot. Revoking puts the serial "
         "on the CRL, a list that a caller must download and check when it verifies a certificate; the "
         "certificate itself, already in the server's hands, is unchanged.",
    "b": "(b) holds: revocation is a list that callers consult when they verify a certificate, at the TLS "
         "handshake. An open connection was verified before and is not verified again; a client that checks no "
         "CRL (Python's and httpx's default) still sees a valid signature and date; only a client that checks "
         "a CRL fetched after the revocation refuses. Hence short lifetimes, which every client enforces.",
    "c": "(c) assumes an open connection checks the certificate on every request: TLS verifies it once, at the "
         "handshake, and the connection then carries on whatever happens to the certificate.",
    "d": "(d) mixes up revocation and expiry: `revoke_lease` acts at once (the serial is on the CRL the moment "
         "it returns). A lease that ends by itself revokes nothing on the CRL: the certificate expires with it.",
}


@exercise(lab="06", name="revocation", title="What revoking a certificate changes for its callers",
          hint=("Ask where and when a TLS client looks at a certificate, and where a CRL comes from.",
                "Take the three callers one by one: has it verified the certificate already, and does it read "
                "a CRL at all?"))
def check_revocation(revoked):
    """Multiple choice over :data:`REVOCATION_OPTIONS`; (b) is right."""
    expect_answered(revoked, "revoked")
    return choose(revoked, REVOCATION_OPTIONS, correct="b", why=_REVOCATION_WHY)
