"""The instructor guide (solutions/INSTRUCTORS.md) covers every lab, names only self-checks that exist, and states
each lab's exercise count as ``glassbox.course.progress.exercises()`` gives it.

The guide has one section per lab, headed ``### Lab NN – Title``, holding a line ``**Exercises:** N`` and the
lab's self-checks by function name; its first table ("at a glance") has a row per lab with an ``exercises``
column. ``problems(text)`` lists everything that falls short; the mutation tests show it notices each kind.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import nbformat
import pytest

from glassbox.course import timing
from glassbox.course.progress import exercises

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "solutions" / "INSTRUCTORS.md"
LABS = sorted({path.name[:2] for path in (REPO / "solutions").glob("[0-9][0-9]-*.ipynb")} | set(exercises()))

_SECTION = re.compile(r"^### Lab (\d\d)\b.*$", re.M)
_HEADING = re.compile(r"^#{1,3} ", re.M)
_COUNT = re.compile(r"\*\*Exercises:\*\*\s*(\d+)")
_CHECK = re.compile(r"\bcheck_\w+")


def _checks(lab: str) -> set[str]:
    """The self-check functions that ``glassbox.checks.labNN`` defines for lab NN."""
    module = importlib.import_module(f"glassbox.checks.lab{lab}")
    return {name for name, item in vars(module).items()
            if callable(item) and getattr(item, "exercise", (None,))[0] == lab}


def _sections(text: str) -> dict[str, list[str]]:
    """Each lab's section text (a lab with two sections gets two entries)."""
    found: dict[str, list[str]] = {}
    for heading in _SECTION.finditer(text):
        end = _HEADING.search(text, heading.end())
        found.setdefault(heading.group(1), []).append(text[heading.end():end.start() if end else len(text)])
    return found


def _glance_counts(text: str) -> dict[str, str]:
    """``{lab: exercises cell}`` from the first table whose header has an ``exercises`` column."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and "lab" in cells and "exercises" in cells:
            lab_at, count_at = cells.index("lab"), cells.index("exercises")
            rows = {}
            for row in lines[number + 2:]:
                if not row.startswith("|"):
                    break
                values = [cell.strip() for cell in row.strip().strip("|").split("|")]
                if len(values) > max(lab_at, count_at) and re.fullmatch(r"\d\d", values[lab_at]):
                    rows[values[lab_at]] = values[count_at].strip("*")
            return rows
    return {}


def problems(text: str) -> list[str]:
    """Everything the guide gets wrong about the labs, their checks and their exercise counts."""
    found = []
    known = {lab: _checks(lab) for lab in LABS}
    every_check = set().union(*known.values())
    for name in sorted(set(_CHECK.findall(text)) - every_check):
        found.append(f"the guide names {name}, which glassbox.checks does not define")
    sections, glance = _sections(text), _glance_counts(text)
    for lab in LABS:
        expected = len(exercises().get(lab, []))
        if lab not in sections:
            found.append(f"lab {lab} has no section (### Lab {lab} – ...)")
        elif len(sections[lab]) > 1:
            found.append(f"lab {lab} has {len(sections[lab])} sections")
        else:
            section = sections[lab][0]
            stated = _COUNT.findall(section)
            if not stated:
                found.append(f"lab {lab}'s section does not state its exercise count (**Exercises:** N)")
            elif any(int(count) != expected for count in stated):
                found.append(f"lab {lab}'s section states {stated} exercises; glassbox.checks has {expected}")
            named = set(_CHECK.findall(section))
            for name in sorted(named & every_check - known[lab]):
                found.append(f"lab {lab}'s section names {name}, which is not one of lab {lab}'s checks")
            for name in sorted(known[lab] - named):
                found.append(f"lab {lab}'s section does not name its check {name}")
        if lab not in glance:
            found.append(f"lab {lab} has no row in the at-a-glance table")
        elif glance[lab] != str(expected):
            found.append(f"the at-a-glance table gives lab {lab} {glance[lab]!r} exercises; glassbox.checks has "
                         f"{expected}")
    return found


def test_the_labs_are_the_notebooks_and_the_check_modules():
    notebooks = sorted(path.name[:2] for path in (REPO / "solutions").glob("[0-9][0-9]-*.ipynb"))
    assert notebooks and notebooks == sorted(exercises()) == LABS
    assert all(_checks(lab) for lab in LABS)


def test_the_guide_covers_every_lab_names_real_checks_and_states_the_exercise_counts():
    assert problems(GUIDE.read_text(encoding="utf-8")) == []


def _swap(pattern: str, replacement: str):
    def mutate(text: str) -> str:
        changed = re.sub(pattern, replacement, text, count=1, flags=re.M)
        assert changed != text, f"the guide no longer matches {pattern!r}: update this test"
        return changed
    return mutate


def _wrong_count(lab: str):
    def mutate(text: str) -> str:
        return _swap(rf"^(### Lab {lab}\b[\s\S]*?\*\*Exercises:\*\*\s*)\d+",
                     rf"\g<1>{len(exercises()[lab]) + 1}")(text)
    return mutate


@pytest.mark.parametrize("mutate, says", [
    (_swap(r"^### Lab 06\b", "### Laboratory 06"), "lab 06 has no section"),
    (_swap(r"^\| 03 \|", "| 3 |"), "lab 03 has no row"),
    (_swap(r"\bcheck_first_secret\b", "check_first_secrets"), "check_first_secrets, which glassbox.checks"),
    (_swap(r"\bcheck_psi\b", "check_first_secret"), "not one of lab 09's checks"),
    (_wrong_count("02"), "lab 02's section states"),
    (_swap(r"^(### Lab 05\b[\s\S]*?)\*\*Exercises:\*\*\s*\d+\.?", r"\g<1>"), "lab 05's section does not state"),
    (_swap(r"^(\| 08 \|[^|]*\|\s*)\d+", r"\g<1>9"), "gives lab 08 '9' exercises"),
])
def test_problems_notices_each_kind_of_mistake(mutate, says):
    found = problems(mutate(GUIDE.read_text(encoding="utf-8")))
    assert any(says in problem for problem in found), found


def _glance_rows(text: str) -> dict[str, dict[str, str]]:
    """``{lab: {column: cell}}`` of the at-a-glance table."""
    lines = [line for line in text.split("## Workshop plans")[0].splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:])
    return {row[0]: dict(zip(header, row)) for row in rows if re.fullmatch(r"\d\d", row[0])}


def _stated_minutes(lab: str) -> int:
    first = nbformat.read(next((REPO / "labs").glob(f"{lab}-*.ipynb")), as_version=4).cells[0].source
    return int(re.search(r"\*\*Time:\*\*\s*about (\d+) minutes", first).group(1))


def _readme_minutes() -> dict[str, int]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return {lab: int(minutes) for lab, minutes in re.findall(r"^\| (\d\d) \|.*\| (\d+) min \|$", readme, re.M)}


@pytest.mark.parametrize("lab", LABS)
def test_the_learner_time_follows_the_published_formula_from_its_inputs(lab):
    row = _glance_rows(GUIDE.read_text(encoding="utf-8"))[lab]
    words = timing.prose_words(next((REPO / "labs").glob(f"{lab}-*.ipynb")))
    assert int(row["prose words"].replace(",", "")) == words
    execution, reading, practice, total = timing.learner_minutes(float(row["run s (wall)"]), words,
                                                                 len(exercises()[lab]))
    assert row["learner time, min"] == f"{execution} + {reading} + {practice} = **{total}**"
    assert int(row["notebook says"]) == _stated_minutes(lab) and int(row["README"]) == _readme_minutes()[lab]
