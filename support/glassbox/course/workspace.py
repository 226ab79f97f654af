"""The learner's workspace: copies of the course's labs/ that updates never overwrite once the learner edits them.

JupyterLab autosaves into whatever folder it serves, so learners never work in the tracked labs/: ``sync`` copies
it into a workspace folder (by default ``workspace/`` beside labs/, git-ignored) and, on every later call, brings
course updates in with nbgitpuller's rule, decided file by file from the sha256 that a small manifest
(``.glassbox-workspace.json`` in the workspace) recorded when the course last wrote the file:

=============================================  ==========================================================
the learner's copy                             what an update does
=============================================  ==========================================================
untouched (sha256 as the course wrote it)      replaced by the course's new version
edited, and the course changed the lab         kept byte for byte; the new version lands beside it as
                                               ``NN-name.new.ipynb``
deleted                                        comes back (the course's current version)
the learner's own file with a new lab's name   set aside as ``NN-name__YYYYmmddHHMMSS.ipynb`` (nbgitpuller's
                                               name), then the lab is copied in
untouched, and the lab left the course         removed; an edited one stays, as the learner's own file
any other file (scratch notebooks, data)       never touched
=============================================  ==========================================================

One difference from nbgitpuller, on purpose: where the learner and the course both changed a file, nbgitpuller
runs ``git merge -Xours``, a line-by-line merge of the notebook's JSON that can interleave cells and outputs of
two versions; here the learner's file is kept exactly and the course's version is offered beside it. nbgitpuller
itself is not used: it needs a git remote and clones a whole repository (solutions/ included) into the workspace.

The default place, ``workspace/`` beside labs/, is why nothing above labs/ is copied: lab 09 looks upwards for
``deploy/k8s``, lab 08 for the ``Dockerfile``, lab 07 links ``../benchmarks/README.md``, and all of these resolve
to the course's current files, from a checkout, the devcontainer (the repository is mounted, so the copies survive
a rebuild) or Binder (whose home is the repository). A JupyterHub spawner reuses the same call,
``sync(course_labs, learner_workspace)``, before each server starts; a workspace outside the course's folder then
needs the course's ``deploy/`` and ``benchmarks/`` linked beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".glassbox-workspace.json"


@dataclass
class Report:
    """What one ``sync`` did, by file name (relative to the workspace)."""

    workspace: Path
    first_copy: bool = False
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)        # the learner's edited file -> the new version beside
    set_aside: dict[str, str] = field(default_factory=dict)   # the learner's own file -> its timestamped name
    removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: where the learner's copies are and what this update did."""
        where = f"Your copies of the labs are in {self.workspace}"
        parts = [f"first copy of {_count(self.new, 'lab')}"] if self.first_copy else []
        if self.new and not self.first_copy:
            parts.append(f"{_count(self.new, 'new lab')} ({', '.join(self.new)})")
        if self.updated:
            parts.append(f"{_count(self.updated, 'lab')} updated")
        if self.restored:
            parts.append(f"{_count(self.restored, 'deleted lab')} restored ({', '.join(self.restored)})")
        if self.kept:
            beside = ", ".join(self.kept.values())
            parts.append(f"{len(self.kept)} kept (you edited {'it' if len(self.kept) == 1 else 'them'}; "
                         f"the new version is {beside})")
        for own, aside in self.set_aside.items():
            parts.append(f"your own {own} renamed {aside}")
        if self.removed:
            parts.append(f"{_count(self.removed, 'untouched lab')} no longer in the course removed")
        return f"{where}: " + ("; ".join(parts) if parts else "up to date")


def _count(names, noun: str) -> str:
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"


def default_workspace(labs: Path) -> Path:
    """``workspace/`` beside labs/: every path a lab reads relative to its folder (``../benchmarks``, the
    repository's ``deploy/k8s`` and ``Dockerfile`` found upwards) resolves to the course's current files."""
    return Path(labs).resolve().parent / "workspace"


def sync(labs: Path, workspace: Path) -> Report:
    """Copy the course's ``labs`` into ``workspace`` (created on first use), keeping every edit the learner made."""
    labs, workspace = Path(labs), Path(workspace)
    if not labs.is_dir():
        raise FileNotFoundError(f"no course labs at {labs}: run this from the course repository or pass --labs")
    report = Report(workspace.resolve(), first_copy=not (workspace / MANIFEST).is_file())
    workspace.mkdir(parents=True, exist_ok=True)
    manifest = _load(workspace)
    copied, beside = manifest["copied"], manifest["beside"]
    course = {path.relative_to(labs).as_posix(): path.read_bytes() for path in sorted(labs.rglob("*"))
              if path.is_file() and not any(part.startswith(".") for part in path.relative_to(labs).parts)}
    for name, content in course.items():
        target, wanted = workspace / name, _sha(content)
        if not target.exists():
            (report.restored if name in copied else report.new).append(name)
            _write(target, content)
        elif name not in copied:                          # a file of the learner's own, with this lab's name
            if _sha(target.read_bytes()) != wanted:
                aside = _timestamped(target)
                target.rename(aside)
                report.set_aside[name] = aside.name
                report.new.append(name)
                _write(target, content)
        elif copied[name] == wanted or _sha(target.read_bytes()) == wanted:
            pass                                          # the course did not change it, or the learner has it
        elif _sha(target.read_bytes()) == copied[name]:   # untouched by the learner
            _write(target, content)
            report.updated.append(name)
        else:                                             # edited by the learner, changed by the course
            offered = target.with_name(f"{target.stem}.new{target.suffix}")
            key = offered.relative_to(workspace).as_posix()
            if offered.exists() and _sha(offered.read_bytes()) not in (beside.get(key), wanted):
                offered.rename(_timestamped(offered))     # the learner edited an earlier new version: keep it
            _write(offered, content)
            beside[key] = wanted
            report.kept[name] = key
        copied[name] = wanted
    for name in sorted(set(copied) - set(course)):        # labs the course no longer has
        target = workspace / name
        if target.is_file() and _sha(target.read_bytes()) == copied[name]:
            target.unlink()
            report.removed.append(name)
        del copied[name]
    _save(workspace, manifest)
    return report


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _timestamped(path: Path) -> Path:
    """nbgitpuller's name for a file moved out of an incoming file's way: ``name__YYYYmmddHHMMSS.ext``."""
    return path.with_name(f"{path.stem}{time.strftime('__%Y%m%d%H%M%S')}{path.suffix}")


def _write(path: Path, content: bytes) -> None:
    """Replace ``path`` in one step: a JupyterLab reading it never sees half a notebook."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_bytes(content)
    os.replace(staging, path)


def _load(workspace: Path) -> dict:
    try:
        manifest = json.loads((workspace / MANIFEST).read_text())
    except FileNotFoundError:
        manifest = {}
    except ValueError as error:
        raise ValueError(f"{workspace / MANIFEST} is damaged ({error}); delete it to adopt the workspace afresh "
                         "(files that differ from the course are then set aside, never lost)") from None
    return {"copied": manifest.get("copied", {}), "beside": manifest.get("beside", {})}


def _save(workspace: Path, manifest: dict) -> None:
    _write(workspace / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
