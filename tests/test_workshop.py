"""Workshop mode: learner notebooks without solutions (helpers.workshop, `make workshop`)."""

import zipfile

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import runner, workshop

NOTEBOOKS = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_chapter_gives_a_valid_learner_copy_without_solutions(path):
    original = nbformat.read(path, as_version=4)
    assert any(workshop.SOLUTION_TAG in c.metadata.get("tags", []) for c in original.cells), \
        f"{path.stem} has no cell tagged {workshop.SOLUTION_TAG!r}"
    student = workshop.student_notebook(original)
    nbformat.validate(student)
    assert workshop.find_leaks(student) == []
    assert any(workshop.EXERCISE_TAG in c.metadata.get("tags", []) for c in student.cells)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in student.cells if c.cell_type == "code")
    solutions = [c.source for c in original.cells if workshop.SOLUTION_TAG in c.metadata.get("tags", [])]
    text = "\n".join(c.source for c in student.cells)
    for solution in solutions:  # no line of a solution survives (its opening lines at least)
        for line in [ln for ln in solution.splitlines() if len(ln.strip()) > 30][:3]:
            assert line not in text, f"{path.stem}: {line!r}"
    parameters = [c for c in student.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1  # the set-up stays


def test_an_untagged_solution_is_caught_as_a_leak(tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("## Exercises\n\n1. Why?"),
        new_markdown_cell("<details>\n<summary>Solutions</summary>\n\n1. Because.\n</details>"),  # untagged
    ])
    leaks = workshop.find_leaks(workshop.student_notebook(nb))
    assert leaks and "cell 1" in leaks[0] and "Solutions" in leaks[0]
    path = tmp_path / "leaky.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="leaky.ipynb: solution text would reach the learners"):
        workshop.write_workshop([path], tmp_path / "out")


def test_marked_lines_become_a_stub_and_the_instructions_stay():
    cell = new_code_cell("# Exercise: count the parameters of `net`.\n"
                         "def count(net):\n    # BEGIN SOLUTION\n"
                         "    return sum(p.numel() for p in net.parameters())\n    # END SOLUTION\n")
    student = workshop.student_notebook(new_notebook(cells=[cell]))
    assert student.cells[0].source == "# Exercise: count the parameters of `net`.\ndef count(net):\n    ..."
    assert workshop.EXERCISE_TAG in student.cells[0].metadata["tags"]
    assert workshop.find_leaks(student) == []
    assert workshop.find_leaks(new_notebook(cells=[cell]))  # the chapter itself holds solution text
    with pytest.raises(ValueError, match="without"):
        workshop.student_notebook(new_notebook(cells=[new_code_cell("x = 1\n# BEGIN SOLUTION\ny = 2")]))


def test_write_workshop_writes_one_copy_per_chapter_and_a_zip(tmp_path):
    archive = workshop.write_workshop(NOTEBOOKS, tmp_path / "workshop")
    assert sorted(p.name for p in (tmp_path / "workshop").glob("*.ipynb")) == sorted(p.name for p in NOTEBOOKS)
    with zipfile.ZipFile(archive) as zf:
        assert len(zf.namelist()) == len(NOTEBOOKS)


def test_a_learner_copy_runs_with_its_exercise_cells_skipped(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("DL_HANDBOOK_HOME", str(tmp_path / "home"))
    chapter = next(p for p in NOTEBOOKS if p.stem == "00_setup")
    student = workshop.student_notebook(nbformat.read(chapter, as_version=4))
    student.cells = [c for c in student.cells if workshop.EXERCISE_TAG not in c.metadata.get("tags", [])]
    NotebookClient(student, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(chapter.parent)}}).execute()
    errors = [o for c in student.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_outlines_read_every_chapters_header_and_exercises():
    outlines = [workshop.outline(p) for p in NOTEBOOKS]
    for o in outlines:
        assert o.title and o.objectives and o.prerequisites, o.stem
        assert o.questions, f"{o.stem}: no exercises found under '## Exercises'"
    edges = workshop.prerequisite_edges(outlines)
    assert ("03", "05") in edges and ("04", "13") in edges
    assert all(a < b for a, b in edges)  # a chapter builds on earlier ones only


def test_schedule_packs_chapters_in_order_and_overflows_to_self_study():
    outlines = [workshop.Outline(f"{n:02d}_x", f"{n:02d}", "x", ("o",), "none", ("q?",), 1200)
                for n in range(6)]
    timings = {f"{n:02d}_x": {"seconds": 120.0} for n in range(6)}
    plan = workshop.schedule(outlines, timings, days=1, sessions_per_day=2, session_minutes=60)
    # each chapter: 10 min reading + 2 min run + 20 min exercises = 32 min: one per 60-min session
    assert plan["minutes"].tolist() == [32] * 6
    assert plan["slot"].tolist()[:2] == ["day 1, session 1", "day 1, session 2"]
    assert set(plan["slot"].tolist()[2:]) == {"self-study"}


def test_failure_modes_come_from_the_course_exception_classes():
    modes = dict(workshop.failure_modes())
    assert "train.DivergenceError" in modes and "notebook.MissingResultError" in modes
    assert all(text for text in modes.values())


def test_the_staged_book_has_the_facilitators_page(tmp_path):
    out, src = tmp_path / "executed", tmp_path / "book-src"
    out.mkdir()
    import json
    import shutil

    for nb in NOTEBOOKS:  # the committed outputs stand in for this build's executed copies
        shutil.copy(nb, out / nb.name)
    (out / runner.TIMINGS_FILE).write_text(json.dumps({nb.stem: {"seconds": 60.0, "profile": "quick"}
                                                       for nb in NOTEBOOKS}))
    runner.stage_book(runner.REPO_ROOT / "book", NOTEBOOKS, out, src)
    page = (src / "facilitator.md").read_text()
    assert (src / "facilitator-graph.png").stat().st_size > 1000
    for nb in NOTEBOOKS:
        assert f"(notebooks/{nb.stem}.ipynb)" in page
    assert "## A two-day schedule" in page and "DivergenceError" in page
    assert "| 60 | not measured yet (budget" in page  # quick run measured; full: the budget
    assert "](notebooks/03_cnn_training.ipynb)" in page and "](03_cnn_training.ipynb)" not in page
