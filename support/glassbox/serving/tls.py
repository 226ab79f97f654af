"""HTTPS with a certificate that Vault Agent renews: the server reloads it while it runs, with no restart.

The agent renders the server's certificate, the course CA and the private key into one PEM file
(:mod:`glassbox.vault.agent`, ``certificate=True``; Vault's PKI engine issues it for an hour and the agent
issues the next one before it expires). :class:`ReloadingCertificate` builds the server's TLS context from
that file and, every ``check_seconds``, loads the file again when it has changed: connections opened after
that get the new certificate, open ones keep theirs. A file that cannot be loaded (half-written, say) is
logged and the last good certificate stays in use. The gRPC API (:mod:`.grpc`) serves the same certificate
through :meth:`ReloadingCertificate.grpc_credentials`, and picks up each reload the same way.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from pathlib import Path

__all__ = ["ReloadingCertificate"]

_log = logging.getLogger("glassbox.serving")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.DOTALL)


class ReloadingCertificate:
    """The TLS context of the server, from ``path`` (certificate chain and key), reloaded when it changes."""

    def __init__(self, path, check_seconds: float = 30.0):
        self.path = Path(path)
        self.check_seconds = float(check_seconds)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.reloads = 0
        self._seen = None
        self._pem = b""
        self.load()

    def load(self) -> None:
        """Load the file now; raise ``OSError``/``ssl.SSLError`` if it is missing or not a certificate and key."""
        seen = self._identity()
        pem = self.path.read_bytes()
        self.context.load_cert_chain(self.path)
        self._seen, self._pem = seen, pem

    def reload_if_changed(self) -> bool:
        """Load the file again if it was replaced since the last load; keep the old certificate on failure."""
        if self._identity() == self._seen:
            return False
        try:
            self.load()
        except (OSError, ssl.SSLError) as error:
            _log.warning("TLS certificate reload from %s failed (%s); keeping the last one", self.path,
                         type(error).__name__)
            return False
        self.reloads += 1
        _log.info("TLS certificate reloaded from %s", self.path)
        return True

    async def run(self) -> None:
        """Check for a new certificate every ``check_seconds`` until cancelled (on the server's event loop)."""
        while True:
            await asyncio.sleep(self.check_seconds)
            self.reload_if_changed()

    def ssl_context_factory(self, config, default_factory) -> ssl.SSLContext:
        """For ``uvicorn.Config(ssl_context_factory=...)``: the server listens with this context."""
        return self.context

    def grpc_credentials(self):
        """For a grpcio server's ``add_secure_port``: this certificate; a connection opened after a reload gets
        the new one (grpcio asks :func:`fetch` at each handshake)."""
        import grpc

        served = self.reloads

        def fetch():
            nonlocal served
            if served == self.reloads:
                return None  # unchanged: grpcio keeps the configuration it has
            served = self.reloads
            return grpc.ssl_server_certificate_configuration([_key_and_chain(self._pem)])

        return grpc.dynamic_ssl_server_credentials(
            grpc.ssl_server_certificate_configuration([_key_and_chain(self._pem)]), fetch)

    def _identity(self):
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _key_and_chain(pem: bytes) -> tuple[bytes, bytes]:
    """The private key and the certificate chain (in the file's order) of a PEM file holding both."""
    blocks = [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(pem)]
    keys = [block for label, block in blocks if label.endswith(b"PRIVATE KEY")]
    chain = b"".join(block for label, block in blocks if label == b"CERTIFICATE")
    if len(keys) != 1 or not chain:
        raise ValueError("the TLS file must hold one private key and at least one certificate")
    return keys[0], chain
