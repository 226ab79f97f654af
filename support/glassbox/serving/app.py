"""The HTTP layer: Open Inference Protocol (V2) routes and body limits, each route behind :func:`.endpoint.endpoint`.

=====================================================  ======  =====  ==========================================
route                                                  method  key?   answer
=====================================================  ======  =====  ==========================================
``/v2/health/live``                                    GET     no     ``{"live": true}``
``/v2/health/ready``                                   GET     no     ``{"ready": true}`` (503 when not ready)
``/v2/models/{name}[/versions/{v}]/ready``             GET     no     ``{"name": ..., "ready": true}``
``/v2``                                                GET     yes    server metadata
``/v2/models/{name}[/versions/{v}]``                   GET     yes    model metadata (inputs, outputs, features)
``/v2/models/{name}[/versions/{v}]/infer``             POST    yes    inference (see :mod:`.protocol`)
``/metrics``                                           GET     no     Prometheus text format
``/v2/openapi.json``                                   GET     no     this API's OpenAPI document (:mod:`.openapi`)
=====================================================  ======  =====  ==========================================

Health endpoints stay open so that probes (Docker ``HEALTHCHECK``, Kubernetes) need no secret; they reveal
nothing but liveness. ``/metrics`` is open for the scraper too: it holds counts and timings, never inputs or
keys. The OpenAPI document is open as well: it names no model, version or feature (the model metadata does,
behind the key). Everything else needs ``Authorization: Bearer <key>`` and answers 401 without it.

Every error is a JSON body ``{"error": "..."}`` with a 4xx status (400 bad request, 401 no or wrong key, 404
unknown model or route, 405 wrong method, 408 body too slow, 413 body or batch too large (the body is read
and dropped first, so that every client sees the answer; the connection then closes), 415 not JSON); an
unexpected fault in the server would be a 500 with the same shape and no traceback. Answers never show a
server path. Slow clients and unparseable requests: see :mod:`.connections`.

Bodies are JSON, or Triton's binary tensor extension (``Inference-Header-Content-Length``, answered in kind
when binary outputs are asked for: see :mod:`.protocol`).

The hot path: auth check, body read (capped), :func:`.protocol.parse_infer_request`, the runtime's compiled
trees on the serving thread for small batches (large batches and explanations of many rows go to the batch
workers, :func:`.service.batch_workers`), one ``orjson.dumps`` with numpy support.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from glassbox.serving import openapi, protocol
from glassbox.serving.endpoint import endpoint, error_response, http_error, json_response
from glassbox.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from glassbox.serving.metrics import ServerMetrics
from glassbox.serving.protocol import ProtocolError
from glassbox.serving.service import ModelService

__all__ = ["create_app"]

_log = logging.getLogger("glassbox.serving")
_JSON = "application/json"
_BINARY = "application/octet-stream"
_HEADER_LENGTH = "inference-header-content-length"
# A body over the limit is still read (and dropped) up to this many bytes, so that a client that sends it all
# before reading the answer (urllib) gets the 413, not a connection reset; beyond it the server just closes.
_DRAIN_BYTES = 64 * 1024 * 1024


def create_app(runtime, guard=None, *, model_name: str | None = None, max_body_bytes: int = 4 * 1024 * 1024,
               metrics: ServerMetrics | None = None, exit_with_parent: bool = False,
               extensions: tuple[str, ...] = (), body_timeout: float = 30.0) -> Starlette:
    """The Starlette application serving ``runtime`` (a :class:`.runtime.ModelRuntime`).

    ``guard`` (an :class:`.auth.ApiKeyGuard` whose key is already loaded) protects everything but health and
    metrics; ``None`` switches authentication off (development only: :func:`glassbox.serving.serve` allows it
    on loopback addresses only). ``max_body_bytes`` caps request bodies; a body that takes longer than
    ``body_timeout`` seconds to arrive gets a 408. ``extensions`` are the protocol extensions that ``GET /v2``
    lists (the repository extension is mounted in front of this app).
    """
    metrics = metrics or ServerMetrics()
    service = ModelService(runtime, metrics, model_name=model_name, extensions=extensions)
    name, schema = service.name, service.schema
    if guard is not None and guard.metrics is None:
        guard.metrics = metrics
        if guard.version is not None:
            metrics.key_refresh("ok", guard.version)
    model_metadata = protocol.orjson.dumps(service.model_metadata)
    server_metadata = protocol.orjson.dumps(service.server_metadata)
    api_document = protocol.orjson.dumps(openapi.document(extensions=extensions))

    def route(path: str, label: str, handler, methods: list[str], protected: bool) -> Route:
        return Route(path, endpoint(label, handler, guard=guard, metrics=metrics, protected=protected),
                     methods=methods)

    def check_model(request: Request) -> None:
        service.check_model(request.path_params["name"], request.path_params.get("version"))

    async def live(request):
        return json_response(b'{"live":true}')

    async def ready(request):
        if guard is not None and not guard.ready:
            return json_response(b'{"ready":false,"error":"the API key has not been read yet"}', 503)
        return json_response(b'{"ready":true}')

    async def model_ready(request):
        check_model(request)
        return json_response(protocol.orjson.dumps({"name": name, "ready": True}))

    async def server_meta(request):
        return json_response(server_metadata)

    async def model_meta(request):
        check_model(request)
        return json_response(model_metadata)

    async def infer(request):
        check_model(request)
        headers = request.headers
        header_length = headers.get(_HEADER_LENGTH)
        content_type = headers.get("content-type")
        allowed = (_JSON, _BINARY) if header_length is not None else (_JSON,)
        if content_type is not None and content_type.split(";", 1)[0].strip().lower() not in allowed:
            raise ProtocolError(f"Content-Type must be {' or '.join(allowed)} (got {content_type[:60]!r})",
                                status=415)
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            raise ProtocolError(f"Content-Encoding {encoding[:30]!r} is not supported; send plain JSON", status=415)
        if header_length is not None and not header_length.isdigit():
            raise ProtocolError("Inference-Header-Content-Length must be the JSON header's length in bytes")
        body = await _read_body(request, max_body_bytes, body_timeout)
        parsed = protocol.parse_infer_request(body, schema, None if header_length is None else int(header_length))
        service.check_names(parsed)
        outputs = await service.infer(parsed)
        body, json_length = protocol.infer_response(name, service.version, parsed.id, outputs,
                                                    parsed.binary_outputs)
        if json_length is None:
            return json_response(body)
        return Response(body, media_type=_BINARY, headers={_HEADER_LENGTH: str(json_length)})

    async def api(request):
        return json_response(api_document)

    async def metrics_endpoint(request):
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    routes = [
        route("/v2/health/live", "live", live, ["GET"], False),
        route("/v2/health/ready", "ready", ready, ["GET"], False),
        route("/v2", "server_metadata", server_meta, ["GET"], True),
        route("/v2/models/{name}", "model_metadata", model_meta, ["GET"], True),
        route("/v2/models/{name}/versions/{version}", "model_metadata", model_meta, ["GET"], True),
        route("/v2/models/{name}/ready", "model_ready", model_ready, ["GET"], False),
        route("/v2/models/{name}/versions/{version}/ready", "model_ready", model_ready, ["GET"], False),
        route("/v2/models/{name}/infer", "infer", infer, ["POST"], True),
        route("/v2/models/{name}/versions/{version}/infer", "infer", infer, ["POST"], True),
        route("/metrics", "metrics", metrics_endpoint, ["GET"], False),
        route(openapi.PATH, "openapi", api, ["GET"], False),
    ]

    unrouted = http_error(metrics, f"no such route; see GET /v2/models/{name}")

    async def server_error(request, error: Exception):
        _log.exception("unexpected error")
        return error_response("internal server error", 500)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        runtime.limit_threads()  # in the serving thread: OpenMP's thread count is per thread
        if guard is not None:
            guard.start()
        watcher = asyncio.get_running_loop().create_task(_watch_parent()) if exit_with_parent else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            if guard is not None:
                await guard.stop()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: unrouted, Exception: server_error})
    app.state.metrics = metrics
    app.state.runtime = runtime
    app.state.service = service
    app.state.guard = guard
    return app


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, at most ``limit`` bytes, within ``timeout`` seconds (else a 408).

    A body over the limit is read to its end and dropped (up to ``_DRAIN_BYTES``) before the 413, so that
    every client, even one that reads nothing before it has sent everything, sees the answer.
    """
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise ProtocolError("invalid Content-Length header")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            if declared is not None and int(declared) > limit:
                if int(declared) <= _DRAIN_BYTES:
                    async for _ in request.stream():
                        pass
                raise ProtocolError(f"the body has {int(declared)} bytes; this server takes at most {limit}",
                                    status=413)
            async for chunk in request.stream():  # no Content-Length (chunked): count as it comes
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
                elif size > _DRAIN_BYTES:
                    break
    except TimeoutError:
        raise ProtocolError(f"the body did not arrive within {timeout:g} s; send it in one go",
                            status=408) from None
    if size > limit:
        raise ProtocolError(f"the body is larger than this server's limit of {limit} bytes", status=413)
    if not size:
        raise ProtocolError("the body is empty; send a JSON inference request")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _watch_parent() -> None:
    """Stop the server (as SIGTERM would) when the process that started it has gone, e.g. a notebook kernel."""
    parent = os.getppid()
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != parent:
            _log.warning("the parent process %s has gone: stopping", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return
