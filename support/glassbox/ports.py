"""Free TCP ports on this machine, for the servers the course starts (model servers, peers, the dev stack)."""

from __future__ import annotations

import socket
from contextlib import ExitStack

__all__ = ["free_port", "free_ports"]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free on ``host`` now: all are held open together while they are picked, so
    two can never be the same (picking them one by one could return a port twice)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind((host, 0))
        return [probe.getsockname()[1] for probe in probes]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now."""
    return free_ports(1, host)[0]
