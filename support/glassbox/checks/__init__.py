"""Learner self-checks: each exercise's check gives clear feedback, never a traceback.

A check is a function decorated with :func:`exercise`. Inside it, :func:`expect` and :func:`fail` stop
the check with a message saying what is wrong and a hint. The decorated function always returns a
:class:`Feedback` (truthy when the exercise passes), records the outcome in the learner's progress,
and never raises::

    @exercise(lab="02", name="permutation-importance", title="Permutation importance on held-out data",
              hint=("Which data has the model never seen?", "Score the permutations on X_test."))
    def check_permutation_importance(result):
        expect_answered(result, "result")
        ...

Hints come in tiers: a tuple ``(concept, more specific)``. The first tier points at the idea; a later tier
may be more specific; no tier pastes the solution's expression. Messages and hints are Markdown.
The exercise's own ``hint`` is what a learner sees when the answer is still the stub, or when their code
raised before the check could run (see :mod:`glassbox.checks.kernel`).

Exercises whose answer is an interpretation or a prediction use :func:`choose` (multiple choice) or
:func:`expect_close` (a number). A check that passes may return a short string shown with the success.
"""

from __future__ import annotations

import functools
import html
import traceback
from dataclasses import dataclass
from typing import Callable, NoReturn

import mistune

__all__ = ["Feedback", "Hint", "choose", "exercise", "expect", "expect_answered", "expect_close", "fail",
           "is_stub"]

Hint = str | tuple[str, ...] | None


def _tiers(hint: Hint) -> tuple[str, ...]:
    if hint is None:
        return ()
    return (hint,) if isinstance(hint, str) else tuple(hint)


class _CheckFailed(Exception):
    def __init__(self, what: str, hint: Hint):
        super().__init__(what)
        self.what, self.hints = what, _tiers(hint)


def fail(what: str, hint: Hint = None) -> NoReturn:
    """Stop the running check: ``what`` says what is wrong, ``hint`` (one or more tiers) how to fix it."""
    raise _CheckFailed(what, hint)


def expect(condition: object, what: str, hint: Hint = None) -> None:
    """Stop the running check with ``what`` (and ``hint``) unless ``condition`` holds."""
    if not condition:
        fail(what, hint)


def is_stub(value) -> bool:
    """Whether an answer is still what the lab's ``# STUB:`` line left: ``...`` or ``None``."""
    return value is ... or value is None


class _StillStub(_CheckFailed):
    """An answer that is still the stub: the exercise's own hint is shown."""


def expect_answered(value, name: str, hint: Hint = None) -> None:
    """Stop with "`name` is still the stub" (and the exercise's hint unless ``hint`` is given) for a stub."""
    if is_stub(value):
        raise _StillStub(f"`{name}` is still the stub.", hint)


def expect_close(value, truth: float, tolerance: float, what: str, hint: Hint = None) -> float:
    """Read ``value`` as a number and stop with ``what`` unless it is within ``tolerance`` of ``truth``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        fail(f"your answer should be a number, not {type(value).__name__} {value!r}.", hint)
    expect(abs(number - truth) <= tolerance, what, hint)
    return number


def choose(answer, options: dict[str, str], correct: str | set[str], why: dict[str, str]) -> str:
    """Check a multiple-choice ``answer`` (an option's letter) and return the explanation of the right one.

    ``options`` maps each letter to its text; ``why`` maps every letter to the reason it is right or wrong,
    so a wrong choice is told which misconception it holds. ``correct`` may be a set of letters, and then
    ``answer`` must be that set (a string of letters, or a set).
    """
    wanted = {correct} if isinstance(correct, str) else set(correct)
    letters = ", ".join(f"`{letter!r}`" for letter in options)
    expect(isinstance(answer, (str, set, list, tuple)) and answer,
           f"your answer should be one of the letters {letters}, not {answer!r}.",
           "Read the options above and assign the letter of the one you believe, as a string.")
    if isinstance(answer, str):
        given = set(answer.lower().replace(",", " ").split()) if len(wanted) > 1 else {answer.strip().lower()}
    else:
        given = {str(a).strip().lower() for a in answer}
    unknown = sorted(given - set(options))
    expect(not unknown, f"{', '.join(map(repr, unknown))} is not one of the options ({letters}).",
           "Answer with an option's letter, for example `answer = 'a'`.")
    if given != wanted:
        reasons = " ".join(why[letter] for letter in sorted(given - wanted))
        fail(f"not quite: {reasons or 'what you chose holds, but it is not all that holds.'}",
             "Look again at the output above, and ask which options it actually supports.")
    return " ".join(why[letter] for letter in sorted(wanted))


_MARKDOWN = mistune.create_markdown(escape=True)


def _markdown(text: str) -> str:
    """Inline Markdown (backticks, emphasis, links) as HTML, without the surrounding paragraph."""
    rendered = _MARKDOWN(text).strip()
    if rendered.startswith("<p>") and rendered.endswith("</p>") and rendered.count("<p>") == 1:
        rendered = rendered[3:-4]
    return rendered


@dataclass(frozen=True)
class Feedback:
    """The outcome of one self-check, shown as a coloured box in a notebook and a line in a terminal."""

    lab: str
    name: str
    title: str
    passed: bool
    message: str
    hints: tuple[str, ...] = ()
    details: str | None = None   # e.g. the traceback of the learner's code, folded away in a notebook

    @property
    def hint(self) -> str | None:
        """All hint tiers as one string (``None`` when there is none)."""
        return " ".join(self.hints) or None

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        mark = "PASSED" if self.passed else "NOT YET"
        text = f"[{mark}] Lab {self.lab} · {self.title}: {self.message}"
        for number, tier in enumerate(self.hints, start=1):
            text += f"\n  Hint{f' {number}' if number > 1 else ''}: {tier}"
        return text

    def _repr_html_(self) -> str:
        colour, mark = ("#1a7f37", "✔ Passed") if self.passed else ("#b35900", "✘ Not yet")
        hints = ""
        if self.hints:
            hints = f"<div><b>Hint:</b> {_markdown(self.hints[0])}</div>"
            for tier in self.hints[1:]:
                hints += f"<details><summary>Another hint</summary>{_markdown(tier)}</details>"
        details = (f"<details><summary>Details</summary><pre>{html.escape(self.details)}</pre></details>"
                   if self.details else "")
        return (
            f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">'
            f'<b style="color:{colour}">{mark}</b> — Lab {self.lab} · {html.escape(self.title)}'
            f"<div>{_markdown(self.message)}</div>{hints}{details}</div>"
        )


_INFRASTRUCTURE = {
    "requests.exceptions.ConnectionError": "the course's Vault does not answer: it has stopped",
    "hvac.exceptions.VaultDown": "the course's Vault is sealed or stopped",
    "httpx.ConnectError": "the model server does not answer: it has stopped",
}


def infrastructure_failure(error: BaseException) -> str | None:
    """A one-line account of ``error`` when the course's infrastructure failed, not the learner's answer."""
    url = str(getattr(getattr(error, "request", None), "url", "") or "")
    if url.startswith(("http+docker", "http+unix")):  # the Docker SDK speaks requests too: not Vault
        return None
    for cls in type(error).__mro__:
        what = _INFRASTRUCTURE.get(f"{cls.__module__}.{cls.__qualname__}")
        if what:
            start = ("start it again with `glassbox vault up` in a terminal, or by running the lab's first cell; "
                     "a dev Vault comes back empty, so then run the lab from the top" if "Vault" in what
                     else "re-run the cell that starts the server, then this cell")
            return f"{what}. This is not your answer's fault: {start}."
    return None


def _record(feedback: Feedback) -> Feedback:
    from glassbox.course import progress

    progress.record(feedback)
    return feedback


def exercise(lab: str, name: str, title: str, hint: Hint = None) -> Callable[[Callable], Callable[..., Feedback]]:
    """Turn a check function into a self-check returning :class:`Feedback` and recording progress.

    ``hint`` (tiers) is the exercise's own hint: shown for a stub answer, and when the learner's code raised.
    """
    own_hints = _tiers(hint)

    def decorate(check: Callable) -> Callable[..., Feedback]:
        @functools.wraps(check)
        def run(*args, **kwargs) -> Feedback:
            try:
                detail = check(*args, **kwargs)
                feedback = Feedback(lab, name, title, True, detail if isinstance(detail, str) else "well done.")
            except _StillStub as failure:
                feedback = Feedback(lab, name, title, False, failure.what,
                                    failure.hints or own_hints or ("Replace the `...` with your answer, then run "
                                                                   "the cell again.",))
            except _CheckFailed as failure:
                feedback = Feedback(lab, name, title, False, failure.what, failure.hints)
            except Exception as error:  # a learner's unexpected object must not end in a traceback
                down = infrastructure_failure(error)
                if down:  # not the learner's answer: nothing is recorded
                    return Feedback(lab, name, title, False, down)
                feedback = Feedback(
                    lab, name, title, False,
                    f"the check could not read your answer ({type(error).__name__}: {error}).",
                    ("Re-run the cells above in order, then compare your answer with the exercise's instructions.",
                     *own_hints),
                    details="".join(traceback.format_exception(error)),
                )
            return _record(feedback)

        run.exercise = (lab, name, title)
        run.hints = own_hints
        return run

    return decorate


def _said(error: BaseException) -> str:
    """What the exception says, for a message: hvac's errors without a body say ``None, on get URL``."""
    text = str(error)
    if text.startswith("None, on "):
        text = text[len("None, "):]
    return f": {text[:400]}" if text else ""


def raised(check: Callable, error: BaseException, meaning: str) -> Feedback:
    """The feedback for an exercise whose code raised ``error`` before ``check`` could run."""
    lab, name, title = check.exercise
    down = infrastructure_failure(error)
    if down:
        return Feedback(lab, name, title, False, down)
    feedback = Feedback(
        lab, name, title, False,
        f"your code raised `{type(error).__module__}.{type(error).__qualname__}`{_said(error)}. {meaning}",
        check.hints or ("Read the library's message above: it names what it refused.",),
        details="".join(traceback.format_exception(error)),
    )
    return _record(feedback)
