"""Shared fixtures: tiny notebooks for the runner, and an isolated course root."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook


def pytest_addoption(parser):
    parser.addoption("--executed-dir", default="_build/executed",
                     help="where tests/test_notebooks.py writes the executed notebooks")


@pytest.fixture
def executed_dir(request) -> Path:
    return Path(request.config.getoption("--executed-dir")).resolve()


@pytest.fixture(autouse=True)
def course_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own DL_HANDBOOK_HOME, so none writes to the user's cache."""
    home = tmp_path / "course-home"
    monkeypatch.setenv("DL_HANDBOOK_HOME", str(home))
    return home


def write_notebook(path: Path, *sources: str, budget: dict | None = None) -> Path:
    """A notebook with a `parameters` cell (profile = "quick") followed by ``sources``."""
    nb = new_notebook()
    params = new_code_cell('profile = "quick"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if budget:
        nb.metadata["handbook"] = {"budget_s": budget}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny_course(tmp_path) -> Path:
    """A two-notebook course: book/_toc.yml + notebooks/, the same layout as the repository."""
    root = tmp_path / "course"
    write_notebook(root / "notebooks" / "a_ok.ipynb",
                   "from helpers.notebook import glue\n"
                   "glue('answer', 42)\nglue('ratio', 0.25)\nglue('name', profile)",
                   budget={"quick": 60})
    write_notebook(root / "notebooks" / "b_ok.ipynb", "print('hello')")
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "book" / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n"
        "  - file: notebooks/a_ok\n  - file: notebooks/b_ok\n")
    return root


def pytest_terminal_summary(terminalreporter, config):
    """After the notebook runs, print the per-notebook wall-time table."""
    from helpers.runner import TIMINGS_FILE, format_time_table

    out = Path(config.getoption("--executed-dir"))
    if (out / TIMINGS_FILE).is_file() and config.getoption("-m") == "notebook":
        terminalreporter.write_sep("=", "notebook wall time (quick profile)")
        terminalreporter.write_line(format_time_table(out))
