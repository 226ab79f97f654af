"""Callers authenticate with a bearer API key that the server reads from Vault, and re-reads while it runs.

:class:`ApiKeyGuard` holds the current key and checks ``Authorization: Bearer <key>`` headers in constant
time. It gets the key from a *source*:

* :class:`VaultKeySource`: the model service's AppRole. The server receives its role ID and a response-wrapped,
  single-use secret ID (the value, or a file holding it), checks that the wrapping token was created for the
  service's role, unwraps it, logs in, and reads the key from KV v2 (``secret/glassbox/model-service``, field
  ``api_key``: see :mod:`glassbox.vault.bootstrap`). It renews its token while it can; when the token has
  expired (after its max TTL) it logs in again with a *new* wrapped secret ID delivered into the file, and a
  new wrapping token in the file is also used right away (that is how a secret ID is rotated).
* :class:`KeyFileSource`: a file holding the key, kept fresh by someone else (the Vault Agent sidecar on
  Kubernetes renders it there).

The key is re-read every ``refresh_seconds`` on a background task, so a rotation in Vault needs no restart:
the old key is refused from the next refresh on. A caller presenting a key the server does not know also
triggers a re-read (at most once every ``min_refresh_interval`` seconds), so callers that already picked up a
rotated key are not refused while the server catches up. When a re-read fails the server keeps the last key
it read and counts the failure. Keys are never logged or shown.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from pathlib import Path

__all__ = ["ApiKeyGuard", "KeyFileSource", "KeySourceError", "VaultKeySource"]

_log = logging.getLogger("glassbox.serving")


class KeySourceError(RuntimeError):
    """The API key could not be obtained (the message says why; it never holds a secret)."""


class KeyFileSource:
    """The API key from a file (whitespace around it ignored); the version counts the distinct keys seen.

    Whoever writes the file must replace it in one step (write a temporary file beside it, then rename it), as
    Vault Agent renders its templates: a file rewritten in place can be read empty or half-written.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._last: str | None = None
        self._version = 0

    def describe(self) -> str:
        return f"the file {self.path}"

    def read(self) -> tuple[str, int]:
        try:
            key = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise KeySourceError(f"cannot read the API key file {self.path}: {type(error).__name__}") from None
        if not key:
            raise KeySourceError(f"the API key file {self.path} is empty")
        if key != self._last:
            self._last, self._version = key, self._version + 1
        return key, self._version


class VaultKeySource:
    """The API key from Vault, read with the model service's own AppRole login (see the module docstring)."""

    def __init__(self, addr: str, role_id: str, wrapped_secret_id: str | None = None,
                 wrapped_secret_id_file=None):
        if not addr or not role_id:
            raise KeySourceError("Vault needs an address (VAULT_ADDR) and the service's role ID")
        if not wrapped_secret_id and not wrapped_secret_id_file:
            raise KeySourceError("Vault needs a wrapped secret ID (the value or a file holding it)")
        self.addr, self.role_id = addr, role_id
        self._pending = wrapped_secret_id.strip() if wrapped_secret_id else None
        self._file = Path(wrapped_secret_id_file) if wrapped_secret_id_file else None
        self._used: set[str] = set()  # wrapping tokens already spent (each works once)
        self._client = None
        self._renew_at = 0.0
        self.logins = 0

    def describe(self) -> str:
        return f"Vault at {self.addr} (AppRole {self._role_name()})"

    def read(self) -> tuple[str, int]:
        import hvac.exceptions

        from glassbox.vault import bootstrap

        fresh = self._fresh_wrapping_token()
        if self._client is None or fresh:
            self._login(fresh)
        try:
            response = self._read_secret()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            fresh = self._fresh_wrapping_token()
            if not fresh:
                raise KeySourceError(
                    "the service's Vault token was refused (expired or revoked) and no new wrapped secret ID "
                    f"has been delivered{' to ' + str(self._file) if self._file else ''}: keeping the last key"
                ) from None
            self._login(fresh)
            response = self._read_secret()
        self._renew_if_due()
        data = response["data"]
        try:
            return data["data"][bootstrap.API_KEY_FIELD], int(data["metadata"]["version"])
        except (KeyError, TypeError):
            raise KeySourceError(f"the secret {bootstrap.MOUNT}/{bootstrap.SERVICE_PATH} has no "
                                 f"{bootstrap.API_KEY_FIELD!r} field") from None

    def close(self) -> None:
        """Revoke the service's token (best effort): a stopped server leaves no live token behind."""
        if self._client is not None:
            try:
                self._client.auth.token.revoke_self()
            except Exception:
                pass
            self._client = None

    # -- private ------------------------------------------------------------------------------------------

    @staticmethod
    def _role_name() -> str:
        from glassbox.vault import bootstrap

        return bootstrap.ROLE

    def _fresh_wrapping_token(self) -> str | None:
        """A wrapping token not used yet: the one given at start-up, else a new one in the file."""
        if self._pending:
            token, self._pending = self._pending, None
            return token
        if self._file is None:
            return None
        try:
            token = self._file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return token if token and token not in self._used else None

    def _login(self, wrapping_token: str | None) -> None:
        import hvac.exceptions
        import requests

        from glassbox.vault import bootstrap

        if not wrapping_token:
            raise KeySourceError("no wrapped secret ID to log in with")
        self._used.add(wrapping_token)
        try:
            client = bootstrap.login_with_wrapped_secret(self.addr, self.role_id, wrapping_token)
        except bootstrap.WrappingTokenError as error:
            raise KeySourceError(f"Vault login refused: {error}") from None
        except hvac.exceptions.VaultError as error:
            raise KeySourceError(f"Vault login refused: {type(error).__name__}: {_first_line(error)}") from None
        except requests.exceptions.RequestException as error:
            raise KeySourceError(f"Vault at {self.addr} did not answer: {type(error).__name__}") from None
        previous, self._client = self._client, client
        self.logins += 1
        self._schedule_renewal()
        if previous is not None:  # a new secret ID was delivered: retire the old token
            try:
                previous.auth.token.revoke_self()
            except Exception:
                pass

    def _read_secret(self) -> dict:
        import requests

        from glassbox.vault import bootstrap

        try:
            return self._client.secrets.kv.v2.read_secret_version(
                path=bootstrap.SERVICE_PATH, mount_point=bootstrap.MOUNT, raise_on_deleted_version=True)
        except requests.exceptions.RequestException as error:
            raise KeySourceError(f"Vault at {self.addr} did not answer: {type(error).__name__}") from None

    def _schedule_renewal(self, ttl: float | None = None) -> None:
        if ttl is None:
            try:
                ttl = float(self._client.auth.token.lookup_self()["data"]["ttl"])
            except Exception:
                ttl = 0.0
        self._renew_at = time.monotonic() + ttl / 2 if ttl > 0 else float("inf")

    def _renew_if_due(self) -> None:
        if time.monotonic() < self._renew_at:
            return
        try:
            auth = self._client.auth.token.renew_self()["auth"]
            self._schedule_renewal(float(auth["lease_duration"]))
        except Exception:  # at its max TTL: it lives until then, and a new secret ID takes over
            self._renew_at = float("inf")


class ApiKeyGuard:
    """The current API key, checked in constant time and refreshed from its source.

    ``refresh_seconds``: how often the background task re-reads the key; ``min_refresh_interval``: how often at
    most an unknown key presented by a caller may trigger an extra re-read.
    """

    def __init__(self, source, refresh_seconds: float = 30.0, min_refresh_interval: float = 1.0, metrics=None):
        self.source = source
        self.refresh_seconds = float(refresh_seconds)
        self.min_refresh_interval = float(min_refresh_interval)
        self.metrics = metrics
        self.version: int | None = None
        self._key: bytes | None = None
        self._last_attempt = 0.0
        self._lock: asyncio.Lock | None = None
        self._source_lock = threading.Lock()  # the periodic and the on-demand re-read never overlap
        self._task: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        return self._key is not None

    def load(self) -> None:
        """Read the key now (blocking); raise :class:`KeySourceError` when that fails. Call before serving."""
        self._refresh_sync(raise_errors=True)

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header value carries the current key (constant-time comparison)."""
        presented = _bearer(header)
        return presented is not None and self._matches(presented)

    async def authorize(self, header: str | None) -> bool:
        """Like :meth:`authorized`, but an unknown key first triggers a (rate-limited) re-read of the key."""
        presented = _bearer(header)
        if presented is None:
            return False
        if self._matches(presented):
            return True
        if time.monotonic() - self._last_attempt < self.min_refresh_interval:
            return False
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._matches(presented) and time.monotonic() - self._last_attempt >= self.min_refresh_interval:
                await asyncio.to_thread(self._refresh_sync)
        return self._matches(presented)

    async def run(self) -> None:
        """Re-read the key every ``refresh_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await asyncio.to_thread(self._refresh_sync)

    def start(self) -> None:
        """Start the refresh task on the running event loop."""
        self._lock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self.run(), name="glassbox-key-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        close = getattr(self.source, "close", None)
        if close is not None:
            await asyncio.to_thread(close)

    # -- private ------------------------------------------------------------------------------------------

    def _matches(self, presented: bytes) -> bool:
        key = self._key
        return key is not None and hmac.compare_digest(presented, key)

    def _refresh_sync(self, raise_errors: bool = False) -> None:
        try:
            with self._source_lock:
                self._last_attempt = time.monotonic()
                key, version = self.source.read()
        except Exception as error:
            if self.metrics is not None:
                self.metrics.key_refresh("error")
            message = str(error) if isinstance(error, KeySourceError) else type(error).__name__
            if raise_errors:
                raise KeySourceError(f"could not read the API key from {self.source.describe()}: {message}") from None
            _log.warning("API key refresh failed (%s); keeping the last key", message)
            return
        changed = self.version is not None and version != self.version
        self._key, self.version = key.encode("utf-8"), version
        if self.metrics is not None:
            self.metrics.key_refresh("changed" if changed else "ok", version)
        if changed:
            _log.info("API key changed to version %s", version)


def _bearer(header: str | None) -> bytes | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip().encode("utf-8", "surrogateescape")


def _first_line(error) -> str:
    return str(error).splitlines()[0][:200] if str(error) else ""
