"""The course's dev-mode Vault: find or start one server for the whole course, and audit it.

    from glassbox import vault
    server = vault.up()             # reuse the recorded server, VAULT_ADDR, a container, or embedded OpenBao
    client = hvac.Client(url=server.addr, token=server.token)
    print(vault.status())           # which backend runs, where, and whether it is healthy
    log_path = vault.enable_audit() # a file audit device (API on Vault, declarative config on OpenBao)
    vault.down()                    # stops only what `up` started

Every expected failure raises :class:`VaultError` with a one-line message that says what to do.

The names above are imported on first use: the server manager (:mod:`.server`) needs the Docker SDK and
psutil, and what runs in the model server's image (compose's bootstrap: :mod:`.bootstrap`, :mod:`.agent`,
:mod:`.orchestrator`) must import neither.
"""

import importlib

__all__ = ["Server", "Status", "VaultError", "down", "enable_audit", "env_exports", "status", "up"]

_HOME = {name: "glassbox.vault.server" for name in __all__} | {"enable_audit": "glassbox.vault.audit"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
