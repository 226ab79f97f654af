"""Every learner notebook as first opened: all its cells run, and every self-check says "not yet" with a hint."""

import re
from pathlib import Path

import pytest

from glassbox.course import progress

LABS = sorted(path.name for path in (Path(__file__).resolve().parents[1] / "labs").glob("*.ipynb"))


def check_outcomes(notebook, lab: str) -> list[str]:
    """The text of every self-check result the notebook displayed for ``lab``."""
    return [output["data"]["text/plain"] for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs
            if output.get("output_type") == "execute_result" and f"Lab {lab} ·" in output["data"]["text/plain"]]


def printed(notebook) -> str:
    """Everything the notebook's cells printed."""
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs)


@pytest.mark.parametrize("name", LABS)
def test_every_check_says_not_yet_with_a_hint(untouched_lab, name):
    lab = re.match(r"\d\d", name).group(0)
    outcomes = check_outcomes(untouched_lab(name), lab)
    assert len(outcomes) == len(progress.exercises()[lab]), outcomes
    assert all(outcome.startswith("[NOT YET]") and "Hint:" in outcome for outcome in outcomes), outcomes
