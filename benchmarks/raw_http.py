"""The benchmarks' fast path: a hand-written asyncio HTTP/1.1 sender for :func:`glassbox.monitoring.run_load`.

    monitoring.run_load(url, bodies, concurrency=8, duration=6, api_key=key, sender=RawSender)

aiohttp, which the course's load generator uses, spends more CPU per request than this sender
(``benchmarks/load_client.py`` measures it: 0.7 to 1.2 times this sender's requests/s on 2 cores, run to run),
and the bench compares servers at their limit, where what the client spends on two cores is taken from the
server. This sender writes each request's bytes itself, one keep-alive connection per worker, and reads only
the status line, the headers it needs and the body's length. It is for loopback benchmarks only: no redirects,
no proxies, no decompression, no HTTP/2.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit


class RawSender:
    """One keep-alive connection per worker slot, opened on first use and again after a failure."""

    failures = (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError)

    def __init__(self, url: str, method: str, concurrency: int, timeout: float, tls):
        parts = urlsplit(url)
        self.host, self.tls, self.timeout = parts.hostname, tls, timeout
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n" \
                     "Content-Type: application/json\r\nConnection: keep-alive\r\n"
        self._prefixes: dict[str, bytes] = {}
        self._connections: dict[int, _Connection] = {}

    def _request(self, body: bytes, key: str | None) -> bytes:
        prefix = self._prefixes.get(key or "")
        if prefix is None:
            prefix = (self._head + (f"Authorization: Bearer {key}\r\n" if key else "")).encode("latin-1")
            self._prefixes = {key or "": prefix}  # only the current key's prefix is kept
        return prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body

    async def send(self, slot: int, body: bytes, key: str | None) -> int:
        connection = self._connections.get(slot)
        try:
            if connection is None:
                connection = self._connections[slot] = await _Connection.open(self.host, self.port, self.timeout,
                                                                              self.tls)
            status, close = await asyncio.wait_for(connection.exchange(self._request(body, key)), self.timeout)
        except self.failures:
            if connection is not None:
                connection.close()
            self._connections.pop(slot, None)
            raise
        if close:  # the server ends the connection after this answer: the next request opens a new one
            connection.close()
            self._connections.pop(slot, None)
        return status

    async def aclose(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


class _Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read its status, skip its body (by length or chunks)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, timeout: float, tls=None) -> "_Connection":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None), timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send ``request``; return the answer's status and whether the server closes the connection after it."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return status, close

    def close(self) -> None:
        self.writer.close()
