"""Every learner notebook as first opened: all its cells run, and every self-check says "not yet" with a hint."""

import re
from pathlib import Path

import pytest

from glassbox.course import progress
from helpers import check_outcomes

LABS = sorted(path.name for path in (Path(__file__).resolve().parents[1] / "labs").glob("*.ipynb"))


@pytest.mark.parametrize("name", LABS)
def test_every_check_says_not_yet_with_a_hint(untouched_lab, name):
    lab = re.match(r"\d\d", name).group(0)
    outcomes = check_outcomes(untouched_lab(name), lab)
    assert len(outcomes) == len(progress.exercises()[lab]), outcomes
    assert all(outcome.startswith("[NOT YET]") and "Hint:" in outcome for outcome in outcomes), outcomes
