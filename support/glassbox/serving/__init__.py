"""The course's model server: the Open Inference Protocol (KServe V2) over REST, with explanations.

Start it with ``glassbox serve``, ``python -m glassbox.serving``, or from Python with :func:`serve`; a notebook
or a test can run it as a child process with :class:`LocalServer`. The package keeps its parts apart:
:mod:`.protocol` (the V2 request and response schema and its checks), :mod:`.runtime` (the model, loaded and
prepared once), :mod:`.app` (the HTTP layer), :mod:`.auth` (the API key that Vault Agent renders), :mod:`.metrics`
(Prometheus); :mod:`.service` (what both transports serve); :mod:`.grpc` (the protocol's gRPC API, on
its own port when ``GLASSBOX_GRPC_PORT`` is set); :mod:`.repository` (the protocol's model-repository extension: a new version of the model
loaded without a restart); :mod:`.connections` (slow clients' timeouts, below the app).

Configuration (environment variables; keyword arguments of :func:`serve` override them)
----------------------------------------------------------------------------------------
=========================================  ==================================================================
``GLASSBOX_MODEL_DIR``                     the model artifact (default ``$GLASSBOX_HOME/models/credit``)
``GLASSBOX_MODEL_NAME``                    the name in the URLs (default: the artifact's name, ``credit``)
``GLASSBOX_MODEL_SHA256``                  optional: the manifest's expected sha256; any other artifact is
                                           refused
``GLASSBOX_BUILD_MODEL``                   ``if-missing``: build the course model when the directory holds
                                           none (default: refuse to start without an artifact)
``GLASSBOX_HOST``, ``GLASSBOX_PORT``       where to listen (default ``127.0.0.1``, ``8080``; a container sets
                                           ``0.0.0.0``)
``GLASSBOX_GRPC_PORT``                     also serve the protocol's gRPC API on this port (:mod:`.grpc`; same
                                           host, key, TLS and model); unset (the default): REST only
``GLASSBOX_API_KEY_FILE``                  the file holding the API key, kept fresh by Vault Agent
                                           (:mod:`glassbox.vault.agent`: a local process, the compose sidecar,
                                           or the Kubernetes injector)
``GLASSBOX_KEY_REFRESH_SECONDS``           how often the key (and the TLS certificate) is re-read (default 30)
``GLASSBOX_TLS_FILE``                      serve HTTPS with the certificate chain and key in this PEM file, kept
                                           fresh by Vault Agent (:mod:`.tls`: reloaded when it changes, no
                                           restart); unset: plain HTTP
``GLASSBOX_INSECURE_DISABLE_AUTH``         ``1``: no API key at all. Development only, and refused unless the
                                           host is a loopback address
``GLASSBOX_MAX_BODY_BYTES``                request body limit (default 4194304, 4 MiB)
``GLASSBOX_MAX_BATCH_ROWS``                rows per inference request (default 10000)
``GLASSBOX_HEADER_TIMEOUT_SECONDS``        a request's headers must arrive within this (default 10): slow
                                           clients get a 408 and are closed (:mod:`.connections`)
``GLASSBOX_BODY_TIMEOUT_SECONDS``          a request's body must arrive within this (default 30), else 408
``GLASSBOX_LOG_LEVEL``                     ``info`` (default), ``warning``, ``debug``...
``GLASSBOX_ACCESS_LOG``                    ``1``: log every request (off by default: it costs latency)
``GLASSBOX_EXIT_WITH_PARENT``              ``1``: stop when the parent process exits (set by LocalServer)
=========================================  ==================================================================

Exactly one of the key file and the explicit insecure switch must be set; otherwise the server refuses to
start. The server never talks to Vault: the agent does, so the server needs neither a token nor a secret ID.

Authentication: everything but ``/v2/health/*``, ``/v2/models/{name}/ready``, ``/metrics`` and the OpenAPI
document (``/v2/openapi.json``, :mod:`.openapi`) needs ``Authorization: Bearer <key>`` (over gRPC: the same in
the call's metadata); see :mod:`.app` for the routes and :mod:`.protocol` for the accepted inputs
(one ``[n, n_features]`` tensor, or one tensor per feature) and outputs (``predict``, ``predict_proba``,
``explanation``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from glassbox.errors import GlassboxError
from glassbox.serving.local import LocalServer

__all__ = ["ServerConfig", "ConfigError", "serve", "build_app", "LocalServer"]

_log = logging.getLogger("glassbox.serving")


class ConfigError(GlassboxError, RuntimeError):
    """The server's configuration is incomplete or unsafe (the message says which variable to set)."""


@dataclass(frozen=True)
class ServerConfig:
    """The server's settings; :meth:`from_env` reads them from the environment (see the module docstring)."""

    model_dir: Path | None = None
    model_name: str | None = None
    model_sha256: str | None = None
    build_model: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = None
    api_key_file: Path | None = None
    tls_file: Path | None = None
    key_refresh_seconds: float = 30.0
    insecure_disable_auth: bool = False
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_rows: int = 10_000
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    log_level: str = "info"
    access_log: bool = False
    exit_with_parent: bool = False

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "ServerConfig":
        env = os.environ if environ is None else environ

        def text(name):
            value = env.get(name, "").strip()
            return value or None

        def number(name, kind, default):
            value = text(name)
            if value is None:
                return default
            try:
                parsed = kind(value)
            except ValueError:
                raise ConfigError(f"{name}={value!r} is not a number") from None
            if parsed <= 0:
                raise ConfigError(f"{name} must be positive")
            return parsed

        def flag(name):
            return (text(name) or "0").lower() in {"1", "true", "yes", "on"}

        build = (text("GLASSBOX_BUILD_MODEL") or "no").lower()
        if build not in {"no", "if-missing"}:
            raise ConfigError("GLASSBOX_BUILD_MODEL must be 'if-missing' or 'no'")
        config = cls(
            model_dir=Path(text("GLASSBOX_MODEL_DIR")) if text("GLASSBOX_MODEL_DIR") else None,
            model_name=text("GLASSBOX_MODEL_NAME"),
            model_sha256=text("GLASSBOX_MODEL_SHA256"),
            build_model=build == "if-missing",
            host=text("GLASSBOX_HOST") or "127.0.0.1",
            port=number("GLASSBOX_PORT", int, 8080),
            grpc_port=number("GLASSBOX_GRPC_PORT", int, None),
            api_key_file=_path(text("GLASSBOX_API_KEY_FILE")),
            tls_file=_path(text("GLASSBOX_TLS_FILE")),
            key_refresh_seconds=number("GLASSBOX_KEY_REFRESH_SECONDS", float, 30.0),
            insecure_disable_auth=flag("GLASSBOX_INSECURE_DISABLE_AUTH"),
            max_body_bytes=number("GLASSBOX_MAX_BODY_BYTES", int, 4 * 1024 * 1024),
            max_batch_rows=number("GLASSBOX_MAX_BATCH_ROWS", int, 10_000),
            header_timeout_seconds=number("GLASSBOX_HEADER_TIMEOUT_SECONDS", float, 10.0),
            body_timeout_seconds=number("GLASSBOX_BODY_TIMEOUT_SECONDS", float, 30.0),
            log_level=(text("GLASSBOX_LOG_LEVEL") or "info").lower(),
            access_log=flag("GLASSBOX_ACCESS_LOG"),
            exit_with_parent=flag("GLASSBOX_EXIT_WITH_PARENT"),
        )
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        paths = {"model_dir", "api_key_file", "tls_file"}
        return replace(config, **{k: Path(v) if k in paths else v for k, v in overrides.items() if v is not None})


def _path(value):
    return Path(value) if value else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key_guard(config: ServerConfig):
    from glassbox.serving.auth import ApiKeyGuard, KeyFileSource

    if config.api_key_file is not None and config.insecure_disable_auth:
        raise ConfigError("configure one API key source, not GLASSBOX_API_KEY_FILE and "
                          "GLASSBOX_INSECURE_DISABLE_AUTH")
    if config.insecure_disable_auth:
        if not _is_loopback(config.host):
            raise ConfigError(f"GLASSBOX_INSECURE_DISABLE_AUTH is refused on {config.host}: it is for loopback "
                              "development only")
        _log.warning("AUTHENTICATION IS DISABLED (GLASSBOX_INSECURE_DISABLE_AUTH): development only")
        return None
    if config.api_key_file is None:
        raise ConfigError("no API key source: set GLASSBOX_API_KEY_FILE to the file Vault Agent renders the key "
                          "into (see glassbox.vault.agent), or, for loopback development only, "
                          "GLASSBOX_INSECURE_DISABLE_AUTH=1")
    guard = ApiKeyGuard(KeyFileSource(config.api_key_file), refresh_seconds=config.key_refresh_seconds)
    guard.load()
    return guard


def build_app(config: ServerConfig | None = None):
    """Load the model, read the API key and return the ASGI app (what :func:`serve` runs)."""
    from glassbox import artifacts
    from glassbox.serving.app import create_app
    from glassbox.serving.runtime import ModelRuntime

    config = config or ServerConfig.from_env()
    model_dir = config.model_dir or artifacts.default_model_dir()
    if config.build_model and not (model_dir / artifacts.MANIFEST_FILE).exists():
        _log.info("building the course model in %s", model_dir)
        artifacts.build_course_model(model_dir)
    if not (model_dir / artifacts.MANIFEST_FILE).exists():
        raise ConfigError(f"no model artifact in {model_dir}: build one with `python -m glassbox.artifacts build "
                          f"{model_dir}` or set GLASSBOX_BUILD_MODEL=if-missing")
    artifact = artifacts.load(model_dir, manifest_sha256=config.model_sha256)
    runtime = ModelRuntime(artifact, max_rows=config.max_batch_rows)
    guard = _key_guard(config)
    _log.info("serving %s v%s from %s (manifest sha256 %s, compiled trees: %s, auth: %s)", artifact.name,
              artifact.version, model_dir, artifact.manifest_sha256[:12], runtime.compiled,
              "off" if guard is None else guard.source.describe())
    from prometheus_client import disable_created_metrics

    from glassbox.serving.repository import with_repository

    disable_created_metrics()  # no *_created series: they only clutter a scrape
    app = create_app(runtime, guard, model_name=config.model_name, max_body_bytes=config.max_body_bytes,
                     exit_with_parent=config.exit_with_parent, extensions=("model_repository",),
                     body_timeout=config.body_timeout_seconds)
    return with_repository(app, config, model_dir)  # POST /v2/repository/models/{name}/load: hot reload


async def _start_grpc(app, config: ServerConfig, certificate):
    """The gRPC API on ``config.grpc_port``, beside REST on the same event loop: same guard, metrics and model
    (``app.state`` follows the repository extension's swaps), over TLS when REST serves TLS."""
    from glassbox.serving.grpc import create_server

    server = create_server(lambda: app.state.service, app.state.guard, app.state.metrics,
                           max_message_bytes=config.max_body_bytes)
    address = f"{config.host}:{config.grpc_port}"
    if config.grpc_port == config.port:
        raise ConfigError(f"GLASSBOX_GRPC_PORT and GLASSBOX_PORT are both {config.port}: gRPC needs a port of its own")
    try:
        if certificate is None:
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, certificate.grpc_credentials())
    except RuntimeError:  # grpcio's "Failed to bind"
        raise ConfigError(f"cannot listen for gRPC on {address} (GLASSBOX_GRPC_PORT): the port is in use or the "
                          "address is not this machine's") from None
    await server.start()
    _log.info("gRPC API on %s (%s)", address, "TLS" if certificate else "plain")
    return server


def serve(config: ServerConfig | None = None, **settings) -> None:
    """Run the model server until stopped (SIGINT/SIGTERM); settings override the environment.

    >>> serve(port=8081, model_dir="/tmp/model")       # doctest: +SKIP

    Raises :class:`ConfigError` or :class:`glassbox.artifacts.ArtifactError` (before listening) when the
    configuration is incomplete, the artifact is refused, or the API key cannot be read.
    """
    import asyncio

    import uvicorn

    from glassbox.serving.connections import http_protocol
    from glassbox.serving.tls import ReloadingCertificate

    config = config or ServerConfig.from_env(**settings)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(config)
    certificate = None
    if config.tls_file is not None:
        try:
            certificate = ReloadingCertificate(config.tls_file, check_seconds=config.key_refresh_seconds)
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            raise ConfigError(f"cannot load the TLS certificate and key from GLASSBOX_TLS_FILE={config.tls_file}: "
                              f"{type(error).__name__}") from None
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level=config.log_level, access_log=config.access_log,
        timeout_keep_alive=30, server_header=False, http=http_protocol(config.header_timeout_seconds),
        ssl_context_factory=certificate.ssl_context_factory if certificate else None))

    async def run() -> None:
        reloading = asyncio.get_running_loop().create_task(certificate.run()) if certificate else None
        grpc_server = await _start_grpc(app, config, certificate) if config.grpc_port else None
        try:
            await server.serve()
        finally:
            if reloading is not None:
                reloading.cancel()
            if grpc_server is not None:
                await grpc_server.stop(grace=1.0)

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(run())
