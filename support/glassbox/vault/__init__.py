"""The course's dev-mode Vault: find or start one server for the whole course, and audit it.

    from glassbox import vault
    server = vault.up()             # reuse the recorded server, VAULT_ADDR, a container, or embedded OpenBao
    client = hvac.Client(url=server.addr, token=server.token)
    print(vault.status())           # which backend runs, where, and whether it is healthy
    log_path = vault.enable_audit() # a file audit device (API on Vault, declarative config on OpenBao)
    vault.down()                    # stops only what `up` started

Every expected failure raises :class:`VaultError` with a one-line message that says what to do.
"""

from glassbox.vault.audit import enable_audit
from glassbox.vault.server import Server, Status, VaultError, down, env_exports, status, up

__all__ = ["Server", "Status", "VaultError", "down", "enable_audit", "env_exports", "status", "up"]
