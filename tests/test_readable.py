"""The chapters read cleanly where learners open them (tools/readable.py).

Each chapter is exported with nbconvert's plain Markdown exporter, committed outputs included,
as JupyterLab, Colab, VS Code and GitHub show it: no MyST role or directive, no progress bar
frozen at 0%, no NumPy repr, no placeholder, nothing addressed to maintainers, at most 3
recording calls in a code cell, and at least 3 results paragraphs rendered from the run. The
learner copies of ``make workshop`` pass the same test (their outputs are cleared).
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers.notebook import RESULTS_KEY
from tools import readable, runner, workshop

NOTEBOOKS = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_every_chapter_reads_cleanly_in_a_plain_frontend(nb):
    assert readable.notebook_problems(nb) == []


def _report(text: str) -> object:
    return new_output("display_data", data={"text/markdown": text, "text/plain": text},
                      metadata={RESULTS_KEY: {"acc": 0.91}})


def _clean(path) -> nbformat.NotebookNode:
    report = new_code_cell('#@title Results\nreport("Accuracy {acc:.2f}.", acc=acc)')
    report.metadata.update(readable.REPORT_METADATA, tags=["remove-input"])
    report.outputs = [_report("Accuracy **0.91**.")]
    nb = new_notebook(cells=[new_markdown_cell("# A chapter\n\nSee [the glossary](../book/glossary.md#band)."),
                             report, new_code_cell("x = 1"), new_code_cell("y = 2")])
    nb.cells[2].outputs = [_report("Loss 0.3.")]
    nb.cells[3].outputs = [_report("Time 2 s.")]
    nbformat.write(nb, path)
    return nb


@pytest.mark.parametrize(("where", "text", "why"), [
    ("markdown", "The accuracy is {glue:text}`acc:.3f`.", "a MyST role"),
    ("markdown", "```{footbibliography}\n```", "a MyST directive fence"),
    ("markdown", "**Time:** filled in from this chapter's measured run time when the book is built.",
     "the Time placeholder"),
    ("markdown", "As issue 18 asked, we measure it.", "an issue number"),
    ("markdown", "See `shared/notes/anchors.md`.", "a note meant for maintainers"),
    ("stream", "epochs:   0%|          | 0/3 [00:00<?, ?it/s]", "a progress bar saved at 0%"),
    ("result", "np.float64(0.992)", "a NumPy repr"),
])
def test_the_plain_render_check_fails_when_a_fault_is_put_back(tmp_path, where, text, why):
    path = tmp_path / "chapter.ipynb"
    nb = _clean(path)
    assert readable.notebook_problems(path) == []
    if where == "markdown":
        nb.cells.append(new_markdown_cell(text))
    elif where == "stream":
        nb.cells[2].outputs.append(new_output("stream", name="stderr", text=text))
    else:
        nb.cells[2].outputs.append(new_output("execute_result", data={"text/plain": text},
                                              execution_count=1))
    nbformat.write(nb, path)
    problems = readable.notebook_problems(path)
    assert len(problems) == 1 and why in problems[0], problems


def test_teaching_cells_record_little_and_report_cells_are_collapsed(tmp_path):
    path = tmp_path / "chapter.ipynb"
    nb = _clean(path)
    nb.cells[2].source = "\n".join(f"glue('k{i}', {i})" for i in range(4))
    nb.cells.append(new_code_cell('#@title Results: new\nreport("x")'))  # no metadata yet
    nbformat.write(nb, path)
    problems = readable.notebook_problems(path)
    assert any("4 recording calls (at most 3" in p for p in problems)
    assert any("without its collapsed-source metadata" in p for p in problems)
    assert readable.tidy(path) and not readable.tidy(path)  # idempotent
    assert len(readable.notebook_problems(path)) == 1  # the recording calls remain
    assert readable.recording_calls("notebook.report('a', x=1)\nrecord(y=2)\nprint(3)") == 2


def test_a_chapter_needs_three_results_paragraphs(tmp_path):
    path = tmp_path / "chapter.ipynb"
    nb = _clean(path)
    nb.cells[3].outputs = []
    nbformat.write(nb, path)
    assert readable.notebook_problems(path) == [
        "chapter.ipynb: 2 results paragraphs rendered from the run (at least 3)"]
    assert readable.notebook_problems(path, outputs=False) == []


def test_the_workshop_copies_read_cleanly_too(tmp_path):
    copies = workshop.write_workshop(NOTEBOOKS, tmp_path / "workshop")
    assert copies, "no learner copy written"
    problems = [p for path in sorted((tmp_path / "workshop").glob("*.ipynb"))
                for p in readable.notebook_problems(path, outputs=False)]
    assert problems == []
