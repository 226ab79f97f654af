"""Callers authenticate with a bearer API key that the server reads from a file, and re-reads while it runs.

:class:`ApiKeyGuard` holds the current key and checks ``Authorization: Bearer <key>`` headers in constant
time. It gets the key from :class:`KeyFileSource`: a file that Vault Agent keeps fresh (see
:mod:`glassbox.vault.agent`: the agent logs in with the service's AppRole, renews its token, logs in again
when it must, and renders the key's latest version). The server itself has no Vault client and no token.

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

from glassbox.errors import GlassboxError

__all__ = ["ApiKeyGuard", "KeyFileSource", "KeySourceError"]

_log = logging.getLogger("glassbox.serving")


class KeySourceError(GlassboxError, RuntimeError):
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

