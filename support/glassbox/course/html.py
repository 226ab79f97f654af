"""Render the executed solutions to HTML, for reading and projecting without Jupyter (``make html``).

    python -m glassbox.course.html [--solutions solutions] [--out build/html]

One page per solution (``NN-name.html``, the committed outputs as they are: nothing is executed) and an
``index.html`` linking them in order. Plots are embedded in the pages, so a page is a single file; only
typeset maths and interactive widgets need the network, which plain reading does not.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

_NAV_STYLE = ("font:14px sans-serif;padding:6px 12px;border-bottom:1px solid #ccc;"
              "display:flex;gap:1.5em;background:#f7f7f7")


def title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    """The notebook's first Markdown heading, else ``fallback``."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#+\s+(.+?)\s*$", cell.source, flags=re.MULTILINE)
            if match:
                return match.group(1)
    return fallback


def _duration(notebook: nbformat.NotebookNode) -> str | None:
    """The lab's stated time (``**Time:** about 45 minutes.``), if its opening says so."""
    for cell in notebook.cells[:3]:
        match = re.search(r"\*\*Time:\*\*\s*([^.(\n]+)", cell.source)  # up to a full stop or an aside
        if cell.cell_type == "markdown" and match:
            return match.group(1).strip()
    return None


def _executed(notebook: nbformat.NotebookNode) -> bool:
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    return not code or any(cell.get("execution_count") for cell in code)


def _nav(links: list[tuple[str, str]]) -> str:
    items = "".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a>' for text, href in links)
    return f'<nav class="glassbox-nav" style="{_NAV_STYLE}">{items}</nav>'


def _with_nav(page: str, nav: str) -> str:
    body = re.search(r"<body[^>]*>", page)
    return page[: body.end()] + nav + page[body.end():] if body else nav + page


def _index(entries: list[tuple[str, str, str | None]]) -> str:
    rows = "\n".join(f'<li><a href="{html.escape(href)}">{html.escape(text)}</a>'
                     + (f" <small>({html.escape(duration)})</small>" if duration else "") + "</li>"
                     for text, href, duration in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Glassbox Labs: solutions</title>
<style>body {{ font: 16px/1.5 sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em }}</style>
</head>
<body>
<h1>Glassbox Labs: solutions</h1>
<p>The course's solution notebooks with their outputs, for reading and projecting without Jupyter.
Learners work in copies of the notebooks of <code>labs/</code>, in <code>workspace/</code>.</p>
<ol>
{rows}
</ol>
</body>
</html>
"""


def render(solutions: Path = Path("solutions"), out: Path = Path("build/html")) -> list[Path]:
    """Write one page per solution notebook and ``index.html`` into ``out``; returns the pages, index last.

    Pages left in ``out`` by solutions that no longer exist are removed.
    """
    sources = sorted(Path(solutions).glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no notebooks in {solutions}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notebooks = [nbformat.read(path, as_version=4) for path in sources]
    titles = [title(notebook, path.stem) for notebook, path in zip(notebooks, sources)]
    hrefs = [f"{path.stem}.html" for path in sources]

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    pages = []
    for number, (path, notebook) in enumerate(zip(sources, notebooks)):
        if not _executed(notebook):
            print(f"warning: {path} has not been executed; its page shows no outputs", file=sys.stderr)
        body, _ = exporter.from_notebook_node(
            notebook, resources={"metadata": {"name": titles[number], "path": str(path.parent)}})
        links = [("All labs", "index.html")]
        if number > 0:
            links.append((f"← {titles[number - 1]}", hrefs[number - 1]))
        if number + 1 < len(sources):
            links.append((f"{titles[number + 1]} →", hrefs[number + 1]))
        page = out / hrefs[number]
        page.write_text(_with_nav(body, _nav(links)), encoding="utf-8")
        pages.append(page)

    for stale in sorted(set(out.glob("*.html")) - set(pages) - {out / "index.html"}):
        stale.unlink()
    index = out / "index.html"
    index.write_text(_index(list(zip(titles, hrefs, map(_duration, notebooks)))), encoding="utf-8")
    return pages + [index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glassbox.course.html", description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", default="solutions", type=Path)
    parser.add_argument("--out", default="build/html", type=Path)
    args = parser.parse_args(argv)
    pages = render(args.solutions, args.out)
    print(f"{len(pages) - 1} page(s) and an index written to {args.out}/ (open {args.out / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
