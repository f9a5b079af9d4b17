"""One declaration per chapter (helpers/chapters): everything else reads it."""

from __future__ import annotations

import pytest

from helpers import budget, chapters, notebook, profiles
from helpers.chapters import Chapter, KeyResult, Workload
from tests.bands import bands_of
from tests.conftest import write_notebook
from tools import runner

TOC = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")


def _fixture() -> Chapter:
    return Chapter(stem="99_fixture", section="fixture", quick={"n": 1}, full={"n": 2},
                   time_limit_s={"quick": 7, "full": 70},
                   key_results=(KeyResult("fixture_acc", "fixture accuracy", ".2f", "-"),),
                   workload=lambda cfg, flops: Workload("99_fixture", "tiny", cfg("fixture").n * 10,
                                                        5.0))


def test_the_toc_and_the_declarations_name_the_same_chapters_in_the_same_order():
    assert [nb.stem for nb in TOC] == list(chapters.REGISTRY)
    sections = [c.section for c in chapters.REGISTRY.values()]
    assert len(set(sections)) == len(sections)
    for chapter in chapters.REGISTRY.values():
        assert set(chapter.quick) == set(chapter.full), chapter.stem  # the same names in both
        assert chapter.time_limit_s["quick"] > 0 and chapter.key_results, chapter.stem
        assert bands_of(chapter.stem), chapter.stem


def test_a_chapter_declared_once_is_seen_by_the_runner_the_report_card_and_the_cost_model(tmp_path):
    with chapters.declared(_fixture()):
        assert profiles.chapter_config("quick", "fixture").n == 1
        assert profiles.chapter_config("full", "fixture").n == 2
        nb = write_notebook(tmp_path / "notebooks" / "99_fixture.ipynb",
                            "from helpers.notebook import report\n"
                            "report('accuracy {fixture_acc:.2f}', fixture_acc=0.5)")
        run = runner.execute_notebook(nb, tmp_path / "out", "quick")
        assert run.time_limit_s == 7
        card = notebook.report_card(["99_fixture"], executed_dir=tmp_path / "out")
        assert card.loc[0, "value"] == "0.50" and card.loc[0, "result"] == "fixture accuracy"
        work = {w.chapter: w for w in budget.course_workloads("full")}["99_fixture"]
        assert (work.examples, work.flops) == (20, 100.0)
    assert "99_fixture" not in chapters.REGISTRY and "fixture" not in profiles.PROFILES["quick"].chapters


def test_a_missing_chapter_or_band_file_is_named():
    with pytest.raises(KeyError, match="no chapter '99_nope' is declared"):
        chapters.get("99_nope")
    with pytest.raises(FileNotFoundError, match="tests/bands/b99_nope.py"):
        bands_of("99_nope")
    with pytest.raises(ValueError, match="already declared"), chapters.declared(
            chapters.get("03_cnn_training")):
        pass
