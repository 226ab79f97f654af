"""The catalogue of realistic mistakes: per lab, wrong answers a learner types, each run in a real kernel.

``tests/mistakes/labNN.py`` holds ``MISTAKES``, a list of :class:`Mistake`. A mistake's ``code`` replaces the
solution block(s) of its exercise's cell (the code cell of ``solutions/NN-*.ipynb`` that holds a
``# BEGIN SOLUTION`` block and calls the exercise's check), in order when the cell has several blocks.
The catalogue tests run the lab with that cell so changed and expect the check's "not yet", with every phrase
of ``says`` in its message or hints. The instructor guide's tables of mistakes are kept the same as this
catalogue by a test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    """One wrong answer to one exercise."""

    exercise: str                  # the check's ``name`` in ``@exercise(...)``
    mistake: str                   # what the learner did, in the guide's words
    code: str | tuple[str, ...]    # replaces the exercise cell's solution block(s)
    says: tuple[str, ...]          # phrases the feedback must hold (case-insensitive): it names the mistake
    to_the_end: bool = False       # the one mistake per exercise put in place when the lab runs with all wrong
