"""The Open Inference Protocol's model-repository extension: load a new model without stopping the server.

=====================================================  ======  =====  ==========================================
route                                                  method  key?   answer
=====================================================  ======  =====  ==========================================
``/v2/repository/index``                               POST    yes    ``[{"name", "version", "state", "reason"}]``
``/v2/repository/models/{name}/load``                  POST    yes    200 once the new model serves
``/v2/repository/models/{name}/unload``                POST    yes    400: the server's only model stays loaded
=====================================================  ======  =====  ==========================================

``load`` re-reads the artifact from disk, verifies it (sha256 of every file; a pinned manifest digest, if the
server has one, must be replaced by the new artifact's in the request's ``parameters.manifest_sha256``),
prepares it fully (compiled trees checked against scikit-learn, the explainer checked against the model) on a
worker thread *beside* the model being served, and only then swaps it in with one reference assignment. A
request already in flight finishes on the model it started with; every request after the swap gets the new
one; no request is ever refused or dropped because of a load. A load that fails (a tampered artifact, a wrong
pin, another model's name) answers 400 with the reason and leaves the old model serving.

How: :class:`ModelRepository` is an ASGI application in front of the server's own (:func:`.app.create_app`):
it answers ``/v2/repository/...`` itself and hands everything else to the *current* app, which closes over one
runtime. A load builds a whole new app around the new runtime (sharing the API-key guard and the metrics) and
assigns it. Lifespan events (start-up, shutdown) go to the first app, which owns the guard's refresh task.

    app = with_repository(create_app(runtime, guard, ...), config, model_dir)    # in build_app
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Callable

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from glassbox.errors import GlassboxError
from glassbox.serving import protocol
from glassbox.serving.endpoint import endpoint, http_error, json_response

__all__ = ["ModelRepository", "with_repository", "LoadError"]

_log = logging.getLogger("glassbox.serving")
_MAX_BODY = 64 * 1024


class LoadError(GlassboxError):
    """A model that cannot be loaded; the message says why (the old model keeps serving)."""

    status = 400


class ModelRepository:
    """An ASGI app: the repository extension's routes, and every other request to the current server app.

    ``build(parameters)`` returns a new, ready server app for the artifact on disk (it runs on a worker
    thread and raises :class:`LoadError` or :class:`glassbox.artifacts.ArtifactError` to refuse).
    """

    def __init__(self, app, build: Callable[[dict], object], *, name: str, guard=None, metrics=None,
                 model_dir: Path | None = None):
        self.app = app                    # the current server app: the one reference a load reassigns
        self._first = app                 # owns the lifespan (the key refresh task)
        self._build = build
        self.name = name
        self.guard = guard
        self.metrics = metrics
        self.loads = 0
        self.reason = ""
        self._model_dir = model_dir       # never shown: messages say "the model directory" instead
        self._lock = asyncio.Lock()
        unrouted = http_error(metrics, "no such repository route; see POST /v2/repository/index")
        self._router = Starlette(exception_handlers={HTTPException: unrouted}, routes=[
            Route(path, endpoint(label, handler, guard=guard, metrics=metrics), methods=["POST"])
            for path, label, handler in (("/v2/repository/index", "repository_index", self._index),
                                         ("/v2/repository/models/{name}/load", "repository_load", self._load),
                                         ("/v2/repository/models/{name}/unload", "repository_unload", self._unload))
        ])

    # -- ASGI ---------------------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._first(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith("/v2/repository/"):
            await self._router(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def __getattr__(self, attribute):
        # ``state``, ``routes``... of the current server app, so that the wrapper is transparent
        if attribute.startswith("_") or attribute == "app":
            raise AttributeError(attribute)
        return getattr(self.app, attribute)

    @property
    def runtime(self):
        """The runtime being served now."""
        return self.app.state.runtime

    # -- the routes ---------------------------------------------------------------------------------------

    async def _index(self, request: Request) -> Response:
        await _parameters(request)
        runtime = self.runtime
        entry = {"name": self.name, "version": runtime.version, "state": "READY", "reason": self.reason}
        return json_response(orjson.dumps([entry]))

    async def _load(self, request: Request) -> Response:
        self._check_name(request)
        parameters = await _parameters(request)
        unknown = sorted(set(parameters) - {"manifest_sha256"})
        if unknown:
            raise protocol.ProtocolError(
                f"unsupported load parameter(s) {', '.join(unknown)}: this server loads the artifact in its "
                "model directory; the only parameter is manifest_sha256 (the new artifact's pinned digest)")
        async with self._lock:  # one load at a time; requests keep flowing to the current app
            old = self.runtime
            try:
                new_app = await run_in_threadpool(self._build, parameters)
            except GlassboxError as error:  # a LoadError or an ArtifactError: refused, the old model serves on
                _log.warning("model load refused, still serving v%s: %s", old.version, error)
                message = self._without_paths(str(error))
                self.reason = f"the last load failed: {message}"
                raise protocol.ProtocolError(f"{message}; still serving version {old.version}") from None
            self.app = new_app            # the swap: one reference assignment
            self.loads += 1
            self.reason = ""
            new = self.runtime
        _log.info("model loaded: %s v%s (manifest sha256 %s), replacing v%s", new.name, new.version,
                  new.artifact.manifest_sha256[:12], old.version)
        return json_response(orjson.dumps({"name": self.name, "version": new.version,
                                           "previous_version": old.version,
                                           "manifest_sha256": new.artifact.manifest_sha256}))

    async def _unload(self, request: Request) -> Response:
        self._check_name(request)
        raise protocol.ProtocolError(
            f"this server serves one model, {self.name!r}, and keeps it loaded: unloading it would leave "
            "nothing to serve. Load a new version with POST /v2/repository/models/{name}/load instead")

    def _without_paths(self, message: str) -> str:
        """``message`` with the server's model directory named, not shown (callers learn no server paths)."""
        if self._model_dir is None:
            return message
        for form in sorted({str(self._model_dir.resolve()), str(self._model_dir)}, key=len, reverse=True):
            message = message.replace(form, "the model directory")
        return message

    def _check_name(self, request: Request) -> None:
        if request.path_params["name"] != self.name:
            raise protocol.ProtocolError(f"unknown model; this server serves {self.name!r}", status=404)


def with_repository(app, config, model_dir) -> ModelRepository:
    """Wrap the server ``app`` (from :func:`.app.create_app`) with the repository extension.

    A load re-reads ``model_dir`` with the server's ``config`` (a :class:`glassbox.serving.ServerConfig`):
    same name, limits, key guard and metrics. The manifest pin is the request's
    ``parameters.manifest_sha256`` if given, else the server's ``GLASSBOX_MODEL_SHA256`` (if any).
    """
    from glassbox import artifacts
    from glassbox.serving.app import create_app
    from glassbox.serving.runtime import ModelRuntime

    model_dir = Path(model_dir)
    current = app.state.runtime
    name = config.model_name or current.name
    guard, metrics = app.state.guard, app.state.metrics
    extensions = tuple(app.state.service.server_metadata["extensions"])  # a new app lists (and documents) them too

    def build(parameters: dict):
        pin = parameters.get("manifest_sha256", config.model_sha256)
        if "manifest_sha256" in parameters and not isinstance(pin, str):  # a null pin must not lift the server's
            raise LoadError("parameters.manifest_sha256 must be a string (the new manifest's sha256)")
        artifact = artifacts.load(model_dir, manifest_sha256=pin)
        if config.model_name is None and artifact.name != name:
            raise LoadError(f"the artifact in {model_dir} is the model {artifact.name!r}, not {name!r}")
        if list(artifact.feature_names) != list(current.feature_names):
            raise LoadError("the new model expects other features than the one served; callers would break "
                            f"(served: {len(current.feature_names)} features, new: {len(artifact.feature_names)})")
        runtime = ModelRuntime(artifact, max_rows=config.max_batch_rows)
        return create_app(runtime, guard, model_name=config.model_name, max_body_bytes=config.max_body_bytes,
                          metrics=metrics, body_timeout=config.body_timeout_seconds, extensions=extensions)

    return ModelRepository(app, build, name=name, guard=guard, metrics=metrics, model_dir=model_dir)


# -- private helpers -----------------------------------------------------------------------------------------

async def _parameters(request: Request) -> dict:
    """The optional JSON body ``{"parameters": {...}}`` of a repository request (empty body allowed)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise protocol.ProtocolError(f"the body is larger than {_MAX_BODY} bytes", status=413)
    if not body.strip():
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise protocol.ProtocolError("the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise protocol.ProtocolError("the body must be a JSON object")
    parameters = parsed.get("parameters", {})
    if not isinstance(parameters, dict):
        raise protocol.ProtocolError("`parameters` must be a JSON object")
    return parameters
