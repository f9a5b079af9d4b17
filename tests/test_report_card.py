"""The course report card (helpers.notebook.report_card, chapter 14)."""

import json

import pytest

from helpers import notebook
from tools import runner


def _executed(folder, stem, values):
    outputs = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": k}},
                "data": {"application/papermill.record/text/plain": repr(v)}} for k, v in values.items()]
    nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": outputs}],
          "metadata": {"papermill": {"parameters": {"profile": "quick"}}}}
    (folder / f"{stem}.ipynb").write_text(json.dumps(nb))


def test_key_results_list_every_toc_chapter_in_order():
    stems = [p.stem for p in runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")]
    assert list(notebook.KEY_RESULTS) == stems
    for stem, rows in notebook.KEY_RESULTS.items():
        assert rows and all(len(r) == 4 and r[0] and r[1] for r in rows), stem


def test_report_card_reads_this_runs_copies_and_fails_naming_a_missing_result(tmp_path):
    keys = {"ch_a": (("acc", "accuracy", ".3f", "anchor A"),), "ch_b": (("verdict", "A vs B", "", "-"),)}
    _executed(tmp_path, "ch_a", {"acc": 0.91234})
    _executed(tmp_path, "ch_b", {"other": 1})
    with pytest.raises(notebook.MissingResultError, match="ch_b: verdict"):
        notebook.report_card(["ch_a", "ch_b"], keys, executed_dir=tmp_path)
    card = notebook.report_card(["ch_a", "ch_b"], keys, executed_dir=tmp_path, strict=False)
    assert card["value"].tolist() == ["0.912", "missing"]
    _executed(tmp_path, "ch_b", {"verdict": "better"})
    card = notebook.report_card(["ch_a", "ch_b"], keys, executed_dir=tmp_path)
    assert card["value"].tolist() == ["0.912", "better"] and card["anchor"].tolist() == ["anchor A", "-"]


def test_report_card_refuses_a_chapter_without_key_results(tmp_path):
    with pytest.raises(notebook.MissingResultError, match="no key results declared"):
        notebook.report_card(["99_new_chapter"], {}, executed_dir=tmp_path)


def test_report_card_takes_the_running_chapters_own_values(tmp_path):
    keys = {"ch_a": (("x", "x", ".1f", "-"),)}
    card = notebook.report_card(["ch_a"], keys, executed_dir=tmp_path, own={"ch_a": {"x": 2.0}})
    assert card["value"].tolist() == ["2.0"] and card["from"].tolist() == ["this notebook"]
