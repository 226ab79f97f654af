"""Where the course keeps its local state (dev Vault record, progress, audit logs)."""

import os
from pathlib import Path


def home() -> Path:
    """The state directory: ``$GLASSBOX_HOME``, else ``~/.glassbox``; created on first use."""
    path = Path(os.environ.get("GLASSBOX_HOME") or Path.home() / ".glassbox")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_private(path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, readable by this user only (0600).

    A temporary file beside it is renamed over it, as Vault Agent renders a file: a reader never sees it
    empty or half-written, and the content is never readable by others, not even for a moment.
    """
    path = Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(staging, path)
