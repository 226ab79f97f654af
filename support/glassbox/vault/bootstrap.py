"""The course's Vault setup for the model service, made idempotently so that later labs need not redo lab 06.

Lab 06 builds this setup by hand; labs 07-09 and the model server call :func:`ensure` instead::

    import hvac
    from glassbox import vault
    from glassbox.vault import bootstrap

    server = vault.up()
    admin = hvac.Client(url=server.addr, token=server.token)
    setup = bootstrap.ensure(admin)                  # safe to call again and again
    service = bootstrap.login_service(admin)         # an AppRole login on a client of its own
    api_key = bootstrap.read_api_key(service)        # never print it

Fixed names (module constants, also carried by :class:`Setup`):

- KV v2 mount ``secret`` (:data:`MOUNT`): the dev server's own ``secret/`` mount, enabled if absent;
- the service's secret ``glassbox/model-service`` (:data:`SERVICE_PATH`), one field ``api_key``
  (:data:`API_KEY_FIELD`), 43 URL-safe characters from ``secrets``; API path ``secret/data/glassbox/model-service``;
- the service's policy ``glassbox-model-service`` (:data:`POLICY`): ``read`` on that API path, nothing else;
- the AppRole ``glassbox-model-service`` (:data:`ROLE`) at ``auth/approle`` (:data:`APPROLE_MOUNT`): tokens
  carry only the policy and are *periodic* (:data:`TOKEN_PERIOD`, 15m): each renewal gives another period,
  with no maximum lifetime, so a service whose Vault Agent renews them keeps one token for as long as it runs,
  and a token nobody renews dies within 15 minutes. Secret IDs are single-use (:data:`SECRET_ID_NUM_USES`),
  valid 10m (:data:`SECRET_ID_TTL`), wrapped for 60s by default (:data:`WRAP_TTL`); secret IDs and tokens
  are bound to the addresses :data:`BOUND_CIDRS` (this machine's loopback; compose passes its own network);
- the trusted orchestrator's policy ``glassbox-orchestrator`` (:data:`ORCHESTRATOR_POLICY`): read the role ID
  and issue *wrapped* secret IDs for the service's role, nothing else (:func:`orchestrator_token`: periodic,
  :data:`ORCHESTRATOR_TOKEN_PERIOD`, 1h). It solves "secret zero": whoever starts the service hands it a wrapped
  secret ID, and never needs the root token;
- the transit key ``glassbox-pii`` (:data:`TRANSIT_KEY`) at ``transit/`` (:data:`TRANSIT_MOUNT`), for the
  dataset's personal columns;
- the PKI engine at ``pki/`` (:data:`PKI_MOUNT`) with the course CA (:data:`CA_COMMON_NAME`, made once) and the
  role ``glassbox-model-server`` (:data:`PKI_ROLE`): server certificates for the names in
  :data:`SERVER_NAMES` (this machine, compose's and Kubernetes' service names) and IP addresses only, valid 1h (:data:`CERT_TTL`), not stored by Vault; the service's policy may issue them,
  and its agent renews them before they expire. Callers verify the server against :func:`ca_certificate`.

Every function takes an ``hvac.Client``; admin functions need a token allowed to manage mounts, policies
and roles (the dev root token), service functions take the service's own client. Nothing here prints or
logs a secret value.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

import hvac
import hvac.exceptions

from glassbox.errors import GlassboxError

__all__ = [
    "Setup", "WrappingTokenError", "ensure", "service_policy", "orchestrator_policy", "orchestrator_token",
    "role_id", "wrapped_secret_id", "login_with_wrapped_secret", "login_service", "read_api_key",
    "rotate_api_key", "destroy_old_api_keys", "encrypt_values", "decrypt_values",
    "MOUNT", "SERVICE_PATH", "API_KEY_FIELD", "POLICY", "ORCHESTRATOR_POLICY", "APPROLE_MOUNT", "ROLE",
    "TRANSIT_MOUNT", "TRANSIT_KEY", "PKI_MOUNT", "PKI_ROLE", "CERT_TTL", "CA_COMMON_NAME", "ca_certificate",
    "TOKEN_PERIOD", "ORCHESTRATOR_TOKEN_PERIOD", "SECRET_ID_TTL", "SECRET_ID_NUM_USES", "WRAP_TTL",
    "MAX_WRAP_TTL", "BOUND_CIDRS", "duration_seconds",
]

MOUNT = "secret"
SERVICE_PATH = "glassbox/model-service"
API_KEY_FIELD = "api_key"
POLICY = "glassbox-model-service"
ORCHESTRATOR_POLICY = "glassbox-orchestrator"
APPROLE_MOUNT = "approle"
ROLE = "glassbox-model-service"
TRANSIT_MOUNT = "transit"
TRANSIT_KEY = "glassbox-pii"
PKI_MOUNT = "pki"
PKI_ROLE = "glassbox-model-server"
CERT_TTL = "1h"
CA_COMMON_NAME = "Glassbox course CA (dev only)"
# The names a server certificate may carry: this machine, compose's service, the Kubernetes Service.
SERVER_NAMES = ("localhost", "model-server", "glassbox-model-server.glassbox.svc")
TOKEN_PERIOD = "15m"
ORCHESTRATOR_TOKEN_PERIOD = "1h"  # the orchestrator's token, renewed by Delivery
SECRET_ID_TTL = "10m"
SECRET_ID_NUM_USES = 1
WRAP_TTL = "60s"
MAX_WRAP_TTL = "300s"  # the orchestrator may not wrap for longer (its policy's max_wrapping_ttl)
BOUND_CIDRS = ("127.0.0.1/32",)
_BATCH_SIZE = 250  # transit batch items per request


class WrappingTokenError(GlassboxError, RuntimeError):
    """A wrapping token that is invalid, already used, or was not made where it claims to come from."""


@dataclass(frozen=True)
class Setup:
    """Names and settings of the course's model-service setup (no secrets in here)."""

    mount: str = MOUNT
    service_path: str = SERVICE_PATH
    api_key_field: str = API_KEY_FIELD
    policy: str = POLICY
    approle_mount: str = APPROLE_MOUNT
    role: str = ROLE
    transit_mount: str = TRANSIT_MOUNT
    transit_key: str = TRANSIT_KEY
    pki_mount: str = PKI_MOUNT
    pki_role: str = PKI_ROLE
    cert_ttl: str = CERT_TTL
    token_period: str | None = TOKEN_PERIOD  # None: non-periodic tokens with token_ttl and token_max_ttl
    token_ttl: str | None = None
    token_max_ttl: str | None = None
    secret_id_ttl: str = SECRET_ID_TTL
    secret_id_num_uses: int = SECRET_ID_NUM_USES
    bound_cidrs: tuple[str, ...] = BOUND_CIDRS
    orchestrator_policy: str = ORCHESTRATOR_POLICY

    @property
    def api_path(self) -> str:
        """The HTTP API path of the service's secret (what a policy names): ``secret/data/glassbox/...``."""
        return f"{self.mount}/data/{self.service_path}"

    @property
    def issue_path(self) -> str:
        """The API path where the service's agent issues the server's certificate."""
        return f"{self.pki_mount}/issue/{self.pki_role}"

    @property
    def secret_id_creation_path(self) -> str:
        """Where a genuine wrapped secret ID for the role is created (checked before unwrapping)."""
        return f"auth/{self.approle_mount}/role/{self.role}/secret-id"


def duration_seconds(duration) -> int:
    """A Vault duration (``"60s"``, ``"5m"``, ``"1h30m"``, ``"2d"``) or a number of seconds, as seconds.

    Raises ``ValueError`` for anything else.
    """
    if isinstance(duration, (int, float)):
        return int(duration)
    text = str(duration).strip()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts)


def service_policy(setup: Setup | None = None) -> str:
    """The service's policy in HCL: read its own secret and issue its server certificate, nothing else."""
    setup = setup or Setup()
    return (
        f"# {setup.policy}: the model service reads its own secret and gets its TLS certificate, nothing else.\n"
        f'path "{setup.api_path}" {{\n  capabilities = ["read"]\n}}\n'
        f'path "{setup.issue_path}" {{\n  capabilities = ["update"]\n}}\n'
    )


def orchestrator_policy(setup: Setup | None = None) -> str:
    """The trusted orchestrator's policy in HCL: the role ID, and secret IDs only response-wrapped."""
    setup = setup or Setup()
    role = f"auth/{setup.approle_mount}/role/{setup.role}"
    return (
        f"# {setup.orchestrator_policy}: starts the model service; it never sees a secret ID in the clear.\n"
        f'path "{role}/role-id" {{\n  capabilities = ["read"]\n}}\n'
        f'path "{role}/secret-id" {{\n  capabilities = ["update"]\n'
        f'  min_wrapping_ttl = "1s"\n  max_wrapping_ttl = "{MAX_WRAP_TTL}"\n}}\n'
    )


def ensure(client: hvac.Client, setup: Setup | None = None) -> Setup:
    """Create whatever is missing of the course setup and return its names; idempotent.

    KV v2 at ``secret/`` (enabled if absent), the service's and the orchestrator's policies, the AppRole auth
    method and role, the transit engine and key, and the service's API key (created once; use
    :func:`rotate_api_key` to change it). ``setup`` changes the role's lifetimes and bound addresses (the
    soak test compresses them to seconds; compose binds its own network).
    """
    setup = setup or Setup()
    _ensure_kv2(client, setup.mount)
    client.sys.create_or_update_policy(name=setup.policy, policy=service_policy(setup))
    client.sys.create_or_update_policy(name=setup.orchestrator_policy, policy=orchestrator_policy(setup))
    if f"{setup.approle_mount}/" not in client.sys.list_auth_methods()["data"]:
        _tolerate_race(lambda: client.sys.enable_auth_method("approle", path=setup.approle_mount))
    client.auth.approle.create_or_update_approle(
        setup.role,
        token_policies=[setup.policy],
        token_period=setup.token_period or "0",
        token_ttl=setup.token_ttl or "0",
        token_max_ttl=setup.token_max_ttl or "0",
        secret_id_ttl=setup.secret_id_ttl,
        secret_id_num_uses=setup.secret_id_num_uses,
        secret_id_bound_cidrs=list(setup.bound_cidrs),
        token_bound_cidrs=list(setup.bound_cidrs),
        mount_point=setup.approle_mount,
    )
    if f"{setup.transit_mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        _tolerate_race(lambda: client.sys.enable_secrets_engine("transit", path=setup.transit_mount))
    client.secrets.transit.create_key(setup.transit_key, mount_point=setup.transit_mount)  # no-op if present
    _ensure_pki(client, setup)
    _ensure_api_key(client, setup)
    return setup


def ca_certificate(client: hvac.Client, mount: str = PKI_MOUNT) -> str:
    """The course CA's certificate (PEM; public): what callers verify the model server's certificate with."""
    return client.secrets.pki.read_ca_certificate(mount_point=mount).strip() + "\n"


def role_id(client: hvac.Client) -> str:
    """The role ID of the service's AppRole (an identifier, not a secret on its own)."""
    return client.auth.approle.read_role_id(ROLE, mount_point=APPROLE_MOUNT)["data"]["role_id"]


def orchestrator_token(admin_client: hvac.Client, period: str = ORCHESTRATOR_TOKEN_PERIOD, *,
                       ttl: str | None = None) -> str:
    """A token for the trusted orchestrator (see :func:`orchestrator_policy`), with its policy only.

    It is *periodic*: it dies one ``period`` after its last renewal, and each renewal gives it another period,
    with no maximum lifetime, so :class:`glassbox.vault.orchestrator.Delivery` (which renews it) keeps it as
    long as it runs. ``ttl`` makes a non-periodic token instead that dies ``ttl`` after its creation and cannot
    be renewed: enough for a one-off delivery (compose's bootstrap), not for a ``Delivery``. A periodic token
    from ``auth/token/create`` needs a root or ``sudo`` token: ``admin_client``'s.
    """
    lifetime = {"ttl": ttl, "renewable": False} if ttl else {"period": period, "renewable": True}
    response = admin_client.auth.token.create(policies=[ORCHESTRATOR_POLICY], display_name="glassbox-orchestrator",
                                              **lifetime)
    return response["auth"]["client_token"]


def wrapped_secret_id(client: hvac.Client, wrap_ttl: str = WRAP_TTL) -> str:
    """A new single-use secret ID for the service, response-wrapped: returns the wrapping token only.

    ``client`` is the orchestrator's (:func:`orchestrator_token`) or an administrator's.
    """
    response = client.auth.approle.generate_secret_id(ROLE, mount_point=APPROLE_MOUNT, wrap_ttl=wrap_ttl)
    return response["wrap_info"]["token"]


def login_with_wrapped_secret(addr: str, role_id: str, wrapping_token: str) -> hvac.Client:
    """Log the service in on a new client of its own: check the wrapping token, unwrap, log in with AppRole.

    Raises :class:`WrappingTokenError` when the token is unknown, already unwrapped, or was not created by
    the service's role (someone may have handed over a look-alike wrapped secret).
    """
    expected = Setup().secret_id_creation_path
    anonymous = hvac.Client(url=addr, token="")  # token="" keeps hvac from using VAULT_TOKEN
    try:
        info = anonymous.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapping_token})["data"]
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden) as error:
        raise WrappingTokenError("the wrapping token is invalid, expired or already used") from error
    if info.get("creation_path") != expected:
        raise WrappingTokenError(
            f"the wrapping token was created at {info.get('creation_path')!r}, not {expected!r}: do not use it"
        )
    service = hvac.Client(url=addr, token=wrapping_token)
    try:
        secret_id = service.sys.unwrap()["data"]["secret_id"]
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden) as error:
        raise WrappingTokenError("the wrapping token was unwrapped by someone else first") from error
    service.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=APPROLE_MOUNT)
    return service


def login_service(admin_client: hvac.Client, wrap_ttl: str = WRAP_TTL) -> hvac.Client:
    """Both sides at once (for tests and later labs): issue a wrapped secret ID and log the service in."""
    return login_with_wrapped_secret(admin_client.url, role_id(admin_client), wrapped_secret_id(admin_client, wrap_ttl))


def read_api_key(service_client: hvac.Client, version: int | None = None) -> str:
    """The service's API key (latest version unless ``version``); the caller must never print it."""
    response = service_client.secrets.kv.v2.read_secret_version(
        path=SERVICE_PATH, version=version, mount_point=MOUNT, raise_on_deleted_version=True
    )
    return response["data"]["data"][API_KEY_FIELD]


def rotate_api_key(admin_client: hvac.Client) -> int:
    """Store a new random API key as a new KV version (check-and-set) and return that version number."""
    kv = admin_client.secrets.kv.v2
    current = kv.read_secret_metadata(path=SERVICE_PATH, mount_point=MOUNT)["data"]["current_version"]
    response = kv.create_or_update_secret(
        path=SERVICE_PATH, secret={API_KEY_FIELD: _new_api_key()}, cas=current, mount_point=MOUNT
    )
    return response["data"]["version"]


def destroy_old_api_keys(admin_client: hvac.Client) -> list[int]:
    """Destroy every version of the API key but the current one; return the versions destroyed.

    Call it once the rollout is over (the server and its callers use the new key): the service's policy reads
    ``secret/data/...``, which also serves old versions (``?version=N``), so a stolen service token could still
    read old keys. Destroyed versions are gone for good: nobody can read or undelete them.
    """
    kv = admin_client.secrets.kv.v2
    meta = kv.read_secret_metadata(path=SERVICE_PATH, mount_point=MOUNT)["data"]
    old = sorted(int(number) for number, version in meta["versions"].items()
                 if int(number) != meta["current_version"] and not version.get("destroyed"))
    if old:
        kv.destroy_secret_versions(path=SERVICE_PATH, versions=old, mount_point=MOUNT)
    return old


def encrypt_values(client: hvac.Client, values, key: str = TRANSIT_KEY) -> list[str]:
    """Encrypt strings with the transit key in batch requests; returns ``vault:vN:...`` ciphertexts."""
    batch = [{"plaintext": base64.b64encode(str(value).encode()).decode("ascii")} for value in values]
    results = _in_batches(lambda items: client.secrets.transit.encrypt_data(
        key, batch_input=items, mount_point=TRANSIT_MOUNT), batch)
    return [item["ciphertext"] for item in results]


def decrypt_values(client: hvac.Client, ciphertexts, key: str = TRANSIT_KEY) -> list[str]:
    """Decrypt transit ciphertexts in batch requests (needs a token allowed to decrypt)."""
    batch = [{"ciphertext": text} for text in ciphertexts]
    results = _in_batches(lambda items: client.secrets.transit.decrypt_data(
        key, batch_input=items, mount_point=TRANSIT_MOUNT), batch)
    return [base64.b64decode(item["plaintext"]).decode() for item in results]


# -- private helpers -------------------------------------------------------------------------------------

def _new_api_key() -> str:
    return secrets.token_urlsafe(32)


def _tolerate_race(enable) -> None:
    """Enable a mount; another process enabling it at the same moment is fine."""
    try:
        enable()
    except hvac.exceptions.InvalidRequest as error:
        if "already in use" not in str(error):
            raise


def _ensure_kv2(client: hvac.Client, mount: str) -> None:
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    found = mounts.get(f"{mount}/")
    if found is None:
        _tolerate_race(lambda: client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"}))
    elif found.get("type") != "kv" or (found.get("options") or {}).get("version") != "2":
        raise RuntimeError(f"the mount {mount}/ exists but is not KV version 2; the course needs KV v2 there")


def _ensure_pki(client: hvac.Client, setup: Setup) -> None:
    """The PKI engine, the course CA (made once: callers keep trusting it) and the server-certificate role."""
    if f"{setup.pki_mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        _tolerate_race(lambda: client.sys.enable_secrets_engine("pki", path=setup.pki_mount,
                                                                 config={"max_lease_ttl": "87600h"}))
    if not client.secrets.pki.read_ca_certificate(mount_point=setup.pki_mount).strip():
        client.secrets.pki.generate_root("internal", CA_COMMON_NAME, mount_point=setup.pki_mount,
                                         extra_params={"ttl": "87600h", "key_type": "ec", "key_bits": 256})
    client.secrets.pki.create_or_update_role(setup.pki_role, mount_point=setup.pki_mount, extra_params={
        "allowed_domains": list(SERVER_NAMES), "allow_bare_domains": True, "allow_subdomains": False,
        "allow_glob_domains": False, "allow_localhost": True, "allow_ip_sans": True, "allow_any_name": False,
        "server_flag": True, "client_flag": False, "key_type": "ec", "key_bits": 256,
        "ttl": setup.cert_ttl, "max_ttl": setup.cert_ttl, "no_store": True,
    })


def _ensure_api_key(client: hvac.Client, setup: Setup) -> None:
    """Write a first API key unless a live (not deleted, not destroyed) version already exists."""
    kv = client.secrets.kv.v2
    try:
        meta = kv.read_secret_metadata(path=setup.service_path, mount_point=setup.mount)["data"]
    except hvac.exceptions.InvalidPath:
        meta = None
    if meta is not None:
        latest = meta["versions"].get(str(meta["current_version"]), {})
        if not latest.get("deletion_time") and not latest.get("destroyed"):
            return
    try:
        kv.create_or_update_secret(
            path=setup.service_path, secret={setup.api_key_field: _new_api_key()},
            cas=meta["current_version"] if meta else 0, mount_point=setup.mount,
        )
    except hvac.exceptions.InvalidRequest as error:  # someone else wrote it first: theirs stands
        if "check-and-set" not in str(error):
            raise


def _in_batches(call, items: list[dict]) -> list[dict]:
    """Send ``items`` in slices small enough for the server's JSON limits (OpenBao: 1,000 strings a request)."""
    results: list[dict] = []
    for start in range(0, len(items), _BATCH_SIZE):
        batch = call(items[start:start + _BATCH_SIZE])["data"]["batch_results"]
        errors = [item["error"] for item in batch if item.get("error")]
        if errors:
            raise hvac.exceptions.InvalidRequest(f"{len(errors)} of {len(batch)} batch item(s) failed: {errors[0]}")
        results += batch
    return results
