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


def test_the_documentation_site_builds_strictly(tmp_path):
    """mkdocs build --strict: every page in the navigation, every API reference resolved from the
    docstrings, no broken link or unknown reference."""
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "api" / "hardware" / "index.html").stat().st_size > 10_000
    assert "arithmatex" in (tmp_path / "equations" / "index.html").read_text()


def test_no_internal_wording_where_users_read():
    """Pages, notebooks, configs and benchmark docstrings speak of neurosim, not of its issue tracker."""
    import re

    pattern = re.compile(r"\bissue \d+|\btargets? P\d|\bP\d[ab]?\b(?= of)|foundation's", re.IGNORECASE)
    paths = [*PAGES, *NOTEBOOKS, *(ROOT / "models").glob("*.toml"), *(ROOT / "benchmarks").glob("*.py")]
    offenders = [f"{p.name}: {m.group(0)}" for p in paths for m in pattern.finditer(p.read_text())]
    assert not offenders, offenders
