"""Run every notebook of book/_toc.yml in the quick profile and check its key results.

Each notebook glues its key figures (see helpers.notebook); the bands below are what a
correct quick run must produce. A notebook without bands here fails: every chapter is checked.
The same run is then held to nbval's output check (``# NBVAL_CHECK_OUTPUT`` cells against
the committed outputs), so `make test` executes each notebook once.
"""

from __future__ import annotations

import pytest

from helpers import runner
from helpers.notebook import read_glued

# name -> {glued key: (low, high) inclusive band, or a set of allowed values}
REQUIRED = {
    "00_setup": {
        "setup_device": {"cpu", "cuda", "mps"},
        "setup_matmul_tflops": (1e-4, 3000.0),
        "setup_matmul_precision": {"fp32", "tf32", "bf16"},
    },
    "01_data_collection": {
        # 24 catalog items: 2 disallowed by robots.txt, 1 with a stale checksum
        "collect_n_images": (21, 21),
        "collect_n_texts": (12_000, 13_500),  # ~12,750 after the documented cleaning
    },
    "02_data_cleaning": {
        "clean_dup_recall": (0.95, 1.0),
        "clean_label_issue_recall": (0.80, 1.0),
        "clean_label_issue_precision": (0.70, 1.0),
        "clean_rows_before": (3170, 3170),  # 3,000 clean + 170 injected records
        "clean_rows_after": (2600, 2900),  # less 16 broken, ~120 copies, ~30 leaks, ~200 flagged
    },
    "03_cnn_training": {
        "cnn_test_acc": (0.90, 1.0),
        "cnn_train_seconds": (0.1, 600.0),
        "cnn_images_per_s": (100.0, 1e7),
        "transfer_test_acc": (0.5, 1.0),
        "scratch_test_acc": (0.3, 1.0),
    },
    "04_bert_finetuning": {
        "bert_test_acc": (0.80, 1.0),
        "bert_test_f1": (0.75, 1.0),
        "baseline_test_acc": (0.6, 0.95),
        "bert_train_seconds": (1.0, 1000.0),
        "bert_ms_per_sentence": (0.1, 2000.0),
    },
    "05_hyperparameter_tuning": {
        "tune_best_acc": (0.75, 1.0),
        "tune_grid_best": (0.6, 1.0),
        "tune_random_best": (0.6, 1.0),
        "tune_tpe_best": (0.6, 1.0),
        "tune_trials": (33, 33),  # every search ran its full budget: 3 x 9, plus 2 workers x 3
    },
    "06_regularization": {
        "reg_baseline_gap": (0.02, 0.5),
        "reg_best_gap": (0.0, 0.5),
        "reg_best_test_acc": (0.7, 1.0),
    },
}
# Orderings a correct run must show: (notebook, larger key, smaller key).
GREATER = [("03_cnn_training", "transfer_test_acc", "scratch_test_acc"),
           ("04_bert_finetuning", "bert_test_acc", "baseline_test_acc"),
           ("06_regularization", "reg_baseline_gap", "reg_best_gap")]
# Checked only when present (e.g. utilization exists only where the device's peak is known).
OPTIONAL = {
    "00_setup": {"setup_matmul_utilization": (0.005, 1.1)},
}

NOTEBOOKS = runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")
SANITIZE = runner.REPO_ROOT / "tests" / "nbval_sanitize.cfg"


def _check(name, value, band):
    if isinstance(band, set):
        assert value in band, f"{name}={value!r} not in {sorted(band)}"
    else:
        low, high = band
        assert isinstance(value, int | float), f"{name}={value!r} is not a number"
        assert low <= value <= high, f"{name}={value} outside [{low}, {high}]"


def test_every_toc_notebook_has_bands():
    assert {nb.stem for nb in NOTEBOOKS} == set(REQUIRED)


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_and_its_key_results_are_in_band(nb, executed_dir):
    # conftest's autouse `course_home` gives each run a fresh DL_HANDBOOK_HOME, which the
    # kernel inherits: no checkpoint or crawl from an earlier run is reused, so every
    # notebook really trains and collects here (the time table says "trained").
    run = runner.execute_notebook(nb, executed_dir, "quick")
    assert "resumed" not in run.training and "reused" not in run.training, run.training
    differences = runner.compare_outputs(nb, executed_dir / nb.name, SANITIZE)
    assert not differences, "\n\n".join(differences)
    glued = read_glued(executed_dir / nb.name)
    missing = set(REQUIRED[nb.stem]) - set(glued)
    assert not missing, f"{nb.stem} did not glue {sorted(missing)}"
    for name, band in REQUIRED[nb.stem].items():
        _check(name, glued[name], band)
    for name, band in OPTIONAL.get(nb.stem, {}).items():
        if name in glued:
            _check(name, glued[name], band)
    for name, larger, smaller in GREATER:
        if name == nb.stem:
            assert glued[larger] > glued[smaller], f"{larger}={glued[larger]} <= {smaller}={glued[smaller]}"
    print(f"{nb.stem}: {run.seconds:.1f} s", {k: glued[k] for k in sorted(glued)})




def test_every_parameter_of_a_resumable_chapter_is_in_its_run_key():
    # A chapter that resumes from checkpoints keys them by train.run_key(run): every
    # parameter must reach `run`, or changing it would reuse the old run's checkpoint.
    # `run` is built from vars(cfg) and the seed; cfg = chapter_config(profile, ..., p=p).
    import ast
    import json

    checked = 0
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        if not any("resume=True" in c for c in code):
            continue
        params = next("".join(c["source"]) for c in cells
                      if "parameters" in c["metadata"].get("tags", []))
        names = {t.id for node in ast.parse(params).body if isinstance(node, ast.Assign)
                 for t in node.targets}
        config_call = next(c for c in code if "chapter_config(" in c)
        keyed = next(c for c in code if "train.run_key(" in c)
        assert "**vars(cfg)" in keyed and '"seed": seed' in keyed, nb.stem
        for name in names - {"profile", "seed"}:
            assert f"{name}={name}" in config_call, f"{nb.stem}: parameter {name} not in cfg"
        checked += 1
    assert checked >= 2  # 03 and 04
