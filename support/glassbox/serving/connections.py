"""HTTP connections: a header read timeout for slow clients, which uvicorn lacks (its keep-alive timer stops at
the first byte), and the protocol's ``{"error": ...}`` body for requests too malformed to reach the app.

:func:`http_protocol` returns uvicorn's httptools protocol with one timer more: armed when a connection
opens and after each response, stopped when a request's headers are complete. When it fires, a connection that
has begun a request gets a 408 ``{"error": ...}`` and is closed; an idle one is just closed. Fifty sockets that
trickle header bytes are thus closed after the timeout instead of being held open. The body's own timeout is
the HTTP layer's (:mod:`.app`: a 408 when the body takes too long). A request uvicorn cannot parse gets its
400 as JSON, like every other error.

    uvicorn.Config(app, http=http_protocol(header_timeout=10.0), ...)
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["http_protocol"]


def _closing_answer(status: bytes, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


def http_protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing connections whose request headers take longer than
    ``header_timeout`` seconds, and answering unparseable requests with a JSON 400."""
    seconds = header_timeout
    answer = _closing_answer(b"408 Request Timeout", f"the request headers did not arrive within {seconds:g} s")

    class GlassboxHttpProtocol(HttpToolsProtocol):
        _header_timer = None
        _in_headers = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            self._in_headers = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            if self._in_headers:
                self.transport.write(answer)
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            self._disarm()
            self.transport.write(_closing_answer(b"400 Bad Request", f"{msg} Send an HTTP/1.1 request."))
            self.transport.close()

    return GlassboxHttpProtocol
