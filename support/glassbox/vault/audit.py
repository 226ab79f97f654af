"""Audit logging on the course's dev server: one call for both server kinds.

HashiCorp Vault enables a file audit device through its API. OpenBao refuses that ("use declarative,
config-based audit device management"), so for an OpenBao server that glassbox started, the device is written
into the server's extra configuration file and the server is asked to reload it (SIGHUP).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import hvac

from glassbox.paths import home
from glassbox.vault.server import (
    CONFIG_NAME,
    CONTAINER_DIR,
    Server,
    VaultError,
    current,
    reload_config,
    server_log,
)

_LIST_TIMEOUT = 10.0  # seconds for a reloaded OpenBao to list the new device


def enable_audit(name: str = "course") -> Path:
    """Enable a file audit device called ``name`` (idempotent) and return its log file on this machine.

    Every request is then logged as one JSON line, with secret values replaced by ``hmac-sha256:`` digests
    that ``client.sys.calculate_hash(name, value)`` reproduces.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise VaultError(f"audit device name {name!r}: use letters, digits, '-' and '_'")
    server = current()
    if server is None:
        raise VaultError("no running Vault server is recorded: call vault.up() (or `glassbox vault up`) first")
    client = hvac.Client(url=server.addr, token=server.token)
    listed = _listed(client, name)
    if listed is None:
        if server.kind == "vault":
            _enable_by_api(client, server, name)
        elif server.backend == "existing":
            raise VaultError(
                f"OpenBao at {server.addr} enables audit devices only from its configuration file: add "
                f'audit "file" "{name}" {{ options {{ file_path = "..." }} }} to it and send the server SIGHUP '
                f"(glassbox does this itself for the servers it starts)")
        else:
            _enable_by_config(client, server, name)
        listed = _listed(client, name)
    return _on_this_machine(server, listed["options"]["file_path"])


def _listed(client: hvac.Client, name: str) -> dict | None:
    return client.sys.list_enabled_audit_devices()["data"].get(f"{name}/")


def _log_file(server: Server, name: str) -> str:
    """Where the server writes the log: in its directory, seen from inside the container if it runs in one."""
    if server.backend == "container":
        return f"{CONTAINER_DIR}/audit-{name}.log"
    directory = home() / "vault"
    directory.mkdir(exist_ok=True)
    return str(directory / f"audit-{name}.log")


def _options(server: Server, name: str) -> dict:
    # The log is this machine's user's alone (a container's server runs as that user too).
    return {"file_path": _log_file(server, name), "mode": "0600"}


def _enable_by_api(client: hvac.Client, server: Server, name: str) -> None:
    try:
        client.sys.enable_audit_device("file", path=name, options=_options(server, name))
    except hvac.exceptions.VaultError as error:
        raise VaultError(f"the server at {server.addr} refused the audit device {name!r} "
                         f"({str(error).strip().splitlines()[0]}): check that it can write "
                         f"{_log_file(server, name)}") from None


def _enable_by_config(client: hvac.Client, server: Server, name: str) -> None:
    """Append the device to the server's extra configuration and reload until the server lists it."""
    options = "".join(f'    {key} = "{value}"\n' for key, value in _options(server, name).items())
    block = f'\naudit "file" "{name}" {{\n  options {{\n{options}  }}\n}}\n'
    config = server.config_path
    text = config.read_text()
    if f'audit "file" "{name}"' not in text:
        staging = config.with_name(CONFIG_NAME + ".tmp")
        staging.write_text(text + block)
        staging.chmod(0o600)
        staging.replace(config)
    reload_config(server)
    if not _wait_listed(client, name):
        raise VaultError(f"OpenBao did not load the audit device {name!r} from {config}: {server_log(server)}")


def _wait_listed(client: hvac.Client, name: str) -> bool:
    """Poll until the reloaded server lists the device in a request that it also managed to audit.

    OpenBao registers a reloaded device a moment before the device's storage becomes writable, and the first
    request it audits creates the device's HMAC salt in that storage: a request that falls in that moment is
    refused with "internal error" (500, seen in CI under load), so such a refusal means "not yet".
    """
    deadline = time.monotonic() + _LIST_TIMEOUT
    while True:
        try:
            if _listed(client, name) is not None:
                return True
        except hvac.exceptions.InternalServerError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _on_this_machine(server: Server, file_path: str) -> Path:
    """The log's path here: a container's paths map back to the mounted server directory."""
    if server.backend == "container" and file_path.startswith(CONTAINER_DIR + "/"):
        return server.config_path.parent / file_path[len(CONTAINER_DIR) + 1:]
    return Path(file_path)
