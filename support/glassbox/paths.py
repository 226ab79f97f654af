"""Where the course keeps its local state (dev Vault record, progress, audit logs)."""

import os
import tempfile
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
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600, a name of its own
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
