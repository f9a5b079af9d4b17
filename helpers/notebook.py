"""Glue: record a notebook's key results so the book's prose and the tests read them.

Introduced in ``notebooks/00_setup.ipynb`` ("Key results").

``glue("cnn_test_acc", acc)`` stores a value in the executed notebook (through myst-nb's
``glue``, the scrapbook format). The book prints it inline with
``{glue:text}`cnn_test_acc:.3f` ``; ``read_glued(path)`` gives a test every glued value of an
executed notebook, so a claim in the prose is the same number a test checks.

``chapter_figures`` finds a chapter's glued results (this run's executed copy, else the
committed one); ``report_card`` (``notebooks/14_compute_and_cost.ipynb``) sets every chapter's
key results beside its anchors, and fails when one is missing.
"""

from __future__ import annotations

import ast
import json
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["glue", "read_glued", "chapter_figures", "KEY_RESULTS", "MissingResultError",
           "report_card"]

_MIME_PREFIX = "application/papermill.record/"


def _plain(value: Any) -> Any:
    """NumPy/torch scalars become Python ones, so their text form reads back with literal_eval."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def glue(name: str, value: Any) -> Any:
    """Record ``value`` under ``name`` in this notebook's outputs (hidden) and return it."""
    from myst_nb import glue as _myst_glue

    value = _plain(value)
    _myst_glue(name, value, display=False)
    return value


def read_glued(path: str | Path) -> dict[str, Any]:
    """Every value glued in an executed notebook, by name.

    Raises:
        FileNotFoundError: the notebook does not exist (was it executed?).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no executed notebook at {path}: was it executed?")
    nb = json.loads(path.read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            text = out.get("data", {}).get(_MIME_PREFIX + "text/plain")
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            try:
                found[meta["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                found[meta["name"]] = text
    return found


def chapter_figures(stem: str, executed_dir: str | Path | None = None) -> dict[str, Any]:
    """The glued results of chapter ``stem`` (e.g. ``"04_bert_finetuning"``), and where they
    came from: this run's executed copy (``executed_dir``, else the ``DL_HANDBOOK_EXECUTED``
    folder the runner sets) when there is one, else the quick-profile outputs committed in
    ``notebooks/``. Returns ``{"values": {...}, "source": path, "profile": ...}``; an absent
    chapter gives empty values and ``source`` None."""
    from helpers.runner import EXECUTED_ENV, REPO_ROOT

    folders = [Path(p) for p in (executed_dir, os.environ.get(EXECUTED_ENV)) if p]
    for folder in [*folders, REPO_ROOT / "notebooks"]:
        path = folder / f"{stem}.ipynb"
        if not path.is_file():
            continue
        values = read_glued(path)
        if not values:
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        params = nb.get("metadata", {}).get("papermill", {}).get("parameters", {})
        return {"values": values, "source": str(path), "profile": params.get("profile", "quick")}
    return {"values": {}, "source": None, "profile": None}


# The course report card: each chapter's key results (glued key, what it is, how to print it)
# and the published figure it stands beside (../shared anchors; "-" where none applies).
KEY_RESULTS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "00_setup": (("setup_matmul_tflops", "measured matmul rate (TFLOP/s)", ".3f",
                  "-"),
                 ("setup_reseed_identical", "reseeding reproduces every draw", "", "-")),
    "01_data_collection": (("collect_n_images", "images collected (robots.txt and checksums kept)",
                            "d", "-"),),
    "02_data_cleaning": (("clean_label_issue_recall", "injected label errors found", ".3f", "-"),
                         ("clean_dup_recall", "injected duplicates found", ".3f", "-")),
    "03_cnn_training": (("cnn_test_acc", "CNN test accuracy", ".3f",
                         "airbench94: 94.0% on CIFAR-10 in 3.3 s (A100)"),
                        ("transfer_vs_scratch", "pretrained features vs from scratch", "", "-")),
    "04_bert_finetuning": (("bert_test_acc", "fine-tuned text model, test accuracy", ".3f",
                            "BERT-base SST-2 dev: 92.3% (HF example)"),
                           ("bert_vs_baseline", "against TF-IDF + logistic regression", "", "-")),
    "05_hyperparameter_tuning": (("tune_test_acc", "tuned CNN, test accuracy", ".3f", "-"),
                                 ("tune_top_param", "most important hyperparameter", "", "-")),
    "06_regularization": (("reg_test_acc", "chosen regularizer, test accuracy", ".3f", "-"),
                          ("reg_aug_gap_verdict", "augmentation against the train-val gap", "",
                           "-")),
    "07_evaluation_fairness": (("eval_ece_after", "ECE after temperature scaling", ".3f",
                                "Guo et al. 2017: temperature scaling fixes most of it"),
                               ("fair_gap_after", "fairness gap after mitigation", ".3f", "-")),
    "08_compression": (("compress_int8_size_ratio", "fp32 size over int8 size", ".2f",
                        "PyTorch tutorial: 438 MB -> 181 MB (2.4x)"),
                       ("compress_int8_speedup", "int8 speed-up on CPU", ".2f",
                        "PyTorch tutorial: 1.8x on 1 thread"),
                       ("distill_verdict", "distilled student against one trained alone", "",
                        "DistilBERT keeps 97% of BERT")),
    "09_explainability": (("xai_deletion_verdict_ig", "IG's deletion curve against random", "",
                           "-"),
                          ("xai_sanity_corr_ig", "IG map vs the randomized model's (corr.)", ".2f",
                           "Adebayo et al. 2018: a faithful map changes")),
    "10_privacy_dp": (("dp_acc", "DP-SGD accuracy", ".3f",
                       "Papernot et al.: 86.1% at eps 2.7 (Fashion-MNIST)"),
                      ("dp_eps_achieved", "epsilon spent", ".2f", "-"),
                      ("mia_dp_verdict", "membership inference against DP", "",
                       "LiRA: report TPR at low FPR")),
    "11a_federated_learning": (("fl_fedavg_acc", "FedAvg accuracy (IID)", ".3f",
                                "McMahan et al. 2017"),
                               ("fl_central_acc", "central training accuracy", ".3f", "-")),
    "11b_pii_encryption": (("pii_precision_micro", "PII detection precision", ".3f",
                            "Presidio: measure per entity"),
                           ("enc_tamper_detected", "tampering detected", "", "-")),
    "12_scaling_out": (("ddp_max_weight_diff", "DDP against one process (max weight diff.)", ".1e",
                        "-"),
                       ("ckpt_memory_ratio", "activation memory with checkpointing", ".3f", "-")),
    "13_serving": (("serve_test_acc", "served int8 model, test accuracy", ".3f", "-"),
                   ("serve_errors", "server errors under load", "d", "-")),
    "14_compute_and_cost": (("cost_time_pred_ratio", "measured over predicted epoch time", ".2f",
                             "-"),
                            ("flops_6nd_ratio", "counted FLOPs over 6ND", ".3f",
                             "Kaplan et al. 2020: ~6 N D"),
                            ("lora_trainable_frac", "share of parameters LoRA trains", ".4f",
                             "Hu et al.: 0.3 M of 125 M (0.24%)")),
}


class MissingResultError(RuntimeError):
    """A chapter's key result is not among its glued values: the report card cannot be made."""


def _show(value: Any, spec: str) -> str:
    if isinstance(value, bool | str) or not spec:
        return str(value)
    return format(value, spec)


def _origin(found: Mapping[str, Any], own: bool) -> str:
    """Where a chapter's values came from, in words."""
    from helpers.runner import REPO_ROOT

    if own:
        return "this notebook"
    if not found.get("source"):
        return "not found"
    committed = Path(found["source"]).resolve().parent == (REPO_ROOT / "notebooks").resolve()
    return "committed outputs" if committed else "this build"


def report_card(stems: Iterable[str], key_results: Mapping[str, Any] = KEY_RESULTS,
                executed_dir: str | Path | None = None,
                own: Mapping[str, Mapping[str, Any]] | None = None, strict: bool = True) -> Any:
    """The course report card: one row per key result of every chapter in ``stems`` (the toc's
    order), its value from ``chapter_figures`` (or ``own[stem]``, the running notebook's own
    values), the profile and the copy it came from ("this build", "committed outputs"), and
    its anchor. ``strict=False`` shows a missing result
    as "missing" instead of raising (a chapter run on its own, e.g. on Colab, where the other
    chapters' executed copies are not at hand); ``make book`` and ``make test`` are strict.

    Raises:
        MissingResultError: a chapter with no entry in ``key_results``, or a key result that
            chapter did not glue; every missing one is named.
    """
    import pandas as pd

    rows, missing = [], []
    for stem in stems:
        if stem not in key_results:
            missing.append(f"{stem}: no key results listed (add it to notebook.KEY_RESULTS)")
            continue
        found = ({"values": dict(own[stem]), "profile": "this run", "source": None}
                 if own and stem in own else chapter_figures(stem, executed_dir))
        origin = _origin(found, own is not None and stem in own)
        for key, what, spec, anchor in key_results[stem]:
            if key not in found["values"]:
                missing.append(f"{stem}: {key} not glued (executed copy: {found.get('source')})")
                rows.append({"chapter": stem, "result": what, "value": "missing",
                             "anchor": anchor, "profile": found["profile"], "from": origin})
                continue
            rows.append({"chapter": stem, "result": what,
                         "value": _show(found["values"][key], spec), "anchor": anchor,
                         "profile": found["profile"], "from": origin})
    if missing and strict:
        raise MissingResultError("the report card lacks " + "; ".join(missing))
    return pd.DataFrame(rows)
