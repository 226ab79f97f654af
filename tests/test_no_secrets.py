"""No token or secret value in any notebook or tracked file."""

import json
import subprocess
from pathlib import Path

import pytest

from helpers import RANDOM_LOOKING, leaks_in_text

REPO = Path(__file__).resolve().parents[1]

def leaks_in_outputs(notebook: dict) -> list[str]:
    found = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) + "".join(
                "".join(value) for key, value in output.get("data", {}).items() if key.startswith("text/"))
            found += leaks_in_text(text) + RANDOM_LOOKING.findall(text)
    return found


def tracked_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in names.splitlines() if name != "requirements.lock"]


def notebooks() -> list[Path]:
    return sorted({*REPO.glob("solutions/*.ipynb"), *REPO.glob("labs/*.ipynb")})


@pytest.mark.parametrize("path", notebooks(), ids=lambda path: str(path.relative_to(REPO)))
def test_notebook_outputs_show_no_secret(path):
    assert leaks_in_outputs(json.loads(path.read_text())) == []


def test_tracked_files_hold_no_secret():
    leaks = {}
    for path in tracked_files():
        if path.is_file() and path.suffix not in {".png", ".jpg"}:
            found = leaks_in_text(path.read_text(errors="ignore"))
            if found:
                leaks[str(path.relative_to(REPO))] = found
    assert leaks == {}


def test_the_scan_finds_what_it_must():
    token = "hvs." + "CAESIJ" * 5
    notebook = {"cells": [{"outputs": [{"output_type": "stream", "text": f"token {token}"}]},
                          {"outputs": [{"data": {"text/plain": "'password': 'q7Zr2LmX9vTt4Kp0sWd8Yb3N'"}}]}]}
    assert leaks_in_outputs(notebook) == [token, "q7Zr2LmX9vTt4Kp0sWd8Yb3N"]
    assert leaks_in_outputs({"cells": [{"outputs": [{"text": "hmac-sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 "
                                                              "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}]}]}) == []
