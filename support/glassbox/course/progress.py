"""The learner's progress: every self-check records its best outcome in ``$GLASSBOX_HOME/progress.json``.

Re-running an untouched lab (every answer a stub again) does not turn an earlier pass back into "not yet".
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import tempfile
import time
from pathlib import Path

from glassbox.paths import home


def _store() -> Path:
    return home() / "progress.json"


def load() -> dict:
    """Recorded outcomes, ``{lab: {exercise: {"title", "passed", "at"}}}``; a damaged file is set aside."""
    path = _store()
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        pass
    path.replace(path.with_suffix(f".damaged-{int(time.time())}.json"))
    return {}


def _save(data: dict) -> None:
    path = _store()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=1, sort_keys=True)
    os.replace(tmp, path)


def record(feedback) -> None:
    """Store one check's outcome (called by every self-check), keeping the best: a pass stays a pass."""
    data = load()
    earlier = data.get(feedback.lab, {}).get(feedback.name, {})
    data.setdefault(feedback.lab, {})[feedback.name] = {
        "title": feedback.title,
        "passed": feedback.passed or earlier.get("passed", False),
        "latest": feedback.passed,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        _save(data)
    except OSError:
        pass  # progress is a convenience: a read-only home must not break a lab


def reset(lab: str) -> int:
    """Forget the recorded outcomes of one lab; returns how many were forgotten."""
    data = load()
    forgotten = len(data.pop(lab, {}))
    _save(data)
    return forgotten


def exercises() -> dict[str, list[tuple[str, str]]]:
    """Every exercise of the course, ``{lab: [(name, title), ...]}``, read from ``glassbox.checks``."""
    import glassbox.checks as checks

    found: dict[str, list[tuple[str, str]]] = {}
    for module in pkgutil.iter_modules(checks.__path__):
        for item in vars(importlib.import_module(f"glassbox.checks.{module.name}")).values():
            if hasattr(item, "exercise"):
                lab, name, title = item.exercise
                found.setdefault(lab, []).append((name, title))
    return dict(sorted(found.items()))


def summary() -> str:
    """A table of each lab's exercises and which have passed."""
    done = load()
    lines = []
    for lab, items in exercises().items():
        passed = sum(done.get(lab, {}).get(name, {}).get("passed", False) for name, _ in items)
        lines.append(f"Lab {lab}: {passed}/{len(items)} checks passed")
        for name, title in items:
            state = done.get(lab, {}).get(name)
            mark = "not tried" if state is None else ("passed" if state["passed"] else "not yet")
            lines.append(f"  {mark:>9}  {title}")
    return "\n".join(lines) if lines else "No exercises found."
