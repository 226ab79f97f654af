"""Executing a solution in place keeps widget state only when an output shows a widget."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from glassbox.course.execute import execute

BAR = "from tqdm.auto import tqdm\n"


def _executed(tmp_path, source: str) -> nbformat.NotebookNode:
    path = tmp_path / "notebook.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), path)
    execute(path, timeout=120)
    return nbformat.read(path, as_version=4)


def test_a_progress_bar_hidden_with_capture_output_leaves_no_widget_state(tmp_path):
    notebook = _executed(tmp_path, BAR + "from IPython.utils.capture import capture_output\n"
                                         "with capture_output():\n    total = sum(tqdm(range(3)))\nprint(total)")
    assert notebook.cells[0].outputs[0]["text"] == "3\n"
    assert "widgets" not in notebook.metadata


def test_a_shown_progress_bar_keeps_its_widget_state(tmp_path):
    notebook = _executed(tmp_path, BAR + "total = sum(tqdm(range(3)))")
    assert any("application/vnd.jupyter.widget-view+json" in output.get("data", {})
               for output in notebook.cells[0].outputs)
    assert "widgets" in notebook.metadata
