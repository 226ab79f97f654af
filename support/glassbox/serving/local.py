"""The model server as a child process on this machine: for notebooks, tests, and labs without Docker.

    from glassbox.serving import LocalServer

    with LocalServer({"GLASSBOX_API_KEY_FILE": agent.key_file, ...}) as server:   # waits until ready
        httpx.get(server.url + "/v2/health/ready")
    # stopped here (and it also stops by itself if this process dies)

The child gets this process's environment without any ``VAULT_*`` or ``BAO_*`` variable (the server never
talks to Vault: its agent does), plus ``env``; it listens on a free loopback port unless told otherwise, and writes its log to a file. With
``GLASSBOX_TLS_FILE`` in ``env`` it serves HTTPS, and :attr:`url` says so; pass the CA that signed its
certificate as ``ca_file`` (the course CA, :func:`glassbox.vault.bootstrap.ca_certificate`), so that waiting
for it verifies it as any caller would. With ``grpc=True`` it also serves the gRPC API on a free port of
its own, at :attr:`grpc_target` (``host:port``, what gRPC clients take).
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from glassbox.child import ChildProcess
from glassbox.ports import free_ports

__all__ = ["LocalServer"]


class LocalServer(ChildProcess):
    """``python -m glassbox.serving`` in a child process; :meth:`start` waits until it answers ready."""

    def __init__(self, env: dict | None = None, *, host: str = "127.0.0.1", port: int | None = None,
                 log_path=None, ca_file=None, grpc: bool = False):
        self.host = host
        spare = free_ports(2, host)
        self.port = port or spare[0]
        self.env = {key: str(value) for key, value in (env or {}).items()}
        if grpc:
            self.env.setdefault("GLASSBOX_GRPC_PORT", str(spare[1]))
        self.ca_file = ca_file
        self.scheme = "https" if self.env.get("GLASSBOX_TLS_FILE") else "http"
        self.log_path = Path(log_path) if log_path else Path(
            tempfile.mkstemp(prefix="glassbox-server-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def grpc_target(self) -> str | None:
        """``host:port`` of the gRPC API, or ``None`` when the server serves REST only."""
        port = self.env.get("GLASSBOX_GRPC_PORT")
        return f"{self.host}:{port}" if port else None

    def start(self, timeout: float = 60.0) -> "LocalServer":
        """Start the server and wait until ``/v2/health/ready`` answers 200; raise with the log if it does not."""
        if self.running:
            return self
        env = {key: value for key, value in os.environ.items() if not key.startswith(("VAULT_", "BAO_"))}
        env.update(self.env)
        env.update({"GLASSBOX_HOST": self.host, "GLASSBOX_PORT": str(self.port), "GLASSBOX_EXIT_WITH_PARENT": "1"})
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "glassbox.serving"], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the model server exited with code {self.process.returncode}:\n{self.log(20)}")
            if is_ready(self.url, self.ca_file):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the model server was not ready after {timeout:.0f} s:\n{self.log(20)}")

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalServer({self.url}, {state})"


def is_ready(url: str, ca_file=None) -> bool:
    """Does the model server at ``url`` answer its ready endpoint (an HTTPS one verified against ``ca_file``)?"""
    context = ssl.create_default_context(cafile=str(ca_file)) if url.startswith("https") and ca_file else None
    try:
        with urllib.request.urlopen(url + "/v2/health/ready", timeout=1, context=context) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
