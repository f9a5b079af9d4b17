"""Run every notebook of book/_toc.yml in the quick profile and check its key results.

Each notebook records its key figures (``helpers.notebook.report``); the bands in
``tests/bands/`` are what a correct quick run must produce. A chapter without bands fails:
every chapter is checked.
The same run is then held to nbval's output check (``# NBVAL_CHECK_OUTPUT`` cells against
the committed outputs), so `make test` executes each notebook once.
"""

from __future__ import annotations

import base64
import os
import warnings

import pytest

from helpers import chapters, serve
from helpers.notebook import read_glued
from tests.bands import bands_of
from tests.test_isa import NARROW
from tools import runner

# A chapter's bands live in tests/bands/b<stem>.py (BANDS: recorded key -> (band, why)), found by
# the chapter's stem. A band is (low, high) inclusive, or a set of allowed values. Every band can
# fail, and says why it is where it is: chance or majority level, an anchor, or the spread
# observed over seeds 0-4 of the quick profile (2 CPU cores), quoted.
# Throughput and timing figures have no bands: they measure the machine, not the code, and their
# direction can differ between CPUs (AVX2, AVX-512, VNNI, AMX). The few timing-derived bands left
# say in their reason why their direction holds on every CPU, or (15b's int8) that they assert
# none: a range wide enough for either direction, which only a broken path falls outside.
REQUIRED = {stem: bands_of(stem) for stem in chapters.REGISTRY}
# Groups of keys that must be equal: (notebook, keys, why).
EQUAL = [("05_hyperparameter_tuning", ("tune_epochs_grid", "tune_epochs_random", "tune_epochs_tpe"),
          "the three searches get the same epochs: none is pruned (Optuna's default pruner would)")]

NOTEBOOKS = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")
TEST_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()  # a Fernet key, new every session
SANITIZE = runner.REPO_ROOT / "tests" / "nbval_sanitize.cfg"


def _have_postgres() -> bool:
    from helpers import scale

    try:
        scale.postgres_bin()
    except scale.PostgresUnavailable:
        return False
    return True


def _check(name, value, band, why):
    if isinstance(band, set):
        assert value in band, f"{name}={value!r} not in {sorted(band, key=str)} ({why})"
    else:
        low, high = band
        assert isinstance(value, int | float), f"{name}={value!r} is not a number"
        assert low <= value <= high, f"{name}={value} outside [{low}, {high}] ({why})"


def test_a_reused_checkpoint_must_come_from_this_session(tmp_path):
    log = tmp_path / "07.fits.jsonl"
    trained = {}
    log.write_text('{"status": "trained", "resumed_from": 0, "run_key": "k03", "checkpoint": "k03"}\n')
    _check_training("03", log, trained)
    assert trained == {"k03": "03"}
    log.write_text('{"status": "reused", "resumed_from": 3, "run_key": "k03", "checkpoint": "k03"}\n')
    _check_training("07", log, trained)  # trained by 03 in this session: fine
    log.write_text('{"status": "reused", "resumed_from": 3, "run_key": "old", "checkpoint": "old"}\n')
    with pytest.raises(AssertionError, match="stale checkpoint"):
        _check_training("08", log, trained)
    log.write_text('{"status": "resumed", "resumed_from": 1, "run_key": "k03", "checkpoint": "k03"}\n')
    with pytest.raises(AssertionError, match="resumed"):
        _check_training("09", log, trained)


def test_every_toc_notebook_has_bands_with_reasons():
    assert {nb.stem for nb in NOTEBOOKS} == set(REQUIRED)
    for name, bands in REQUIRED.items():
        for key, (band, why) in bands.items():
            assert isinstance(band, set | tuple) and len(why) > 10, (name, key)


@pytest.fixture(scope="session")
def run_home(tmp_path_factory) -> dict:
    """One empty course folder for all the notebooks of this pytest session, and the run keys
    trained in it so far. Every model is trained from scratch once per session; a later chapter
    that uses an earlier chapter's model (the same recipe: the same run key) reuses that
    checkpoint, as `make book` does, instead of training it again."""
    return {"home": tmp_path_factory.mktemp("course-home"), "trained": {}}


def _check_training(stem: str, fit_log, trained: dict) -> None:
    """No fit resumed, and every reused checkpoint was trained earlier in this session; the
    keys this notebook trained are added to ``trained`` (key -> notebook)."""
    import json

    records = [json.loads(line) for line in fit_log.read_text().splitlines()] \
        if fit_log.is_file() else []
    for r in records:
        assert r["status"] != "resumed", f"{stem} resumed run {r['run_key']} from a checkpoint"
        if r["status"] == "reused":
            assert r["run_key"] in trained, (
                f"{stem} reused run {r['run_key']}, which no earlier notebook of this session "
                "trained: a stale checkpoint")
    trained.update({r["run_key"]: stem for r in records if r["status"] == "trained" and r["run_key"]})


def _held_to_its_checks(nb, executed) -> dict:
    """nbval's comparison of the checked cells with the committed outputs, then the bands;
    returns the recorded values."""
    differences = runner.compare_outputs(nb, executed, SANITIZE)
    assert not differences, "\n\n".join(differences)
    glued = read_glued(executed)
    required = dict(REQUIRED[nb.stem])
    if nb.stem == "12_scaling_out" and not _have_postgres():
        warnings.warn("PostgreSQL is not installed: chapter 12's shared-study bands are not "
                      "checked (apt-get install postgresql; make setup does it as root)", stacklevel=1)
        required = {k: v for k, v in required.items() if not k.startswith("pg_")}
    if nb.stem == "13_serving" and serve.chromium_path() is None:
        warnings.warn("chromium is not installed: chapter 13's page is not checked in a browser "
                      "(apt-get install chromium; make setup does it as root)", stacklevel=1)
        required.pop("serve_page_console_errors")
    missing = set(required) - set(glued)
    assert not missing, f"{nb.stem} did not record {sorted(missing)}"
    for name, (band, why) in required.items():
        _check(name, glued[name], band, why)
    for name, keys, why in EQUAL:
        if name == nb.stem:
            assert len({glued[k] for k in keys}) == 1, f"{keys} differ ({why}): {[glued[k] for k in keys]}"
    return glued


# The chapter also run under narrowed kernels in `make test`, as another CPU would run it: it
# must give the same checked outputs and hold the same bands (tests/test_isa.py checks each
# checked quantity the same way). More chapters, for a maintainer's rehearsal of another CPU:
# DL_HANDBOOK_NARROWED=03_cnn_training,08_compression pytest tests/test_notebooks.py -k narrowed
NARROWED_CHAPTERS = os.environ.get("DL_HANDBOOK_NARROWED", "00_setup").split(",")
_unknown = set(NARROWED_CHAPTERS) - {nb.stem for nb in NOTEBOOKS}
if _unknown:
    raise ValueError(f"DL_HANDBOOK_NARROWED names no chapter: {sorted(_unknown)}; "
                     f"chapters: {[nb.stem for nb in NOTEBOOKS]}")


@pytest.mark.notebook
@pytest.mark.parametrize("stem", NARROWED_CHAPTERS)
def test_a_chapter_holds_under_a_narrowed_instruction_set(stem, executed_dir, monkeypatch, tmp_path):
    for key, value in NARROW.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DL_HANDBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DL_HANDBOOK_KEY", TEST_KEY)
    nb = next(n for n in NOTEBOOKS if n.stem == stem)
    runner.execute_notebook(nb, executed_dir / "narrowed-isa", "quick")
    _held_to_its_checks(nb, executed_dir / "narrowed-isa" / nb.name)


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_and_its_key_results_are_in_band(nb, executed_dir, monkeypatch, run_home):
    # The session's one course folder (run_home) starts empty, so nothing from an earlier run
    # is reused: each model is trained here once, and the time table says "trained", or
    # "reused" in a later chapter that evaluates the same model (checked by run key).
    # An encryption key the kernel inherits too (chapter 11b takes it, as it says); no
    # output of any notebook may contain it.
    monkeypatch.setenv("DL_HANDBOOK_HOME", str(run_home["home"]))
    monkeypatch.setenv("DL_HANDBOOK_KEY", TEST_KEY)
    # The kernel's temporary folder, empty before the chapter and again after it: scratch
    # files belong under the course folder (paths.scratch_dir), or are removed by the chapter.
    scratch = run_home["home"].parent / f"tmp-{nb.stem}"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    run = runner.execute_notebook(nb, executed_dir, "quick")
    left = sorted(p.name for p in scratch.iterdir())
    assert not left, f"{nb.stem} left {left} in the temporary folder"
    executed_text = (executed_dir / nb.name).read_text()
    assert TEST_KEY not in executed_text and TEST_KEY[:-1] not in executed_text, \
        f"{nb.stem} shows the encryption key in its outputs"
    _check_training(nb.stem, executed_dir / f"{nb.stem}.fits.jsonl", run_home["trained"])
    glued = _held_to_its_checks(nb, executed_dir / nb.name)
    print(f"{nb.stem}: {run.seconds:.1f} s", {k: glued[k] for k in sorted(glued)})




def test_every_parameter_of_a_resumable_chapter_is_in_its_run_key():
    # A chapter that resumes from checkpoints keys them by train.run_key(run): every
    # parameter must reach `run`, or changing it would reuse the old run's checkpoint.
    # `run` is built from vars(cfg) and the seed; cfg = chapter_config(profile, ..., p=p).
    # The recipes (helpers/recipes.py) build `run` the same way from the cfg they are given.
    import ast
    import inspect
    import json
    import re

    from helpers import recipes

    for fn in (recipes.train_cnn, recipes.fine_tune_text):
        src = inspect.getsource(fn)
        assert "**vars(cfg)" in src and '"seed": seed' in src and "run_key(run" in src, fn.__name__
    checked = 0
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        via_recipe = [c for c in code if re.search(r"recipes\.(train_cnn|fine_tune_text)\(cfg,", c)]
        if not via_recipe and not any("resume=True" in c for c in code):
            continue
        params = next("".join(c["source"]) for c in cells
                      if "parameters" in c["metadata"].get("tags", []))
        names = {t.id for node in ast.parse(params).body if isinstance(node, ast.Assign)
                 for t in node.targets}
        config_call = next(c for c in code if "chapter_config(" in c)
        if via_recipe:  # the seed argument is the notebook's seed (or derived from it)
            assert all(re.search(r"recipes\.\w+\(cfg,.*\b\w*seed\b", c) for c in via_recipe), nb.stem
        else:
            keyed = next(c for c in code if "train.run_key(" in c)
            assert "**vars(cfg)" in keyed and re.search(r'"seed": \w*seed\b', keyed), nb.stem
        for name in names - {"profile", "seed"}:
            assert f"{name}={name}" in config_call, f"{nb.stem}: parameter {name} not in cfg"
        checked += 1
    assert checked >= 2  # 03 and 04 (and the chapters that retrain their models)
