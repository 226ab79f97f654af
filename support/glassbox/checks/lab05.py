"""Self-checks for Lab 05 – Vault for a machine-learning service.

Least privilege (a policy string, proven on the server), the AppRole's settings, the service's login, transit
encoding and key rotation, finding readers in the audit log, and the hardening review of the whole setup
(:func:`hardening_findings` lists the shortfalls; :func:`check_hardening` is the exercise built on it).
No message ever contains a secret value.
"""

from __future__ import annotations

import base64
import binascii
import re

import hvac
import hvac.exceptions

from glassbox.checks import exercise, expect, fail, is_stub

__all__ = [
    "check_service_policy", "check_role", "check_service_login", "check_transit_batch", "check_rotation",
    "check_who_read", "check_hardening", "hardening_findings", "policy_paths",
]

_PATH_BLOCK = re.compile(r'path\s+"([^"]*)"\s*\{(.*?)\}', re.S)
_CAPABILITIES = re.compile(r'capabilities\s*=\s*\[([^\]]*)\]', re.S)
_LIMITS = {  # seconds
    "token_ttl": 3600,        # a service token: at most an hour before it must be renewed
    "token_max_ttl": 4 * 3600,
    "secret_id_ttl": 3600,
    "wrap_ttl": 300,          # a wrapped secret ID only has to survive its trip to the service
}
# Samples that catch a missing base64 step: "Jane" and "Anna" are valid base64 themselves, so transit would
# accept them raw and decrypt them to other bytes.
_SAMPLES = ["Jane", "Anna Weber", "zoë.müller@example.org"]



def policy_paths(hcl: str) -> dict[str, list[str]]:
    """The ``path "..." { capabilities = [...] }`` blocks of an HCL policy, as ``{path: capabilities}``."""
    paths: dict[str, list[str]] = {}
    for path, body in _PATH_BLOCK.findall(re.sub(r"(?m)^\s*#.*$", "", hcl)):
        found = _CAPABILITIES.search(body)
        capabilities = re.findall(r'"([^"]*)"', found.group(1)) if found else []
        paths.setdefault(path, []).extend(capabilities)
    return paths


def _seconds(ttl) -> int:
    """``"60s"``, ``"5m"``, ``"1h"``, ``"1h30m"`` or a number of seconds, as seconds."""
    if isinstance(ttl, (int, float)):
        return int(ttl)
    text = str(ttl).strip()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {ttl!r}")
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts)


def _human(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# -- least privilege ------------------------------------------------------------------------------------

@exercise(lab="05", name="service-policy", title="A least-privilege policy for the model service")
def check_service_policy(service_policy, client: hvac.Client | None = None, *, path: str,
                         neighbour: str, mount_point: str = "secret"):
    """The HCL must grant ``read`` on the service's own KV v2 path and nothing else (proved on the server)."""
    expect(not is_stub(service_policy), "`service_policy` is still the stub.",
           hint="Write an HCL string with one `path \"...\" { capabilities = [...] }` block.")
    expect(isinstance(service_policy, str), "`service_policy` should be a string of HCL.",
           hint='service_policy = """path "..." { capabilities = ["read"] }"""')
    paths = policy_paths(service_policy)
    expect(paths, "no `path \"...\" { ... }` block found in `service_policy`.",
           hint='Write a block like: path "secret/data/..." { capabilities = ["read"] }')
    api_path = f"{mount_point}/data/{path}"
    for granted, capabilities in paths.items():
        expect("*" not in granted and "+" not in granted,
               f"the policy grants `{granted}`: a wildcard reaches every path it matches, today's and tomorrow's.",
               hint=f"Name the one path the service reads: {api_path}")
        expect("sudo" not in capabilities, f"the policy grants `sudo` on `{granted}`.",
               hint="sudo is for root-protected admin endpoints; the service never needs it.")
    expect(api_path in paths, _which_path_is_wrong(paths, api_path, path, mount_point),
           hint=f'path "{api_path}" {{ capabilities = ["read"] }}')
    extra = sorted(set(paths) - {api_path})
    expect(not extra, f"the policy also grants {extra}: the service reads only its own secret.",
           hint="Remove every other path block.")
    capabilities = sorted(set(paths[api_path]))
    expect(capabilities == ["read"], f"the policy grants {capabilities} on the service's path; it needs ['read'].",
           hint="The service never writes, deletes or lists: capabilities = [\"read\"].")
    if client is not None:
        _prove_on_server(client, service_policy, path, neighbour, mount_point)
        return "read on its own path only, and the server denies write, the neighbour's path and list."
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
    """Load the policy under a scratch name, then try the service's would-be mistakes with a real token."""
    name = "lab05-policy-selfcheck"
    client.sys.create_or_update_policy(name=name, policy=hcl)
    created = client.auth.token.create(policies=[name], ttl="2m", explicit_max_ttl="2m")["auth"]
    probe = hvac.Client(url=client.url, token=created["client_token"])
    kv = probe.secrets.kv.v2
    try:
        try:
            kv.read_secret_version(path=path, mount_point=mount_point, raise_on_deleted_version=True)
        except hvac.exceptions.Forbidden:
            fail("on the server, a token with this policy may not read the service's own secret.",
                 hint="Check the path: secret/data/<the service's path>, capabilities [\"read\"].")
        except hvac.exceptions.InvalidPath:
            fail("the service's secret is missing, so the policy cannot be tried on the server.",
                 hint="Re-run the cell that writes the service's secret.")
        attempts = {  # cas=0 ("only if absent"): even where the policy allows it, nothing is overwritten
            "write its own secret": lambda: kv.create_or_update_secret(
                path=path, secret={"probe": "x"}, cas=0, mount_point=mount_point),
            "read the neighbour's secret": lambda: kv.read_secret_version(
                path=neighbour, mount_point=mount_point, raise_on_deleted_version=True),
            "list the secrets around it": lambda: kv.list_secrets(
                path=path.rsplit("/", 1)[0] if "/" in path else "", mount_point=mount_point),
        }
        for what, attempt in attempts.items():
            try:
                attempt()
            except hvac.exceptions.Forbidden:
                continue
            except (hvac.exceptions.InvalidPath, hvac.exceptions.InvalidRequest):
                pass  # past the policy, refused only for lack of data or by check-and-set: still too much
            fail(f"on the server, a token with this policy may {what}.", hint="Grant only [\"read\"] on one path.")
    finally:
        client.auth.token.revoke(created["client_token"])
        client.sys.delete_policy(name)


# -- AppRole --------------------------------------------------------------------------------------------

@exercise(lab="05", name="approle", title="An AppRole with short TTLs and single-use secret IDs")
def check_role(client: hvac.Client, role: str, policy: str, mount_point: str = "approle"):
    """Read the role from the server and judge its settings."""
    try:
        settings = client.auth.approle.read_role(role, mount_point=mount_point)["data"]
    except hvac.exceptions.InvalidPath:
        fail(f"there is no AppRole `{role}`.", hint="Run the cell that calls create_or_update_approle(...).")
    problems = _role_problems(settings, policy)
    expect(not problems, problems[0] if problems else "",
           hint="Pass token_ttl='10m', token_max_ttl='30m', secret_id_num_uses=1, secret_id_ttl='5m' "
                f"and token_policies=[{policy!r}] in role_settings.")
    return (f"tokens live {_human(settings['token_ttl'])} (at most {_human(settings['token_max_ttl'])}); "
            f"each secret ID works once, within {_human(settings['secret_id_ttl'])}.")


def _role_problems(settings: dict, policy: str | None) -> list[str]:
    problems = []
    policies = settings.get("token_policies") or []
    if "root" in policies:
        problems.append("the role hands out tokens with the `root` policy.")
    if policy and policies != [policy]:
        problems.append(f"the role's token_policies are {policies}, expected [{policy!r}].")
    ttl, max_ttl = settings.get("token_ttl") or 0, settings.get("token_max_ttl") or 0
    if not ttl:
        problems.append("no token TTL: the role's tokens get the system default (32 days).")
    elif ttl > _LIMITS["token_ttl"]:
        problems.append(f"token TTL {_human(ttl)}: too long for a service token (at most 1h).")
    if not max_ttl:
        problems.append("no token max TTL: renewals can keep a token alive for the system maximum (32 days).")
    elif max_ttl > _LIMITS["token_max_ttl"]:
        problems.append(f"token max TTL {_human(max_ttl)}: too long (at most 4h).")
    elif ttl and max_ttl < ttl:
        problems.append("the token max TTL is shorter than the TTL.")
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


@exercise(lab="05", name="service-login", title="The service logs in with AppRole on a client of its own")
def check_service_login(service, client: hvac.Client, role: str, policy: str):
    """``service`` is the service's ``hvac.Client``; ``client`` the admin's."""
    expect(isinstance(service, hvac.Client), "`service` is not an hvac.Client.",
           hint="Create it with hvac.Client(url=server.addr, token=...) as shown above.")
    expect(service is not client, "`service` is the admin client itself.",
           hint="Log the service in on a client of its own: a login replaces that client's token.")
    expect(service.token, "`service` has no token.", hint="Call service.auth.approle.login(role_id=..., secret_id=...).")
    expect(service.token != client.token, "the service uses the admin's (root) token.",
           hint="Log in with service.auth.approle.login(role_id=role_id, secret_id=secret_id).")
    try:
        info = service.auth.token.lookup_self()["data"]
    except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
        fail("the service's token is not valid (expired, revoked, or still the used wrapping token).",
             hint="Call service.auth.approle.login(role_id=role_id, secret_id=secret_id).")
    policies = info.get("policies") or []
    expect("root" not in policies, "the service uses a root token: it may do anything, forever.",
           hint="Log in with AppRole instead: service.auth.approle.login(role_id=..., secret_id=...).")
    expect(info.get("path", "").startswith("auth/approle/login"),
           f"the service's token was not issued by an AppRole login (it came from `{info.get('path')}`).",
           hint="Call service.auth.approle.login(role_id=role_id, secret_id=secret_id).")
    role_name = (info.get("meta") or {}).get("role_name")
    expect(role_name in (None, role), f"the service logged in with the role `{role_name}`, not `{role}`.",
           hint=f"Use the role ID of `{role}`.")
    expect(policy in policies, f"the service's token has {policies}, without {policy!r}.",
           hint="Check the role's token_policies.")
    return f"the service holds its own AppRole token with {policies}."


# -- transit --------------------------------------------------------------------------------------------

@exercise(lab="05", name="transit-batch", title="Prepare plaintext for transit (base64)")
def check_transit_batch(to_transit_batch, client: hvac.Client | None = None, key: str | None = None,
                        mount_point: str = "transit"):
    """``to_transit_batch(values)`` must give ``[{"plaintext": base64(utf-8 bytes)}, ...]``; with a client and
    key, the batch is also encrypted and decrypted for real, and must come back as the same text."""
    expect(callable(to_transit_batch), "`to_transit_batch` is not a function.",
           hint="Keep the `def to_transit_batch(values):` line and fill in its body.")
    batch = to_transit_batch(list(_SAMPLES))
    expect(not is_stub(batch), f"to_transit_batch(...) returned {batch!r}.",
           hint='Return [{"plaintext": base64.b64encode(value.encode()).decode()} for value in values].')
    batch = list(batch)
    expect(len(batch) == len(_SAMPLES), f"{len(_SAMPLES)} values gave {len(batch)} batch item(s).",
           hint="One item per value, in the same order.")
    for value, item in zip(_SAMPLES, batch):
        expect(isinstance(item, dict) and "plaintext" in item,
               f"a batch item should be a dict with a 'plaintext' key, got {item!r}.",
               hint='{"plaintext": ...} for each value.')
        plaintext = item["plaintext"]
        expect(isinstance(plaintext, str),
               f"the plaintext of {value!r} is a {type(plaintext).__name__}; Vault's JSON API needs a str.",
               hint="Decode the base64 bytes to text: base64.b64encode(...).decode('ascii').")
        expect(plaintext != value,
               f"the plaintext for {value!r} is the value itself, not its base64 encoding: transit decodes "
               "every plaintext as base64, so it refuses most text and silently garbles some (\"Jane\" "
               "decodes to three other bytes).",
               hint="base64.b64encode(value.encode('utf-8')).decode('ascii')")
        try:
            decoded = base64.b64decode(plaintext, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            fail(f"the plaintext for {value!r} is not valid base64 of UTF-8 text.",
                 hint="base64.b64encode(value.encode('utf-8')).decode('ascii')")
        expect(decoded == value, f"the plaintext for {value!r} decodes to {decoded!r}.",
               hint="Encode each value itself: base64.b64encode(value.encode('utf-8')).decode('ascii').")
    if client is not None and key:
        transit = client.secrets.transit
        encrypted = transit.encrypt_data(key, batch_input=batch, mount_point=mount_point)["data"]["batch_results"]
        decrypted = transit.decrypt_data(key, batch_input=[{"ciphertext": item["ciphertext"]} for item in encrypted],
                                         mount_point=mount_point)["data"]["batch_results"]
        back = [base64.b64decode(item["plaintext"]).decode("utf-8") for item in decrypted]
        expect(back == _SAMPLES, "a round trip through transit did not give the same text back.",
               hint="Encode the UTF-8 bytes of each value with base64.")
        return "base64 of the UTF-8 bytes: a round trip through transit gives every value back, accents included."
    return "base64 of the UTF-8 bytes, one item per value."


@exercise(lab="05", name="rotation", title="Rotate, rewrap, then raise the minimum decryption version")
def check_rotation(client: hvac.Client, key: str, stored, columns, mount_point: str = "transit"):
    """``stored`` is the frame as kept on disk; its ``columns`` hold transit ciphertexts."""
    expect(not is_stub(stored), "`stored` is still the stub.", hint="Read the encrypted file back with pandas.")
    try:
        info = client.secrets.transit.read_key(key, mount_point=mount_point)["data"]
    except hvac.exceptions.InvalidPath:
        fail(f"there is no transit key `{key}`.", hint="Re-run the transit cells from the top.")
    latest, minimum = info["latest_version"], info["min_decryption_version"]
    expect(latest >= 2, "the key has never been rotated (it has one version).",
           hint=f"client.secrets.transit.rotate_key({key!r})")
    values = [str(v) for column in columns for v in stored[column]]
    expect(values, "the stored frame has no ciphertext in the personal columns.", hint="Check `columns`.")
    expect(all(v.startswith("vault:v") for v in values),
           "some stored personal values are not transit ciphertexts (they do not start with 'vault:v').",
           hint="Encrypt the personal columns before writing the file.")
    versions = sorted({int(v.split(":")[1][1:]) for v in values})
    old = [v for v in versions if v < latest]
    if old and minimum > min(old):
        fail(f"the stored data is still encrypted with key version {min(old)}, but min_decryption_version is "
             f"{minimum}: that data can no longer be decrypted, nor rewrapped. The minimum was raised before "
             "rewrapping.",
             hint=f"Lower it back (update_key_configuration({key!r}, min_decryption_version={min(old)})), "
                  "rewrap the stored ciphertext, write the file, then raise the minimum again.")
    expect(not old, f"the stored data still uses key version(s) {old}; the latest is {latest}.",
           hint="Rewrap every stored ciphertext (rewrap_data with batch_input) and write the file again.")
    expect(minimum == latest,
           f"min_decryption_version is {minimum}: old key versions still decrypt (a leaked old key still works).",
           hint=f"After rewrapping: update_key_configuration({key!r}, min_decryption_version={latest}).")
    return (f"all {len(values)} stored values use key version {latest}, and older versions no longer decrypt.")


# -- audit ----------------------------------------------------------------------------------------------

def _contains(value, needle) -> bool:
    if isinstance(value, dict):
        return any(_contains(v, needle) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, needle) for v in value)
    return value == needle


@exercise(lab="05", name="who-read", title="Find who read a secret in the audit log")
def check_who_read(readers, entries, hashed: str):
    """``readers``: the response entries among ``entries`` whose returned data holds ``hashed``."""
    expect(not is_stub(readers), "`readers` is still the stub.",
           hint="Keep the entries with e['type'] == 'response' whose response data contains `hashed`.")
    expect(isinstance(hashed, str) and hashed.startswith("hmac-"),
           "`hashed` is not an audit hash (it should start with 'hmac-').",
           hint="hashed = client.sys.calculate_hash(path=<audit device>, input_to_hash=value)['data']['hash']")
    readers = list(readers)
    expect(all(isinstance(e, dict) for e in readers), "`readers` should be a list of audit entries (dicts).",
           hint="Filter `entries`; keep the whole entries.")
    expected = [e for e in entries if e.get("type") == "response" and _contains(e.get("response", {}), hashed)]
    ids = lambda items: sorted(e.get("request", {}).get("id", "") for e in items)  # noqa: E731
    requests_only = [e for e in readers if e.get("type") == "request"]
    expect(not requests_only, f"{len(requests_only)} of your entries are requests: a read's value is in the response.",
           hint="Keep e['type'] == 'response'.")
    expect(ids(readers) == ids(expected),
           f"you found {len(readers)} read(s); the log holds {len(expected)} response(s) returning that value.",
           hint="Compare response['data']['data'][field] with `hashed` in every response entry.")
    expect(expected, "no entry returns that value: was audit on before the reads?", hint="Re-run the audit cells.")
    return f"{len(expected)} read(s) found, each with the reader's policies."


# -- hardening ------------------------------------------------------------------------------------------

def hardening_findings(client: hvac.Client, service, *, role: str, wrap_ttl, policy: str | None = None,
                       approle_mount: str = "approle") -> list[str]:
    """What falls short in a service's Vault setup; an empty list when nothing does.

    Looks at the service's token (root? from an AppRole login?), the role's TTLs and secret-ID limits, the
    wrap TTL used to deliver secret IDs, the policies the role hands out (``*`` or ``sudo``), and whether any
    audit device is on. ``client`` must be allowed to read roles, policies and audit devices.
    """
    findings: list[str] = []
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
            findings.append("the service's token is not valid.")
    try:
        settings = client.auth.approle.read_role(role, mount_point=approle_mount)["data"]
    except hvac.exceptions.InvalidPath:
        findings.append(f"the AppRole `{role}` does not exist.")
        settings = {}
    if settings:
        findings += _role_problems(settings, policy)
    if wrap_ttl in (None, "", 0):
        findings.append("secret IDs are delivered unwrapped (no wrap TTL).")
    else:
        try:
            wrap = _seconds(wrap_ttl)
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
            if "*" in path:
                findings.append(f"policy `{name}` grants the wildcard path `{path}`.")
            if "sudo" in capabilities:
                findings.append(f"policy `{name}` grants sudo on `{path}`.")
    if not client.sys.list_enabled_audit_devices()["data"]:
        findings.append("audit is off: nobody could tell who read what.")
    return findings


@exercise(lab="05", name="hardening", title="Hardening review of the service's setup")
def check_hardening(client: hvac.Client, service, *, role: str, wrap_ttl, policy: str | None = None,
                    approle_mount: str = "approle"):
    """Passes when :func:`hardening_findings` finds nothing; otherwise lists every shortfall."""
    findings = hardening_findings(client, service, role=role, wrap_ttl=wrap_ttl, policy=policy,
                                  approle_mount=approle_mount)
    if findings:
        fail(f"{len(findings)} shortfall(s): " + " | ".join(findings),
             hint="Fix them in the exercises above (policy, role settings, login), then run this check again.")
    return "no root token, short TTLs, single-use secret IDs, a short wrap TTL, no wildcard or sudo, audit on."
