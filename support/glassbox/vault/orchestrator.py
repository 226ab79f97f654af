"""The trusted orchestrator: it hands the model service's agent its first credential ("secret zero").

Whoever starts the service (a deployment pipeline, a scheduler, compose's bootstrap, a notebook) holds a token
with the orchestrator's policy (:func:`glassbox.vault.bootstrap.orchestrator_token`): it may read the role ID
and issue secret IDs for the service's role, response-wrapped only. It never sees a secret ID in the clear,
and it cannot read the service's secrets::

    orchestrator = hvac.Client(url=server.addr, token=bootstrap.orchestrator_token(admin))
    deliver(orchestrator, work_dir)                 # before each start of the agent
    with Delivery(orchestrator, work_dir):          # or: keep a fresh one there while the service runs
        ...

A wrapped secret ID works once and only within its wrap TTL; if someone else unwraps it first, the agent's
unwrap fails, and that failure is the alarm. The orchestrator's own token is periodic (1h): ``Delivery`` renews
it at half its TTL, so it lives as long as the delivery runs, and dies within a period once nobody renews it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import hvac

from glassbox.paths import write_private
from glassbox.vault import agent, bootstrap

__all__ = ["deliver", "Delivery"]

_log = logging.getLogger(__name__)


def deliver(client: hvac.Client, directory, wrap_ttl: str = bootstrap.WRAP_TTL) -> Path:
    """Write the role ID and a new wrapped secret ID into the agent's directory (0700, files 0600)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    write_private(directory / agent.ROLE_ID_FILE, bootstrap.role_id(client) + "\n")
    write_private(directory / agent.SECRET_ID_FILE, bootstrap.wrapped_secret_id(client, wrap_ttl) + "\n")
    return directory / agent.SECRET_ID_FILE


class Delivery:
    """A background thread that keeps one fresh wrapped secret ID in the agent's directory.

    When the agent has taken the file (it deletes it after reading), a new one is written within ``poll``
    seconds; one older than half its wrap TTL is replaced before it expires. ``delivered`` counts them.

    It also keeps its client's token alive: a token that expires (the orchestrator's is periodic) is renewed
    at about half its TTL, ``renewed`` counts the renewals. A token that cannot be renewed is logged as a
    warning when the thread starts. Every failure, of a delivery or a renewal, goes into ``errors`` and the
    log (``glassbox.vault.orchestrator``; failed deliveries in a row once); a failed renewal is retried within
    seconds.
    """

    def __init__(self, client: hvac.Client, directory, wrap_ttl: str = bootstrap.WRAP_TTL, poll: float = 0.2):
        self.client, self.directory, self.wrap_ttl, self.poll = client, Path(directory), wrap_ttl, poll
        self.delivered = 0
        self.renewed = 0
        self.errors: list[str] = []
        self._looked_up = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="glassbox-orchestrator", daemon=True)

    def start(self) -> "Delivery":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> "Delivery":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        path = self.directory / agent.SECRET_ID_FILE
        max_age = bootstrap.duration_seconds(self.wrap_ttl) / 2
        written, failing = 0.0, False
        renew_at: float | None = time.monotonic()  # when to look after the token next; None: it needs nothing
        while not self._stop.is_set():
            if renew_at is not None and time.monotonic() >= renew_at:
                renew_at = self._keep_token()
            if not path.exists() or time.monotonic() - written > max_age:
                try:
                    deliver(self.client, self.directory, self.wrap_ttl)
                    written, self.delivered, failing = time.monotonic(), self.delivered + 1, False
                except Exception as error:  # Vault busy or away: try again on the next poll
                    self._error("delivering a wrapped secret ID", error, log=not failing)
                    failing = True
            self._stop.wait(self.poll)

    def _keep_token(self) -> float | None:
        """Look the token up (the first time) or renew it; return when to renew it next (None: never)."""
        doing = "renewing the orchestrator's token" if self._looked_up else "looking up the orchestrator's token"
        try:
            if not self._looked_up:
                info = self.client.auth.token.lookup_self()["data"]
                self._looked_up = True
                ttl = int(info.get("ttl") or 0)
                if ttl == 0:  # a token that never expires (root): nothing to renew
                    return None
                if not info.get("renewable"):
                    _log.warning("the orchestrator's token cannot be renewed: deliveries stop when it expires "
                                 "in %d s (use bootstrap.orchestrator_token's periodic token)", ttl)
                    return None
            else:
                ttl = int(self.client.auth.token.renew_self()["auth"]["lease_duration"])
                self.renewed += 1
        except Exception as error:
            self._error(doing, error, log=True)
            return time.monotonic() + 2.0  # retry soon: a periodic token has the rest of its period
        return time.monotonic() + max(ttl / 2, self.poll)

    def _error(self, doing: str, error: Exception, log: bool) -> None:
        line = f"{doing}: {type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"
        self.errors.append(line)
        if log:
            _log.error("orchestrator: %s", line)
