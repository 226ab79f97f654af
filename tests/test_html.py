"""`make html`: the executed solutions as one HTML page each, plus an index that links them in order."""

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from glassbox.course import html

REPO = Path(__file__).resolve().parents[1]
PNG = base64.b64encode(bytes.fromhex(  # a 1x1 red pixel
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003"
    "010100c9fe92ef0000000049454e44ae426082")).decode()


class _Page(HTMLParser):
    """The text a reader sees, the links and the images of a page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.text, self.links, self.images, self.title = [], [], [], None
        self._in_title = False
        self.feed(text)
        self.text = "".join(self.text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title = data
        self.text.append(data)


def _page(path: Path) -> _Page:
    return _Page(path.read_text(encoding="utf-8"))


def _solution(heading: str, printed: str, executed: bool = True) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    code = nbformat.v4.new_code_cell("print('...')\nplot()")
    if executed:
        code.execution_count = 1
        code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed + "\n"),
                        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {heading}\n\n**Time:** 5 minutes."), code]
    return nb


@pytest.fixture
def solutions(tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    nbformat.write(_solution("Lab 00 – First & foremost", "accuracy 0.912 <best>"), folder / "00-first.ipynb")
    nbformat.write(_solution("Lab 01 – Second", "auc 0.955"), folder / "01-second.ipynb")
    return folder


def test_one_page_per_solution_with_its_outputs_and_an_index(solutions, tmp_path):
    out = tmp_path / "html"
    pages = html.render(solutions, out)
    assert pages == [out / "00-first.html", out / "01-second.html", out / "index.html"]

    first = _page(out / "00-first.html")
    assert first.title == "Lab 00 – First & foremost"
    assert "accuracy 0.912 <best>" in first.text  # the committed output, escaped in the page, shown as printed
    assert f"data:image/png;base64,{PNG}" in first.images  # plots are embedded: one file per page

    index = _page(out / "index.html")
    assert index.links == ["00-first.html", "01-second.html"]
    assert "Lab 00 – First & foremost (5 minutes)" in index.text and "Lab 01 – Second (5 minutes)" in index.text


def test_pages_link_to_the_index_and_their_neighbours(solutions, tmp_path):
    out = tmp_path / "html"
    html.render(solutions, out)
    first, second = _page(out / "00-first.html"), _page(out / "01-second.html")
    assert first.links[:2] == ["index.html", "01-second.html"]
    assert second.links[:2] == ["index.html", "00-first.html"]
    for link in first.links[:2] + second.links[:2]:
        assert (out / link).exists()


def test_a_removed_solution_loses_its_page(solutions, tmp_path):
    out = tmp_path / "html"
    html.render(solutions, out)
    (solutions / "01-second.ipynb").unlink()
    html.render(solutions, out)
    assert sorted(path.name for path in out.glob("*.html")) == ["00-first.html", "index.html"]


def test_an_unexecuted_solution_is_rendered_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "solutions"
    folder.mkdir()
    nbformat.write(_solution("Lab 06 – Not run", "never printed", executed=False), folder / "06-not-run.ipynb")
    html.render(folder, tmp_path / "html")
    assert "06-not-run.ipynb has not been executed" in capsys.readouterr().err


def test_no_solutions_is_an_error_not_an_empty_site(tmp_path):
    with pytest.raises(FileNotFoundError):
        html.render(tmp_path, tmp_path / "html")


def _stream_lines(notebook) -> list[str]:
    lines = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                lines += [line.strip() for line in output.text.splitlines() if line.strip() and "\x1b" not in line]
    return lines


def test_the_course_solutions_render_with_their_outputs(tmp_path):
    """What `make html` runs: every solution of the repository becomes a page showing its printed outputs."""
    out = tmp_path / "html"
    result = subprocess.run([sys.executable, "-m", "glassbox.course.html", "--solutions", str(REPO / "solutions"),
                             "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    solutions = sorted((REPO / "solutions").glob("*.ipynb"))
    assert solutions, "the repository has no solutions"
    assert sorted(out.glob("*.html")) == sorted([out / f"{path.stem}.html" for path in solutions] + [out / "index.html"])
    assert _page(out / "index.html").links == [f"{path.stem}.html" for path in solutions]
    for path in solutions:
        notebook = nbformat.read(path, as_version=4)
        page = _page(out / f"{path.stem}.html")
        assert page.title == html.title(notebook, path.stem) and re.match(r"Lab \d\d", page.title), path.name
        missing = [line for line in _stream_lines(notebook) if line not in page.text]
        assert not missing, f"{path.name}: printed output missing from its page: {missing[:3]}"
