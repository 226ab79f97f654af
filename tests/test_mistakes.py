"""Learners' mistakes, as learners make them, in real kernels; and the skip matrix.

For every lab:
- the catalogue (``tests/mistakes/labNN.py``) has at least three wrong answers per exercise, and exactly one
  of them is run to the end of the lab;
- every catalogued wrong answer, typed into its exercise cell and run, gets "not yet" with feedback that names
  it (its ``says`` phrases) and a hint: never "passed", never a traceback, never "could not read your answer";
  and the right answer typed after it passes (one kernel per lab, cells in order, as a learner retries);
- the lab with every exercise wrong at once (each exercise's ``to_the_end`` mistake) runs to its end with no
  error output;
- the skip matrix: for every exercise, the lab with only that exercise left as its stub runs to its end with
  no error output, and that exercise's check says "not yet";
- no ``# STUB:`` line and no first hint tier (the exercise's own, or one a mistake is shown) pastes a line of
  the solution;
- at least two exercises per lab are answered with an interpretation or a prediction (their checks use
  ``choose`` or ``expect_close``);
- the instructor guide's table of mistakes for the lab is the catalogue.

The kernel runs of the selected labs go two at a time in one pool (``labruns.run_all``), once per session.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from collections import defaultdict

import pytest

import labruns
from glassbox.course.build import STUB
from mistakes import Mistake

LABS = labruns.lab_numbers()
GUIDE = labruns.REPO / "solutions" / "INSTRUCTORS.md"


def catalogue(lab: str) -> list[Mistake]:
    try:
        return importlib.import_module(f"mistakes.lab{lab}").MISTAKES
    except ModuleNotFoundError:
        return []


def _is_thinking(check) -> bool:
    names = check.__wrapped__.__code__.co_names
    return "choose" in names or "expect_close" in names


# ---- the kernel runs: planned per lab, run once per session for every selected lab ----------------------------
class LabPlan:
    """The runs of one lab and, after they ran, what they showed."""

    def __init__(self, lab: str):
        self.lab = lab
        self.notebook = labruns.solution(lab)
        self.checks = labruns.checks(lab)
        self.cells = labruns.exercise_cells(self.notebook, lab)
        self.mistakes = [m for m in catalogue(lab) if m.exercise in self.cells]
        self.seen = {}          # (code cell, variant) -> executed cell, for the catalogue run
        self.runs = {}          # label -> labruns.Run

    def title(self, exercise: str) -> str:
        return self.checks[exercise].exercise[2]

    def jobs(self) -> list:
        base = labruns.code_sources(self.notebook)
        catalogue_run = [list(variants) for variants in base]
        self.positions = {}
        for exercise, index in self.cells.items():
            at = labruns.code_index(self.notebook, index)
            source = self.notebook.cells[index].source
            wrong = [labruns.replace_blocks(source, m.code) for m in self.mistakes if m.exercise == exercise]
            catalogue_run[at] = wrong + [source]
            self.positions[exercise] = at
        jobs = [labruns.Job(self.lab, "catalogue", catalogue_run,
                            on_cell=lambda at, n, cell: self.seen.__setitem__((at, n), cell))]
        all_wrong = [list(variants) for variants in base]
        for m in self.mistakes:
            if m.to_the_end:
                source = self.notebook.cells[self.cells[m.exercise]].source
                all_wrong[self.positions[m.exercise]] = [labruns.replace_blocks(source, m.code)]
        jobs.append(labruns.Job(self.lab, "all wrong", all_wrong))
        for exercise, at in self.positions.items():
            skipped = [list(variants) for variants in base]
            skipped[at] = [labruns.stub_of(self.notebook.cells[self.cells[exercise]].source)]
            jobs.append(labruns.Job(self.lab, f"skip {exercise}", skipped))
        return jobs


@pytest.fixture(scope="session")
def lab_runs(request):
    """``{lab: LabPlan}`` for every lab that the session's selected tests of this module need, run."""
    wanted = sorted({item.callspec.params["lab"] for item in request.session.items
                     if getattr(getattr(item, "module", None), "__name__", None) == __name__ and hasattr(item, "callspec")
                     and "lab" in item.callspec.params and "lab_runs" in item.fixturenames})
    plans = {lab: LabPlan(lab) for lab in wanted}
    jobs = [job for plan in plans.values() for job in plan.jobs()]
    for run in asyncio.run(labruns.run_all(jobs)):
        plans[run.lab].runs[run.label] = run
    return plans


def _feedback_problems(texts: list[str], says=()) -> list[str]:
    if not texts:
        return ["no self-check result is shown"]
    text = texts[-1]
    problems = []
    if not text.startswith("[NOT YET]"):
        problems.append(f"it says {text[:160]!r}")
    if "Hint:" not in text:
        problems.append("no hint")
    if "could not read your answer" in text:
        problems.append("the check could not read the answer")
    problems += [f"the feedback does not say {phrase!r}: {text[:300]!r}" for phrase in says
                 if phrase.lower() not in text.lower()]
    return problems


# ---- static: the catalogue, the hints, the thinking exercises, the guide ------------------------------------
@pytest.mark.parametrize("lab", LABS)
def test_the_catalogue_has_three_mistakes_per_exercise_and_one_run_to_the_end(lab):
    notebook, own = labruns.solution(lab), labruns.checks(lab)
    cells = labruns.exercise_cells(notebook, lab)
    problems = [f"exercise {name!r}: no code cell holds its solution block and calls its check"
                for name in own if name not in cells]
    by_exercise = defaultdict(list)
    for m in catalogue(lab):
        by_exercise[m.exercise].append(m)
        if m.exercise not in own:
            problems.append(f"{m.mistake!r} names exercise {m.exercise!r}, which lab {lab} does not have")
        elif m.exercise in cells:
            try:
                labruns.replace_blocks(notebook.cells[cells[m.exercise]].source, m.code)
            except ValueError as error:
                problems.append(f"{m.mistake!r}: {error}")
        if not m.says:
            problems.append(f"{m.mistake!r} names no phrase its feedback must hold")
    for name in own:
        found = by_exercise.get(name, [])
        if len(found) < 3:
            problems.append(f"exercise {name!r} has {len(found)} catalogued mistakes, not at least 3")
        if sum(m.to_the_end for m in found) != 1:
            problems.append(f"exercise {name!r} has {sum(m.to_the_end for m in found)} mistakes run to the end, "
                            "not exactly 1")
    assert problems == []


def _solution_lines(source: str) -> list[str]:
    """Code of the solution blocks that would give the answer away: whole lines and right-hand sides."""
    lines, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("# BEGIN SOLUTION"):
            inside = True
        elif stripped.startswith("# END SOLUTION"):
            inside = False
        elif inside and stripped and not stripped.startswith("#"):
            code = stripped.split("  #")[0].strip()
            lines.append(code)
            if "=" in code and "==" not in code.split("=", 1)[0]:
                lines.append(code.split("=", 1)[1].strip())
    return [re.sub(r"\s+", "", line) for line in lines if len(re.sub(r"\s+", "", line)) >= 15]


@pytest.mark.parametrize("lab", LABS)
def test_no_stub_line_and_no_first_hint_pastes_the_solution(lab):
    notebook, own = labruns.solution(lab), labruns.checks(lab)
    problems = []
    for name, index in labruns.exercise_cells(notebook, lab).items():
        source = notebook.cells[index].source
        solution = _solution_lines(source)
        stubs = [line.strip()[len(STUB):] for line in source.splitlines() if line.strip().startswith(STUB)]
        first_hint = own[name].hints[0] if own[name].hints else ""
        for where, text in [*((f"the stub line {s!r}", s) for s in stubs), ("the first hint", first_hint)]:
            flat = re.sub(r"\s+", "", text)
            problems += [f"exercise {name!r}: {where} pastes the solution's {line!r}"
                         for line in solution if line in flat]
        if not own[name].hints:
            problems.append(f"exercise {name!r} has no hint tiers of its own (@exercise(..., hint=(...)))")
    assert problems == []


@pytest.mark.parametrize("lab", LABS)
def test_at_least_two_exercises_ask_for_an_interpretation_or_a_prediction(lab):
    thinking = [name for name, check in labruns.checks(lab).items() if _is_thinking(check)]
    assert len(thinking) >= 2, f"lab {lab}'s interpretation or prediction exercises: {thinking}"


def _guide_mistakes(lab: str) -> set[str]:
    text = GUIDE.read_text(encoding="utf-8")
    section = re.search(rf"^### Lab {lab}\b.*?(?=^#{{1,3}} )", text + "\n# end", re.S | re.M)
    rows = re.findall(r"^\|((?:\\\||[^|\n])+)\|", section.group(0), re.M) if section else []   # \| escapes a pipe
    return {row.strip().replace("\\|", "|") for row in rows} - {"mistake", "---", "left the stub"}


@pytest.mark.parametrize("lab", LABS)
def test_the_guide_lists_exactly_the_catalogued_mistakes(lab):
    listed, catalogued = _guide_mistakes(lab), {m.mistake for m in catalogue(lab)}
    assert sorted(listed - catalogued) == [] and sorted(catalogued - listed) == [], (
        f"in the guide only: {sorted(listed - catalogued)}; in the catalogue only: {sorted(catalogued - listed)}")


# ---- in real kernels -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lab", LABS)
def test_every_catalogued_mistake_gets_not_yet_naming_it_then_the_answer_passes(lab, lab_runs):
    plan = lab_runs[lab]
    run = plan.runs["catalogue"]
    assert run.crash is None, run.crash
    problems = []
    numbers = defaultdict(int)
    for m in plan.mistakes:
        at, number = plan.positions[m.exercise], numbers[m.exercise]
        numbers[m.exercise] += 1
        cell = plan.seen.get((at, number))
        if cell is None:
            problems.append(f"{m.mistake!r}: never ran")
            continue
        texts = labruns.feedback_texts(cell, lab, plan.title(m.exercise))
        found = labruns.errors([cell]) + _feedback_problems(texts, m.says)
        solution = _solution_lines(plan.notebook.cells[plan.cells[m.exercise]].source)
        first_hints = [line[len("  Hint: "):] for text in texts[-1:] for line in text.splitlines()
                       if line.startswith("  Hint: ")]
        found += [f"its first hint pastes the solution's {line!r}" for hint in first_hints for line in solution
                  if line in re.sub(r"\s+", "", hint)]
        problems += [f"{m.exercise} / {m.mistake!r}: {problem}" for problem in found]
    for exercise, at in plan.positions.items():
        cell = plan.seen.get((at, numbers[exercise]))
        texts = labruns.feedback_texts(cell, lab, plan.title(exercise)) if cell else []
        if not texts or not texts[-1].startswith("[PASSED]"):
            problems.append(f"{exercise}: the right answer, typed after the mistakes, does not pass: {texts}")
    problems += [f"with the right answers: {error}" for error in labruns.errors(run.cells)]
    assert problems == []


@pytest.mark.parametrize("lab", LABS)
def test_the_lab_with_every_exercise_wrong_runs_to_its_end(lab, lab_runs):
    plan = lab_runs[lab]
    run = plan.runs["all wrong"]
    assert run.crash is None, run.crash
    problems = labruns.errors(run.cells)
    for exercise, at in plan.positions.items():
        texts = labruns.feedback_texts(run.cells[at], lab, plan.title(exercise))
        if not texts or not texts[-1].startswith("[NOT YET]"):
            problems.append(f"{exercise}: with its wrong answer the check shows {texts}")
    assert problems == []


@pytest.mark.parametrize("lab", LABS)
def test_the_skip_matrix_every_exercise_left_alone_as_its_stub(lab, lab_runs):
    plan = lab_runs[lab]
    problems = []
    for exercise, at in plan.positions.items():
        run = plan.runs[f"skip {exercise}"]
        if run.crash:
            problems.append(f"skip {exercise}: {run.crash}")
            continue
        problems += [f"skip {exercise}: {error}" for error in labruns.errors(run.cells)]
        problems += [f"skip {exercise}: {problem}" for problem in _feedback_problems(
            labruns.feedback_texts(run.cells[at], lab, plan.title(exercise)))]
    assert problems == []
