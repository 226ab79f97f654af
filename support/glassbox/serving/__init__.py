"""The course's model server: the Open Inference Protocol (KServe V2) over REST, with explanations.

Start it with ``glassbox serve``, ``python -m glassbox.serving``, or from Python with :func:`serve`; a notebook
or a test can run it as a child process with :class:`LocalServer`. The package keeps its parts apart:
:mod:`.protocol` (the V2 request and response schema and its checks), :mod:`.runtime` (the model, loaded and
prepared once), :mod:`.app` (the HTTP layer), :mod:`.auth` (the Vault-fed API key), :mod:`.metrics`
(Prometheus); :mod:`.repository` (the protocol's model-repository extension: a new version of the model
loaded without a restart).

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
``VAULT_ADDR``                             the Vault server to read the API key from
``GLASSBOX_VAULT_ROLE_ID``                 the service's AppRole role ID (or ``..._FILE``: a file holding it)
``GLASSBOX_VAULT_WRAPPED_SECRET_ID``       a response-wrapped, single-use secret ID (the wrapping token)...
``GLASSBOX_VAULT_WRAPPED_SECRET_ID_FILE``  ...or a file holding one; a new token written there later is used
                                           to log in again (secret-ID rotation, or after the token's max TTL)
``GLASSBOX_API_KEY_FILE``                  instead of Vault: a file holding the key, kept fresh by someone
                                           else (the Vault Agent sidecar on Kubernetes)
``GLASSBOX_KEY_REFRESH_SECONDS``           how often the key is re-read (default 30)
``GLASSBOX_INSECURE_DISABLE_AUTH``         ``1``: no API key at all. Development only, and refused unless the
                                           host is a loopback address
``GLASSBOX_MAX_BODY_BYTES``                request body limit (default 4194304, 4 MiB)
``GLASSBOX_MAX_BATCH_ROWS``                rows per inference request (default 10000)
``GLASSBOX_LOG_LEVEL``                     ``info`` (default), ``warning``, ``debug``...
``GLASSBOX_ACCESS_LOG``                    ``1``: log every request (off by default: it costs latency)
``GLASSBOX_EXIT_WITH_PARENT``              ``1``: stop when the parent process exits (set by LocalServer)
=========================================  ==================================================================

Exactly one key source must be configured: Vault (``GLASSBOX_VAULT_ROLE_ID`` with ``VAULT_ADDR`` and a
wrapped secret ID), a key file, or the explicit insecure switch; otherwise the server refuses to start. The
wrapped secret ID must be unwrapped within its wrap TTL (60 s in the course's bootstrap).

Authentication: everything but ``/v2/health/*``, ``/v2/models/{name}/ready`` and ``/metrics`` needs
``Authorization: Bearer <key>``; see :mod:`.app` for the routes and :mod:`.protocol` for the accepted inputs
(one ``[n, n_features]`` tensor, or one tensor per feature) and outputs (``predict``, ``predict_proba``,
``explanation``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from glassbox.serving.local import LocalServer

__all__ = ["ServerConfig", "ConfigError", "serve", "build_app", "LocalServer"]

_log = logging.getLogger("glassbox.serving")


class ConfigError(RuntimeError):
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
    vault_addr: str | None = None
    vault_role_id: str | None = None
    vault_wrapped_secret_id: str | None = field(default=None, repr=False)
    vault_wrapped_secret_id_file: Path | None = None
    api_key_file: Path | None = None
    key_refresh_seconds: float = 30.0
    insecure_disable_auth: bool = False
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_rows: int = 10_000
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

        role_id = text("GLASSBOX_VAULT_ROLE_ID")
        if role_id is None and text("GLASSBOX_VAULT_ROLE_ID_FILE"):
            try:
                role_id = Path(text("GLASSBOX_VAULT_ROLE_ID_FILE")).read_text(encoding="utf-8").strip() or None
            except OSError as error:
                raise ConfigError(f"cannot read GLASSBOX_VAULT_ROLE_ID_FILE: {type(error).__name__}") from None
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
            vault_addr=text("VAULT_ADDR"),
            vault_role_id=role_id,
            vault_wrapped_secret_id=text("GLASSBOX_VAULT_WRAPPED_SECRET_ID"),
            vault_wrapped_secret_id_file=_path(text("GLASSBOX_VAULT_WRAPPED_SECRET_ID_FILE")),
            api_key_file=_path(text("GLASSBOX_API_KEY_FILE")),
            key_refresh_seconds=number("GLASSBOX_KEY_REFRESH_SECONDS", float, 30.0),
            insecure_disable_auth=flag("GLASSBOX_INSECURE_DISABLE_AUTH"),
            max_body_bytes=number("GLASSBOX_MAX_BODY_BYTES", int, 4 * 1024 * 1024),
            max_batch_rows=number("GLASSBOX_MAX_BATCH_ROWS", int, 10_000),
            log_level=(text("GLASSBOX_LOG_LEVEL") or "info").lower(),
            access_log=flag("GLASSBOX_ACCESS_LOG"),
            exit_with_parent=flag("GLASSBOX_EXIT_WITH_PARENT"),
        )
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        paths = {"model_dir", "vault_wrapped_secret_id_file", "api_key_file"}
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
    from glassbox.serving.auth import ApiKeyGuard, KeyFileSource, VaultKeySource

    vault = bool(config.vault_role_id or config.vault_wrapped_secret_id or config.vault_wrapped_secret_id_file)
    chosen = [name for name, on in (("Vault (GLASSBOX_VAULT_*)", vault),
                                    ("GLASSBOX_API_KEY_FILE", config.api_key_file is not None),
                                    ("GLASSBOX_INSECURE_DISABLE_AUTH", config.insecure_disable_auth)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"configure one API key source, not {' and '.join(chosen)}")
    if config.insecure_disable_auth:
        if not _is_loopback(config.host):
            raise ConfigError(f"GLASSBOX_INSECURE_DISABLE_AUTH is refused on {config.host}: it is for loopback "
                              "development only")
        _log.warning("AUTHENTICATION IS DISABLED (GLASSBOX_INSECURE_DISABLE_AUTH): development only")
        return None
    if config.api_key_file is not None:
        source = KeyFileSource(config.api_key_file)
    elif vault:
        missing = [name for name, value in (("VAULT_ADDR", config.vault_addr),
                                            ("GLASSBOX_VAULT_ROLE_ID", config.vault_role_id)) if not value]
        if not (config.vault_wrapped_secret_id or config.vault_wrapped_secret_id_file):
            missing.append("GLASSBOX_VAULT_WRAPPED_SECRET_ID (or ..._FILE)")
        if missing:
            raise ConfigError(f"Vault authentication needs {', '.join(missing)}")
        source = VaultKeySource(config.vault_addr, config.vault_role_id, config.vault_wrapped_secret_id,
                                config.vault_wrapped_secret_id_file)
    else:
        raise ConfigError(
            "no API key source: set GLASSBOX_VAULT_ROLE_ID, VAULT_ADDR and GLASSBOX_VAULT_WRAPPED_SECRET_ID "
            "(or ..._FILE), or GLASSBOX_API_KEY_FILE (or, for loopback development only, "
            "GLASSBOX_INSECURE_DISABLE_AUTH=1)"
        )
    guard = ApiKeyGuard(source, refresh_seconds=config.key_refresh_seconds)
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
                     exit_with_parent=config.exit_with_parent, extensions=("model_repository",))
    return with_repository(app, config, model_dir)  # POST /v2/repository/models/{name}/load: hot reload


def serve(config: ServerConfig | None = None, **settings) -> None:
    """Run the model server until stopped (SIGINT/SIGTERM); settings override the environment.

    >>> serve(port=8081, model_dir="/tmp/model")       # doctest: +SKIP

    Raises :class:`ConfigError` or :class:`glassbox.artifacts.ArtifactError` (before listening) when the
    configuration is incomplete, the artifact is refused, or the API key cannot be read.
    """
    import uvicorn

    config = config or ServerConfig.from_env(**settings)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level,
                access_log=config.access_log, timeout_keep_alive=30, server_header=False)
