"""Lab 03's self-checks, run on the lab's own cells: the solution passes, the stub and every catalogued mistake
get "not yet" with feedback that names them, and a skipped or wrong exercise crashes no later cell.

The notebook's code cells run once, in one namespace, in this process (one thread, the Agg backend); a snapshot
of the namespace is kept before each exercise cell, so a mistake or a stub costs only its own cell (and, for the
skip matrix, the cells after it).
"""

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import nbformat
import numpy as np
import pytest
import shap
from lime.lime_tabular import LimeTabularExplainer
from sklearn.ensemble import RandomForestClassifier
from threadpoolctl import threadpool_limits

import glassbox.checks.lab03 as checks
from glassbox.course.build import BEGIN, END, STUB, lab_source
from glassbox.course.progress import exercises
from mistakes.lab03 import MISTAKES

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

NOTEBOOK = Path(__file__).resolve().parents[1] / "solutions" / "03-local-explanations.ipynb"
EXERCISES = [name for name, _ in exercises()["03"]]
CHECK_OF = {function.exercise[1]: function for function in vars(checks).values() if hasattr(function, "exercise")}


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))


def _run(source: str, namespace: dict):
    """Run one cell's source like a kernel: return the value of its last expression (or None)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace) if last else None
    plt.close("all")
    return value


def _with_blocks(source: str, codes) -> str:
    """``source`` with its solution block(s) replaced by ``codes`` (a string, or one string per block)."""
    codes = [codes] if isinstance(codes, str) else list(codes)
    out, inside = [], False
    for line in source.splitlines():
        if line.strip().startswith(BEGIN):
            inside = True
            out.extend(codes.pop(0).rstrip("\n").splitlines())
        elif line.strip().startswith(END):
            inside = False
        elif not inside:
            out.append(line)
    assert not codes, "more code blocks than solution blocks"
    return "\n".join(out)


def _exercise_of(source: str) -> str:
    for name in re.findall(r"\b(check_\w+)\(", source):
        if hasattr(getattr(checks, name, None), "exercise"):
            return getattr(checks, name).exercise[1]
    raise AssertionError(f"an exercise cell without a check call:\n{source}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The solution run once: its cells, each exercise's cell and feedback, and a snapshot before each."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch, threadpool_limits(limits=1):
        patch.setenv("GLASSBOX_HOME", str(home))
        patch.chdir(NOTEBOOK.parent)
        cells = [cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
        namespace, before, feedback, position = {}, {}, {}, {}
        for number, source in enumerate(cells):
            if BEGIN in source:
                name = _exercise_of(source)
                before[name], position[name] = dict(namespace), number
            result = _run(source, namespace)
            if BEGIN in source:
                feedback[name] = result
        yield SimpleNamespace(cells=cells, ns=namespace, before=before, feedback=feedback, position=position)


def _try(lab, name, codes, *, rest=False):
    """Run exercise ``name``'s cell with ``codes`` in place of its solution, from the snapshot before it; with
    ``rest``, run every later cell too. Returns the exercise's feedback and the namespace."""
    namespace = dict(lab.before[name])
    source = lab.cells[lab.position[name]]
    with threadpool_limits(limits=1):
        feedback = _run(lab_source(source) if codes is None else _with_blocks(source, codes), namespace)
        if rest:
            for later in lab.cells[lab.position[name] + 1:]:
                _run(later, namespace)
    return feedback, namespace


def _says(feedback, *phrases):
    text = (feedback.message + " " + (feedback.hint or "")).lower()
    assert not feedback, feedback
    assert feedback.hints, f"a failing check must say how to fix it: {feedback!r}"
    assert "could not read your answer" not in feedback.message, feedback
    missing = [phrase for phrase in phrases if phrase.lower() not in text]
    assert not missing, f"{missing} not in {feedback!r}"


# ---- the solution, the stubs, the catalogue -------------------------------------------------------------------
def test_every_exercise_has_its_own_cell_and_the_solution_passes_it(lab):
    assert list(lab.feedback) == EXERCISES  # one cell per exercise, in the order the checks are defined
    assert all(lab.feedback.values()), [f for f in lab.feedback.values() if not f]
    assert len(EXERCISES) == 8


def test_the_solutions_messages_carry_the_measured_numbers(lab):
    assert "towards default: days_in_collections" in lab.feedback["lime-seeded"].message
    assert "1000 rows" in lab.feedback["shap-additivity"].message
    assert "ROC AUC 0.849" in lab.feedback["leak-removed"].message
    assert "selection rate 0.052, true positive rate 0.104, false positive rate 0.015" in \
        lab.feedback["metric-frame"].message


@pytest.mark.parametrize("name", EXERCISES)
def test_the_untouched_stub_says_not_yet_with_the_exercises_hint(lab, name):
    feedback, _ = _try(lab, name, None)
    _says(feedback, "still the stub")
    assert feedback.hints == CHECK_OF[name].hints, feedback


@pytest.mark.parametrize("mistake", MISTAKES, ids=[f"{m.exercise}: {m.mistake}" for m in MISTAKES])
def test_each_catalogued_mistake_gets_not_yet_naming_it(lab, mistake):
    feedback, _ = _try(lab, mistake.exercise, mistake.code)
    _says(feedback, *mistake.says)


def test_the_catalogue_has_three_mistakes_per_exercise_and_one_to_run_to_the_end():
    for name in EXERCISES:
        entries = [m for m in MISTAKES if m.exercise == name]
        assert len(entries) >= 3, name
        assert sum(m.to_the_end for m in entries) == 1, name
    assert {m.exercise for m in MISTAKES} == set(EXERCISES)
    assert len({m.mistake for m in MISTAKES}) == len(MISTAKES)


@pytest.mark.parametrize("name", EXERCISES)
def test_no_stub_line_or_first_hint_holds_a_solution_line(lab, name):
    source = lab.cells[lab.position[name]]
    block = source[source.index(BEGIN):source.index(END)].splitlines()[1:]
    solution = [line.strip() for line in block if line.strip() and not line.strip().startswith(STUB)]
    stubs = " ".join(line.strip()[len(STUB):].split("#", 1)[-1] for line in block if line.strip().startswith(STUB))
    first_hint = CHECK_OF[name].hints[0]
    for line in solution:
        expression = line.split("=", 1)[-1].strip() if "=" in line else line
        if len(expression) > 3:
            assert expression not in stubs and expression not in first_hint, (name, expression)


# ---- the skip matrix and wrong answers ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXERCISES)
def test_the_lab_runs_to_its_end_with_one_exercise_left_as_the_stub(lab, name):
    feedback, namespace = _try(lab, name, None, rest=True)
    assert not feedback
    assert "compare" in namespace  # the last code cell ran


def test_the_lab_runs_to_its_end_with_every_exercise_wrong(lab):
    wrong = {m.exercise: m for m in MISTAKES if m.to_the_end}
    namespace = dict(lab.before[EXERCISES[0]])
    outcomes = {}
    with threadpool_limits(limits=1):
        for source in lab.cells[lab.position[EXERCISES[0]]:]:
            if BEGIN in source:
                name = _exercise_of(source)
                outcomes[name] = _run(_with_blocks(source, wrong[name].code), namespace)
            else:
                _run(source, namespace)
    assert set(outcomes) == set(EXERCISES) and not any(outcomes.values()), outcomes
    for name, feedback in outcomes.items():
        if name == "metric-reading":  # Exercise 7's table is wrong too: the reading is not judged on it
            _says(feedback, "no table to read yet", "Exercise 7")
        else:
            _says(feedback, *wrong[name].says)


# ---- checks on objects the notebook does not build -----------------------------------------------------------
def test_lime_seed_given_as_a_random_state_object_passes(lab):
    ns = lab.ns
    explainer = LimeTabularExplainer(ns["X_train"].to_numpy(), feature_names=ns["features"],
                                     class_names=ns["class_names"], mode="classification",
                                     random_state=np.random.RandomState(7))
    explanation = explainer.explain_instance(ns["row"].to_numpy(), ns["predict_proba"], num_features=6,
                                             num_samples=300)
    assert checks.check_lime_explanation(explainer, explanation, ns["features"], ns["row"], ns["X_train"])
    assert not checks.check_lime_explanation({"random_state": 0}, explanation, ns["features"], ns["row"], ns["X_train"])


def test_lime_of_another_row_fails_even_when_it_differs_from_row_only_after_two_decimals(lab):
    ns = lab.ns
    row = ns["row"]
    _says(checks.check_lime_explanation(ns["lime_explainer"], ns["lime_exp"], ns["features"], ns["X_test"].iloc[0],
                                        ns["X_train"]),
          "another applicant")
    nudged = row.copy()
    nudged.iloc[0] += 0.001  # lime keeps the row rounded to two decimals: this is still the same applicant
    assert checks.check_lime_explanation(ns["lime_explainer"], ns["lime_exp"], ns["features"], nudged, ns["X_train"])


@pytest.fixture(scope="module")
def forest_values(lab):
    """A random forest's TreeExplainer output: one column of SHAP values per class (multi-output)."""
    ns = lab.ns
    with threadpool_limits(limits=1):
        forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(ns["X_train"],
                                                                                         ns["y_train"])
        return shap.TreeExplainer(forest)(ns["X_test"].iloc[:20])


def test_waterfall_of_a_multi_output_model(lab, forest_values):
    X = lab.ns["X_test"]
    assert checks.check_waterfall_input(forest_values[3, :, 1], X, 3)  # one row and one class
    _says(checks.check_waterfall_input(forest_values[3, :, 1], X, 4), "another applicant")
    _says(checks.check_waterfall_input(forest_values[3], X, 3), "2 outputs", "class")
    _says(checks.check_waterfall_input(forest_values, X, 3), "20 rows and 2 outputs")
    with pytest.raises(Exception):  # the mistake the check prevents: shap itself refuses it
        shap.plots.waterfall(forest_values[3], show=False)


def test_additivity_on_reordered_rows_fails(lab):
    ns = lab.ns
    sv, model, X = ns["shap_values"], ns["model"], ns["X_test"]
    reconstructed, output = sv.base_values + sv.values.sum(axis=1), model.decision_function(X)
    _says(checks.check_additivity(reconstructed[::-1], output, model, X), "differs from the model's output")
    _says(checks.check_additivity(reconstructed, output[::-1], model, X), "not the model's log-odds")


def test_metric_frame_with_a_single_metric_or_other_groups_fails(lab):
    from fairlearn.metrics import MetricFrame, selection_rate

    ns = lab.ns
    single = MetricFrame(metrics=selection_rate, y_true=ns["y_test"], y_pred=ns["y_pred"],
                         sensitive_features=ns["groups"])
    _says(checks.check_metric_frame(single, single.difference(), ns["y_test"], ns["y_pred"], ns["groups"]),
          "single metric", "dict")
    by_branch = MetricFrame(metrics={"s": selection_rate}, y_true=ns["y_test"], y_pred=ns["y_pred"],
                            sensitive_features=ns["X_test"]["newsletter_opt_in"] + 2)
    _says(checks.check_metric_frame(by_branch, by_branch.difference(), ns["y_test"], ns["y_pred"], ns["groups"]),
          "has the groups")


def _leak_check(ns, model):
    return checks.check_leak_removed(model, ns["data"].leaky_feature, ns["features"], ns["X_train"], ns["y_train"],
                                     ns["X_test"], ns["y_test"], ns["params"])


def test_leak_removed_refits_the_same_model_and_refuses_any_other(lab):
    from sklearn.ensemble import HistGradientBoostingClassifier

    ns = lab.ns
    clean = ns["clean_features"]
    with threadpool_limits(limits=1):
        assert _leak_check(ns, HistGradientBoostingClassifier(**ns["params"]).fit(ns["X_train"][clean],
                                                                                  ns["y_train"]))
        other = dict(ns["params"], learning_rate=0.05)
        _says(_leak_check(ns, HistGradientBoostingClassifier(**other).fit(ns["X_train"][clean], ns["y_train"])),
              "not the same model")
        forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(ns["X_train"][clean], ns["y_train"])
        _says(_leak_check(ns, forest), "not the same model")
        on_test = HistGradientBoostingClassifier(**ns["params"]).fit(ns["X_test"][clean], ns["y_test"])
        _says(_leak_check(ns, on_test), "fitted on the test rows", "not held-out")


def _frame_of(ns, y_pred):
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

    return MetricFrame(metrics={"sel": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
                       y_true=ns["y_test"], y_pred=y_pred, sensitive_features=ns["groups"])


def test_metric_reading_judges_only_the_clean_models_table(lab):
    ns = lab.ns
    y_test, groups = ns["y_test"], ns["groups"]
    clean = ns["y_pred"]
    assert checks.check_metric_reading("b", _frame_of(ns, clean), y_test, clean, groups)
    _says(checks.check_metric_reading("c", _frame_of(ns, clean), y_test, clean, groups), "not quite")
    leaky = ns["model"].predict(ns["X_test"])  # what section 7 uses while Exercise 5 is not done
    for answer in "bc":  # neither is judged: the options describe another table
        _says(checks.check_metric_reading(answer, _frame_of(ns, leaky), y_test, leaky, groups),
              "not the clean model's", "Exercise 5")
    _says(checks.check_metric_reading("b", ..., y_test, clean, groups), "no table to read yet", "Exercise 7")
    _says(checks.check_metric_reading("b", _frame_of(ns, leaky), y_test, clean, groups), "no table to read yet")
