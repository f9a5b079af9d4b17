"""Chapters 03 and 07 opened in a real JupyterLab in headless Chromium (tools/labcheck.py): a
results sentence shows a number, and no raw MyST role is visible. A notebook with a raw role put
back fails the same check. Screenshots land in _build/jupyterlab-check/."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers import serve
from helpers.notebook import RESULTS_KEY
from tools import labcheck, runner

pytestmark = pytest.mark.skipif(serve.chromium_path() is None,
                                reason="no chromium (apt-get install chromium; make setup does it)")
SHOTS = runner.REPO_ROOT / "_build" / "jupyterlab-check"


def test_chapters_show_their_results_and_no_raw_role_in_jupyterlab(tmp_path):
    root = tmp_path / "course"
    (root / "notebooks").mkdir(parents=True)
    chapters = ["03_cnn_training.ipynb", "07_evaluation_fairness.ipynb"]
    for name in chapters:  # copies: the server may write checkpoints beside what it opens
        shutil.copy(runner.REPO_ROOT / "notebooks" / name, root / "notebooks" / name)
    bad = new_notebook(cells=[new_markdown_cell("The verdict: {glue:text}`verdict`."),
                              new_code_cell("report(...)")])
    bad.cells[1].outputs = [new_output("display_data", data={"text/markdown": "Accuracy **0.91**."},
                                       metadata={RESULTS_KEY: {"acc": 0.91}})]
    nbformat.write(bad, root / "notebooks" / "raw_role.ipynb")
    pages = labcheck.check_in_jupyterlab(root, [f"notebooks/{n}" for n in [*chapters, "raw_role.ipynb"]],
                                         SHOTS, tmp_path / "lab")
    by_name = {p.notebook.split("/")[-1]: p for p in pages}
    for name in chapters:
        assert by_name[name].problems() == [], by_name[name].problems()
        assert (SHOTS / name.replace(".ipynb", ".png")).stat().st_size > 10_000
    assert by_name["raw_role.ipynb"].problems() == [
        "notebooks/raw_role.ipynb: a raw MyST role is visible: '{glue:text}`verdict`'"]
