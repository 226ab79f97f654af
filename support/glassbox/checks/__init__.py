"""Learner self-checks: each exercise's check gives clear feedback, never a traceback.

A check is a function decorated with :func:`exercise`. Inside it, :func:`expect` and :func:`fail` stop
the check with a message saying what is wrong and a hint. The decorated function always returns a
:class:`Feedback` (truthy when the exercise passes), records the outcome in the learner's progress,
and never raises::

    @exercise(lab="02", name="permutation-importance", title="Permutation importance on held-out data")
    def check_permutation_importance(result):
        expect(result is not ..., "`result` is still the stub.", hint="Call permutation_importance(...).")

A check that passes may return a short string (for example a score) that is shown with the success.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from typing import Callable, NoReturn

__all__ = ["Feedback", "exercise", "expect", "fail"]


class _CheckFailed(Exception):
    def __init__(self, what: str, hint: str | None):
        super().__init__(what)
        self.what, self.hint = what, hint


def fail(what: str, hint: str | None = None) -> NoReturn:
    """Stop the running check: ``what`` says what is wrong, ``hint`` how to fix it."""
    raise _CheckFailed(what, hint)


def expect(condition: object, what: str, hint: str | None = None) -> None:
    """Stop the running check with ``what`` (and ``hint``) unless ``condition`` holds."""
    if not condition:
        fail(what, hint)


@dataclass(frozen=True)
class Feedback:
    """The outcome of one self-check, shown as a coloured box in a notebook and a line in a terminal."""

    lab: str
    name: str
    title: str
    passed: bool
    message: str
    hint: str | None = None

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        mark = "PASSED" if self.passed else "NOT YET"
        text = f"[{mark}] Lab {self.lab} · {self.title}: {self.message}"
        return text + (f"\n  Hint: {self.hint}" if self.hint else "")

    def _repr_html_(self) -> str:
        colour, mark = ("#1a7f37", "✔ Passed") if self.passed else ("#b35900", "✘ Not yet")
        hint = f"<div><b>Hint:</b> {html.escape(self.hint)}</div>" if self.hint else ""
        return (
            f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
            f'<b style="color:{colour}">{mark}</b> — Lab {self.lab} · {html.escape(self.title)}'
            f"<div>{html.escape(self.message)}</div>{hint}</div>"
        )


def exercise(lab: str, name: str, title: str) -> Callable[[Callable], Callable[..., Feedback]]:
    """Turn a check function into a self-check returning :class:`Feedback` and recording progress."""

    def decorate(check: Callable) -> Callable[..., Feedback]:
        @functools.wraps(check)
        def run(*args, **kwargs) -> Feedback:
            try:
                detail = check(*args, **kwargs)
                feedback = Feedback(lab, name, title, True, detail if isinstance(detail, str) else "well done.")
            except _CheckFailed as failure:
                feedback = Feedback(lab, name, title, False, failure.what, failure.hint)
            except Exception as error:  # a learner's unexpected object must not end in a traceback
                feedback = Feedback(
                    lab, name, title, False,
                    f"the check could not read your answer ({type(error).__name__}: {error}).",
                    "Re-run the cells above in order, then compare your answer with the exercise's instructions.",
                )
            from glassbox.course import progress

            progress.record(feedback)
            return feedback

        run.exercise = (lab, name, title)
        return run

    return decorate
