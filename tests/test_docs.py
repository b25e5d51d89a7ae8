"""Oracle: the documentation itself. Every python block in README.md and docs/*.md, and every code
cell of every notebook, runs here, so examples cannot drift from the code."""
from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_markdown_python_blocks_run(page):
    namespace = {"__name__": f"doc_{page.stem}"}
    for block in python_blocks(page):
        exec(compile(block, str(page), "exec"), namespace)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook):
    import matplotlib.pyplot as plt

    cells = json.loads(notebook.read_text())["cells"]
    namespace = {"__name__": f"nb_{notebook.stem}"}
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            exec(compile(source, f"{notebook.name}[cell {index}]", "exec"), namespace)
    plt.close("all")


def test_every_page_has_been_found():
    assert any(python_blocks(page) for page in PAGES)
    assert NOTEBOOKS, "no notebooks found"
