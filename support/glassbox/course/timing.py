"""How long a lab takes a learner, by the instructor guide's published formula.

    learner minutes = measured execution (wall s / 60) + prose words / 150 + 6 × exercises, rounded up

*Prose words* are the words of a learner notebook's markdown cells (whitespace-separated tokens that hold a
letter or a digit, so table rules do not count); *exercises* are the lab's self-checks. 150 words per minute is
a careful pace for technical prose; 6 minutes is one exercise written, checked and fixed once.

    python -m glassbox.course.timing labs 00=1.4 01=4.8 ...    # print each lab's terms, from measured wall s
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import nbformat

WORDS_PER_MINUTE, MINUTES_PER_EXERCISE = 150, 6
_WORD = re.compile(r"\S*[A-Za-z0-9]\S*")


def prose_words(notebook_path: Path) -> int:
    """The words of the notebook's markdown cells."""
    notebook = nbformat.read(notebook_path, as_version=4)
    return sum(len(_WORD.findall(cell.source)) for cell in notebook.cells if cell.cell_type == "markdown")


def learner_minutes(wall_seconds: float, words: int, exercises: int) -> tuple[float, float, int, int]:
    """The formula's terms ``(execution, reading, exercises)`` in minutes, and their sum rounded up."""
    execution, reading = wall_seconds / 60, words / WORDS_PER_MINUTE
    practice = MINUTES_PER_EXERCISE * exercises
    return round(execution, 1), round(reading, 1), practice, math.ceil(execution + reading + practice)


def main(argv: list[str]) -> int:
    from glassbox.course.progress import exercises

    labs, measured = Path(argv[0]), dict(item.split("=") for item in argv[1:])
    counts = {lab: len(items) for lab, items in exercises().items()}
    for lab, wall in sorted(measured.items()):
        words = prose_words(next(labs.glob(f"{lab}-*.ipynb")))
        execution, reading, practice, total = learner_minutes(float(wall), words, counts[lab])
        print(f"{lab}: exercises {counts[lab]}, words {words:,}, {execution} + {reading} + {practice} = **{total}**")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
