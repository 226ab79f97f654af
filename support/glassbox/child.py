"""A course process started from a notebook or a test (the model server, Vault Agent): stop it, read its log.

Subclasses set :attr:`process` and :attr:`log_path` in their ``start()``, which waits until the process is
useful; ``with`` starts and stops it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["ChildProcess"]


class ChildProcess:
    """What :class:`glassbox.serving.LocalServer` and :class:`glassbox.vault.agent.LocalAgent` share."""

    process: subprocess.Popen | None = None
    log_path: Path

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0):
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout``); return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self, lines: int | None = None) -> str:
        """The process's log (its last ``lines`` lines)."""
        try:
            text = Path(self.log_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:]) if lines else text

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
