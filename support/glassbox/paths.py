"""Where the course keeps its local state (dev Vault record, progress, audit logs)."""

import os
from pathlib import Path


def home() -> Path:
    """The state directory: ``$GLASSBOX_HOME``, else ``~/.glassbox``; created on first use."""
    path = Path(os.environ.get("GLASSBOX_HOME") or Path.home() / ".glassbox")
    path.mkdir(parents=True, exist_ok=True)
    return path
