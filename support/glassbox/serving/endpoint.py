"""The HTTP layer's one endpoint wrapper: the API-key check, error shaping and metrics for every route.

:func:`endpoint` wraps the protocol's routes (:mod:`.app`) and the repository extension's (:mod:`.repository`)
alike, and :func:`http_error` answers what no route takes (404, 405). Every error is the protocol's JSON body
``{"error": "..."}``: a :class:`~glassbox.errors.GlassboxError` with its 4xx status and one-line message (a 408
or 413 leaves the body unread, so the connection closes), anything else a logged 500 that shows no
traceback. The gRPC layer (:mod:`.grpc`) maps the same errors and counts the same metrics in its own
wrapper; both take the refusal's wording from :mod:`.service`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from glassbox.errors import GlassboxError
from glassbox.serving.protocol import error_body
from glassbox.serving.service import UNAUTHORIZED

__all__ = ["endpoint", "error_response", "http_error", "json_response"]

_log = logging.getLogger("glassbox.serving")
_JSON = "application/json"
_CHALLENGE = {"www-authenticate": 'Bearer realm="glassbox"'}
_UNREAD_BODY = (408, 413)

Handler = Callable[[Request], Awaitable[Response]]


def json_response(body: bytes, status: int = 200, headers: dict | None = None) -> Response:
    """An ``application/json`` answer holding ``body`` (already serialized)."""
    return Response(body, status_code=status, media_type=_JSON, headers=headers)


def error_response(message: str, status: int, headers: dict | None = None) -> Response:
    """The protocol's error answer: ``{"error": message}`` with ``status``."""
    return json_response(error_body(message), status, headers)


def endpoint(label: str, handler: Handler, *, guard=None, metrics=None, protected: bool = True) -> Handler:
    """``handler`` behind the key check (if ``protected`` and a ``guard`` is set), with errors answered as
    JSON and every answer counted in ``metrics`` under ``label``."""

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        try:
            if protected and guard is not None and not await guard.authorize(request.headers.get("authorization")):
                response = error_response(UNAUTHORIZED, 401, _CHALLENGE)
            else:
                response = await handler(request)
        except GlassboxError as error:
            if error.status >= 500:
                _log.error("error on %s: %s", label, error)
                response = error_response("internal server error", 500)
            else:
                response = error_response(str(error), error.status,
                                          {"connection": "close"} if error.status in _UNREAD_BODY else None)
        except ClientDisconnect:
            response = error_response("the client went away", 400)
        except Exception:  # a fault of ours: logged here, never a traceback to the caller
            _log.exception("unexpected error on %s", label)
            response = error_response("internal server error", 500)
        if metrics is not None:
            metrics.request(label, response.status_code, time.perf_counter() - started)
        return response

    return run


def http_error(metrics, not_found: str):
    """Starlette's exception handler for routing errors (404, 405), answered as the protocol's ``{"error"}``."""

    async def handle(request: Request, error: HTTPException) -> Response:
        status = error.status_code
        message = {404: not_found, 405: f"method {request.method} is not allowed on {request.url.path[:80]}"}
        response = error_response(message.get(status, str(error.detail)), status, getattr(error, "headers", None))
        if metrics is not None:
            metrics.request("unrouted", status, 0.0)
        return response

    return handle
