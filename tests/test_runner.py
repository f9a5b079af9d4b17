"""The notebook runner: execution, the not-executed check, staging the book, the CLI.

These prove the two promises of `make test`: a notebook that raises fails it, and a
notebook listed in the table of contents that was not executed fails it.
"""

import json
import os

import pytest
from papermill.exceptions import PapermillExecutionError

from helpers.notebook import read_glued
from tests.conftest import write_notebook
from tools import runner


def test_toc_notebooks_in_order(tiny_course):
    found = runner.toc_notebooks(tiny_course / "book" / "_toc.yml", tiny_course)
    assert [p.name for p in found] == ["a_ok.ipynb", "b_ok.ipynb"]


def test_toc_naming_a_missing_notebook_is_an_error(tiny_course):
    toc = tiny_course / "book" / "_toc.yml"
    toc.write_text(toc.read_text() + "  - file: notebooks/ghost\n")
    with pytest.raises(FileNotFoundError, match="notebooks/ghost"):
        runner.toc_notebooks(toc, tiny_course)


def test_execute_injects_profile_records_time_and_glue(tiny_course, tmp_path):
    out = tmp_path / "executed"
    run = runner.execute_notebook(tiny_course / "notebooks" / "a_ok.ipynb", out, "full")
    assert run.ok and run.profile == "full" and run.time_limit_s is None  # no full budget set
    assert read_glued(out / "a_ok.ipynb") == {"answer": 42, "ratio": 0.25, "name": "full"}
    timings = json.loads((out / runner.TIMINGS_FILE).read_text())
    assert timings["a_ok"]["seconds"] > 0


def test_a_notebook_that_raises_fails_execution_and_the_check(tiny_course, tmp_path):
    bad = write_notebook(tiny_course / "notebooks" / "c_bad.ipynb", "raise RuntimeError('boom')")
    out = tmp_path / "executed"
    with pytest.raises(PapermillExecutionError, match="boom"):
        runner.execute_notebook(bad, out, "quick")
    assert not json.loads((out / runner.TIMINGS_FILE).read_text())["c_bad"]["ok"]
    problems = runner.check_executed([bad], out, "quick")
    assert problems == [f"c_bad: raised during execution (see {out / 'c_bad.ipynb'})"]
    assert "FAILED" in runner.format_time_table(out)


def test_the_cli_fails_when_a_toc_notebook_raises(tiny_course, tmp_path, capsys):
    write_notebook(tiny_course / "notebooks" / "c_bad.ipynb", "1 / 0")
    toc = tiny_course / "book" / "_toc.yml"
    toc.write_text(toc.read_text() + "  - file: notebooks/c_bad\n")
    out = tmp_path / "executed"
    args = ["--toc", str(toc), "--root", str(tiny_course), "--out", str(out)]
    assert runner.main(["execute", *args]) == 1
    printed = capsys.readouterr()
    assert "ZeroDivisionError" in printed.err and "a_ok" in printed.out  # the others still ran
    assert runner.main(["check", *args]) == 1


def test_a_toc_notebook_that_was_not_executed_fails_check_and_stage(tiny_course, tmp_path):
    notebooks = runner.toc_notebooks(tiny_course / "book" / "_toc.yml", tiny_course)
    out = tmp_path / "executed"
    runner.execute_notebook(notebooks[0], out, "quick")  # b_ok is never executed
    assert runner.check_executed(notebooks, out, "quick") == [
        f"b_ok: not executed (no {out / 'b_ok.ipynb'})"]
    with pytest.raises(runner.NotExecutedError, match="b_ok.ipynb"):
        runner.stage_book(tiny_course / "book", notebooks, out, tmp_path / "src")
    args = ["--toc", str(tiny_course / "book" / "_toc.yml"), "--root", str(tiny_course),
            "--out", str(out)]
    assert runner.main(["check", *args]) == 1


def test_check_rejects_wrong_profile_stale_copy_and_a_blown_budget(tiny_course, tmp_path):
    nb = tiny_course / "notebooks" / "a_ok.ipynb"
    out = tmp_path / "executed"
    runner.execute_notebook(nb, out, "full")
    assert "executed with profile 'full', not 'quick'" in runner.check_executed([nb], out, "quick")[0]
    runner.execute_notebook(nb, out, "quick")
    assert runner.check_executed([nb], out, "quick") == []
    later = (out / "a_ok.ipynb").stat().st_mtime + 10
    os.utime(nb, (later, later))
    assert runner.check_executed([nb], out, "quick") == ["a_ok: source changed after it was executed"]
    os.utime(nb, (later - 20, later - 20))
    timings = json.loads((out / runner.TIMINGS_FILE).read_text())
    timings["a_ok"]["seconds"] = 1000.0  # budget is 60 s
    (out / runner.TIMINGS_FILE).write_text(json.dumps(timings))
    assert runner.check_executed([nb], out, "quick") == ["a_ok: took 1000 s, over 2x its 60 s budget"]
    assert "OVER BUDGET" in runner.format_time_table(out)


def test_stage_and_cli_happy_path(tiny_course, tmp_path, capsys):
    out, src = tmp_path / "executed", tmp_path / "book-src"
    args = ["--toc", str(tiny_course / "book" / "_toc.yml"), "--root", str(tiny_course),
            "--out", str(out), "--book-src", str(src)]
    assert runner.main(["execute", *args]) == 0
    assert runner.main(["check", *args]) == 0
    assert runner.main(["table", *args]) == 0
    assert runner.main(["stage", *args]) == 0
    printed = capsys.readouterr().out
    assert "all 2 toc notebooks executed" in printed and "total" in printed
    assert sorted(p.name for p in (src / "notebooks").iterdir()) == ["a_ok.ipynb", "b_ok.ipynb"]
    assert (src / "_toc.yml").is_file() and (src / "intro.md").is_file()
    staged = json.loads((src / "notebooks" / "a_ok.ipynb").read_text())
    assert staged["metadata"]["papermill"]["parameters"] == {"profile": "quick"}
    injected = [c for c in staged["cells"] if runner.INJECTED_TAG in c["metadata"].get("tags", [])]
    assert injected and all("remove-cell" in c["metadata"]["tags"] for c in injected)  # not on the page


def test_cli_rejects_an_unknown_profile(tiny_course):
    with pytest.raises(ValueError, match="unknown profile 'fastest'"):
        runner.main(["check", "--profile", "fastest", "--toc",
                     str(tiny_course / "book" / "_toc.yml"), "--root", str(tiny_course)])


def test_the_real_toc_lists_every_notebook_in_the_repository():
    """A chapter notebook left out of book/_toc.yml would never be executed or published."""
    listed = {p.name for p in runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")}
    on_disk = {p.name for p in (runner.REPO_ROOT / "notebooks").glob("*.ipynb")}
    assert listed == on_disk


def test_refresh_outputs_executes_in_place_without_papermill_metadata(tiny_course, tmp_path):
    toc = tiny_course / "book" / "_toc.yml"
    home = tmp_path / "outputs-home"  # never the maintainer's own folder: refresh empties it
    (home / "checkpoints").mkdir(parents=True)
    assert runner.main(["refresh", "--toc", str(toc), "--root", str(tiny_course), "--home", str(home)]) == 0
    assert not (home / "checkpoints").exists()
    nb = json.loads((tiny_course / "notebooks" / "b_ok.ipynb").read_text())
    assert "".join(nb["cells"][1]["outputs"][0]["text"]) == "hello\n"
    assert "papermill" not in nb["metadata"]
    assert read_glued(tiny_course / "notebooks" / "a_ok.ipynb")["name"] == "quick"


FIT_CELL = """
import torch
from helpers import paths, train
x, y = torch.randn(32, 4), torch.arange(32) % 2
net = torch.nn.Linear(4, 2)
key = train.run_key({"lr": lr})
history = train.fit(net, train.TensorLoader(x, y, 8), num_epochs=2, progress=False,
                    optimizer=torch.optim.SGD(net.parameters(), lr=lr), run_key=key,
                    checkpoint_dir=paths.checkpoint_dir("demo", key), resume=True)
print(history.summary())
"""


def test_the_time_table_says_whether_each_fit_trained_or_reused(tmp_path):
    cells = (FIT_CELL, "train.fit(torch.nn.Linear(4, 2), train.TensorLoader(x, y, 8), "
                       "num_epochs=1, optimizer=torch.optim.SGD(net.parameters(), 0.1), "
                       "progress=False)")
    nb = write_notebook(tmp_path / "nb" / "fits.ipynb", *cells,
                        parameters='profile = "quick"\nlr = 0.1')
    out = tmp_path / "executed"
    assert runner.execute_notebook(nb, out).training == "trained x2"
    again = runner.execute_notebook(nb, out)  # the same course root: the checkpoint is there
    assert again.training == "trained x1, reused x1"
    assert "trained x1, reused x1" in runner.format_time_table(out)
    assert json.loads((out / runner.TIMINGS_FILE).read_text())["fits"]["training"] == again.training
    # one hyperparameter changed in the parameters cell: a new run key, so it trains again
    changed = write_notebook(tmp_path / "nb" / "fits_lr.ipynb", *cells,
                             parameters='profile = "quick"\nlr = 0.05')
    assert runner.execute_notebook(changed, out).training == "trained x2"
    assert runner.training_summary(tmp_path / "none.jsonl") == "-"


def test_compare_outputs_is_nbvals_check_on_the_papermill_run(tmp_path):
    sanitize = runner.REPO_ROOT / "tests" / "nbval_sanitize.cfg"
    nb = write_notebook(tmp_path / "nb" / "out.ipynb",
                        "# NBVAL_CHECK_OUTPUT\nprint('rows:', 3, 'share:', 0.25)",
                        "import random\nprint(random.random())  # not checked")
    runner.refresh_outputs(nb)  # the committed outputs
    out = tmp_path / "executed"
    runner.execute_notebook(nb, out)
    assert runner.compare_outputs(nb, out / nb.name, sanitize) == []
    import nbformat

    committed = nbformat.read(nb, as_version=4)
    committed.cells[1].outputs[0]["text"] = "rows: 4 share: 0.5\n"  # the int differs
    nbformat.write(committed, nb)
    problems = runner.compare_outputs(nb, out / nb.name, sanitize)
    assert len(problems) == 1 and "cell 1" in problems[0] and "rows: 4" in problems[0]
    committed.cells[1].outputs[0]["text"] = "rows: 3 share: 0.75\n"  # floats are sanitized
    nbformat.write(committed, nb)
    assert runner.compare_outputs(nb, out / nb.name, sanitize) == []
    committed.cells[1].source += "\n"
    nbformat.write(committed, nb)
    assert "other code" in runner.compare_outputs(nb, out / nb.name, sanitize)[0]


def test_stage_writes_each_chapters_measured_time_into_its_header(tiny_course, tmp_path):
    import nbformat

    nb_path = tiny_course / "notebooks" / "a_ok.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        "# A\n\n**Time:** filled in from the measured run when the book is built.\n\nMore text."))
    nbformat.write(nb, nb_path)
    out, src = tmp_path / "executed", tmp_path / "book-src"
    for path in (nb_path, tiny_course / "notebooks" / "b_ok.ipynb"):
        runner.execute_notebook(path, out)
    (tiny_course / "book" / runner.FULL_TIMINGS).write_text(json.dumps(
        {"a_ok": {"seconds": 61.4, "profile": "full", "machine": "8 CPU cores, NVIDIA T4"}}))
    runner.stage_book(tiny_course / "book", runner.toc_notebooks(tiny_course / "book" / "_toc.yml",
                                                                 tiny_course), out, src)
    header = "".join(json.loads((src / "notebooks" / "a_ok.ipynb").read_text())["cells"][0]["source"])
    seconds = json.loads((out / runner.TIMINGS_FILE).read_text())["a_ok"]["seconds"]
    assert f"**Time:** {seconds:.0f} s in the `quick` profile (" in header
    assert "CPU cores" in header and "61 s in the `full` profile (8 CPU cores, NVIDIA T4)" in header
    assert header.endswith("More text.") and "filled in" not in header
    assert not (src / runner.FULL_TIMINGS).exists()  # data for staging, not a page
    assert "not yet measured on a GPU" in runner.time_line(None, None)
