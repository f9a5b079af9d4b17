"""The two run profiles of the course, defined in one place.

Introduced in ``notebooks/00_setup.ipynb`` ("How to run the course").

Every notebook takes ``profile`` in its papermill ``parameters`` cell and asks this module
for its chapter's defaults:

* ``quick`` (the default) runs anywhere, offline, on 2 CPU cores, on real but small data and
  real small pretrained weights that ship inside packages. CI and ``make test`` use it.
* ``full`` is what a learner runs on a GPU: real downloads, real epochs, real accuracy.

A notebook's other parameters default to ``None``, meaning "take the profile's value"; a
value you set yourself wins::

    cfg = chapter_config(profile, "setup", matmul_size=matmul_size)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any

__all__ = ["Profile", "PROFILES", "DEFAULT_PROFILE", "get_profile", "chapter_config"]


@dataclass(frozen=True)
class Profile:
    """A named set of per-chapter defaults.

    Attributes:
        name: ``"quick"`` or ``"full"``.
        description: one line for tables and error messages.
        chapters: chapter key (e.g. ``"setup"``) -> parameter name -> default value.
    """

    name: str
    description: str
    chapters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _freeze(chapters: dict[str, dict[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in chapters.items()})


PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        "quick": Profile(
            name="quick",
            description="offline, 2 CPU cores, minutes: real small data and packaged weights",
            chapters=_freeze(
                {
                    "setup": {
                        "matmul_size": 1024,  # 2 GFLOP per product: ~tens of ms on 2 cores
                        "matmul_repeats": 5,
                        "bandwidth_mib": 64,
                        "bandwidth_repeats": 5,
                    },
                    "collection": {"crawl_items": 24, "min_interval_s": 0.02},
                    "cleaning": {"n_images": 3000, "n_texts": 3000, "flip_fraction": 0.06},
                    "cnn": {"dataset": "fashion-mnist", "model": "small-cnn", "num_epochs": 3,
                            "batch_size": 128, "lr": 5e-3, "optimizer": "adamw",
                            "weight_decay": 1e-4, "label_smoothing": 0.0, "target_acc": 0.90,
                            "transfer_backbone": "efficientnet-lite0", "transfer_per_class": 10,
                            "transfer_eval_size": 1000, "transfer_seeds": 5},
                    # Three fine-tunes (seeds) of 2,500 sentences fit the chapter's budget.
                    "bert": {"dataset": "rotten-tomatoes", "model": "minilm-l6",
                             "n_train": 2500, "n_val": 1000, "n_test": 1000, "n_seeds": 3,
                             "max_length": 64,
                             "batch_size": 32, "lr": 1.5e-4, "num_epochs": 1,
                             "weight_decay": 0.01, "warmup_fraction": 0.1,
                             "freeze_embeddings": True, "target_acc": 0.80},
                    "tuning": {"n_train": 2000, "n_val": 1000, "n_test": 2000, "num_epochs": 2,
                               "grid_points": 3, "worker_trials": 3, "n_seeds": 3,
                               "opt_epochs": 3},
                    # Small enough to overfit within 15 epochs, and to run 14 configurations
                    # x 3 seeds in about 90 s on 2 cores (notebook 06 says so).
                    "regularization": {"n_train": 500, "n_stop": 1000, "n_val": 2000,
                                       "n_test": 2000, "num_epochs": 15, "lr": 4e-3,
                                       "n_seeds": 3},
                    # Chapter 07 retrains chapter 03's CNN and chapter 04's first fine-tune (same
                    # configurations, so `make book` reuses their checkpoints), then evaluates.
                    "evaluation": {"n_boot": 1000, "n_folds": 5, "credit_test": 300,
                                   "credit_val": 200, "cost_fp": 5.0, "cost_fn": 1.0},
                    # Chapter 08 retrains chapters 03's CNN and 04's first fine-tune, then
                    # compresses both; every step below fits its 150 s on 2 cores.
                    "compression": {"scan_amounts": (0.5, 0.7, 0.9), "scan_images": 2000,
                                    "prune_amounts": (0.5, 0.8, 0.9, 0.95),
                                    "finetune_images": 8000, "finetune_epochs": 1,
                                    "structured_ratio": 0.5, "calibration_images": 1000,
                                    "distill_images": 2000, "distill_epochs": 10,
                                    "distill_width": 4, "distill_lr": 5e-3, "distill_seeds": 5,
                                    "temperature": 4.0, "alpha": 0.9, "latency_rounds": 5,
                                    "max_eval_s": 60.0, "n_boot": 1000},
                    # Chapter 09 retrains chapters 03's CNN and 04's first fine-tune too.
                    "explainability": {"imagenet_images": 2, "ig_steps": 32, "smooth_samples": 4,
                                       "cnn_images": 16, "deletion_steps": 20, "text_steps": 50,
                                       "text_scan": 300, "shap_samples": 25, "perm_repeats": 10,
                                       "credit_test": 300, "credit_val": 200},
                    "privacy": {"n_members": 2000, "n_test": 2000, "epochs": 10, "batch_size": 256,
                                "lr": 2e-3, "width": 16, "epsilons": (1.0, 3.0, 8.0), "delta": 1e-5,
                                "clip": 1.0, "clip_norms": (0.1, 1.0, 10.0), "accountant": "prv",
                                "n_shadows": 8, "n_boot": 300},
                    "federated": {"n_train": 3000, "n_val": 1000, "n_test": 2000, "clients": 3,
                                  "rounds": 10, "local_epochs": 1, "lrs": (0.01, 0.02, 0.05),
                                  "batch_size": 32, "width": 8, "alphas": (1.0, 0.1),
                                  "drift_epochs": 5, "seeds": 3, "flower_nodes": 3,
                                  "flower_rounds": 3, "round_timeout": 60.0,
                                  "dp_clients": (3, 50), "dp_noise": 1.0, "dp_clip": 1.0},
                    "pii": {"n_planted": 400, "threshold": 0.3, "n_reviews": 1000,
                            "k_values": (2, 5, 10, 25), "k_main": 5, "credit_test": 300,
                            "credit_val": 200, "seeds": 5, "he_size": (64, 10)},
                    "scaling": {"n_train": 1024, "global_batch": 64, "accum_steps": 4,
                                "text_batch": 4, "text_len": 64, "amp_batch": 32, "repeats": 3,
                                "ddp_world": 2, "ddp_epochs": 1, "pg_workers": 2, "pg_trials": 2,
                                "pg_n_train": 300, "pg_epochs": 1, "loader_workers": 2,
                                "loader_epochs": 1},
                    # Chapter 13 serves chapter 04's first fine-tune (retrained: same run key).
                    # The load test is bounded: a fixed count per level, 30 s at most in all.
                    "serving": {"requests": 200, "concurrencies": (1, 8, 32), "time_limit_s": 30.0,
                                "threads": 0, "thread_rounds": 8, "thread_requests": 120,
                                "max_texts": 64, "max_chars": 1000, "format_repeats": 3},
                    # Chapter 14: one epoch of 800 sentences per run, 2 methods x 3 seeds in
                    # about a minute on 2 cores. MFU: the share of the measured fp32 matmul rate
                    # a small transformer reaches on a CPU, assumed before measuring (the
                    # chapter measures it). LoRA's rate: Hu et al. use ~25x the full
                    # fine-tuning rate for RoBERTa-base (5e-4 against 1e-5 to 2e-5).
                    "cost": {"dataset": "rotten-tomatoes", "model": "minilm-l6", "n_train": 800,
                             "n_val": 500, "n_test": 1000, "n_seeds": 3, "max_length": 64,
                             "batch_size": 32, "lr": 1.5e-4, "num_epochs": 1,
                             "weight_decay": 0.01, "warmup_fraction": 0.1,
                             "freeze_embeddings": True, "lora_r": 8, "lora_alpha": 16,
                             "lora_lr": 6e-3, "assumed_mfu": 0.5, "grid_g_co2_per_kwh": 400.0,
                             "country": "FRA", "price_table": None},
                }
            ),
        ),
        "full": Profile(
            name="full",
            description="one GPU (Colab, a workstation): real downloads, real epochs",
            chapters=_freeze(
                {
                    "setup": {
                        "matmul_size": 8192,  # 1.1 TFLOP per product: ~1-10 ms on a GPU
                        "matmul_repeats": 20,
                        "bandwidth_mib": 1024,
                        "bandwidth_repeats": 20,
                    },
                    "collection": {"crawl_items": 120, "min_interval_s": 0.2},
                    "cleaning": {"n_images": 12000, "n_texts": 12000, "flip_fraction": 0.06},
                    # The fast CIFAR-10 ResNet recipe: SGD+Nesterov, one-cycle LR, label
                    # smoothing, crop+flip on the GPU, bf16 autocast (BN stays fp32).
                    "cnn": {"dataset": "cifar-10", "model": "resnet9", "num_epochs": 24,
                            "batch_size": 512, "lr": 0.4, "optimizer": "sgd",
                            "weight_decay": 5e-4, "label_smoothing": 0.2, "target_acc": 0.94,
                            "transfer_backbone": "resnet18", "transfer_per_class": 10,
                            "transfer_eval_size": 5000, "transfer_seeds": 5},
                    # The standard BERT recipe (Devlin et al.; the HF text-classification
                    # example): 3 epochs, lr 2e-5, batch 32, 10% warmup then linear decay.
                    "bert": {"dataset": "sst-2", "model": "bert-base-uncased",
                             # 0: all rows; validation is cut from SST-2's train split,
                             # and the test set is its (labelled) dev split
                             "n_train": 0, "n_val": 2000, "n_test": 0, "n_seeds": 3,
                             "max_length": 128,
                             "batch_size": 32, "lr": 2e-5, "num_epochs": 3,
                             "weight_decay": 0.01, "warmup_fraction": 0.1,
                             "freeze_embeddings": False, "target_acc": 0.925},
                    "tuning": {"n_train": 50000, "n_val": 10000, "n_test": 10000,
                               "num_epochs": 6, "grid_points": 5, "worker_trials": 10,
                               "n_seeds": 3, "opt_epochs": 10},
                    "regularization": {"n_train": 5000, "n_stop": 5000, "n_val": 5000,
                                       "n_test": 10000, "num_epochs": 40, "lr": 2e-3,
                                       "n_seeds": 5},
                    "evaluation": {"n_boot": 2000, "n_folds": 10, "credit_test": 300,
                                   "credit_val": 200, "cost_fp": 5.0, "cost_fn": 1.0},
                    "compression": {"scan_amounts": (0.3, 0.5, 0.7, 0.9), "scan_images": 5000,
                                    "prune_amounts": (0.5, 0.7, 0.8, 0.9, 0.95),
                                    "finetune_images": 45000, "finetune_epochs": 2,
                                    "structured_ratio": 0.5, "calibration_images": 2000,
                                    "distill_images": 5000, "distill_epochs": 20,
                                    "distill_width": 8, "distill_lr": 3e-3, "distill_seeds": 5,
                                    "temperature": 4.0, "alpha": 0.9, "latency_rounds": 10,
                                    "max_eval_s": 600.0, "n_boot": 2000},
                    "explainability": {"imagenet_images": 8, "ig_steps": 64, "smooth_samples": 16,
                                       "cnn_images": 64, "deletion_steps": 50, "text_steps": 100,
                                       "text_scan": 2000, "shap_samples": 100, "perm_repeats": 30,
                                       "credit_test": 300, "credit_val": 200},
                    "privacy": {"n_members": 30000, "n_test": 10000, "epochs": 20, "batch_size": 512,
                                "lr": 2e-3, "width": 16, "epsilons": (1.0, 3.0, 8.0), "delta": 1e-5,
                                "clip": 1.0, "clip_norms": (0.1, 1.0, 10.0), "accountant": "prv",
                                "n_shadows": 32, "n_boot": 1000},
                    "federated": {"n_train": 50000, "n_val": 10000, "n_test": 10000, "clients": 10,
                                  "rounds": 30, "local_epochs": 1, "lrs": (0.01, 0.02, 0.05),
                                  "batch_size": 32, "width": 16, "alphas": (1.0, 0.1),
                                  "drift_epochs": 5, "seeds": 5, "flower_nodes": 5,
                                  "flower_rounds": 10, "round_timeout": 300.0,
                                  "dp_clients": (10, 100), "dp_noise": 1.0, "dp_clip": 1.0},
                    "pii": {"n_planted": 2000, "threshold": 0.3, "n_reviews": 20000,
                            "k_values": (2, 5, 10, 25, 50), "k_main": 5, "credit_test": 300,
                            "credit_val": 200, "seeds": 20, "he_size": (256, 10)},
                    "scaling": {"n_train": 50000, "global_batch": 256, "accum_steps": 4,
                                "text_batch": 16, "text_len": 128, "amp_batch": 256, "repeats": 20,
                                "ddp_world": 2, "ddp_epochs": 2, "pg_workers": 4, "pg_trials": 10,
                                "pg_n_train": 10000, "pg_epochs": 3, "loader_workers": 4,
                                "loader_epochs": 3},
                    "serving": {"requests": 1000, "concurrencies": (1, 8, 32), "time_limit_s": 30.0,
                                "threads": 0, "thread_rounds": 10, "thread_requests": 200,
                                "max_texts": 64, "max_chars": 1000, "format_repeats": 5},
                    # bert-base on 8,000 SST-2 sentences; a GPU reaches ~0.3-0.5 of its bf16
                    # matmul rate on a model this size (assumed; the chapter measures it).
                    "cost": {"dataset": "sst-2", "model": "bert-base-uncased", "n_train": 8000,
                             "n_val": 2000, "n_test": 0, "n_seeds": 3, "max_length": 128,
                             "batch_size": 32, "lr": 2e-5, "num_epochs": 1,
                             "weight_decay": 0.01, "warmup_fraction": 0.1,
                             "freeze_embeddings": False, "lora_r": 8, "lora_alpha": 16,
                             "lora_lr": 5e-4, "assumed_mfu": 0.35, "grid_g_co2_per_kwh": 400.0,
                             "country": "FRA", "price_table": None},
                }
            ),
        ),
    }
)

DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if name not in PROFILES:
        valid = ", ".join(repr(p) for p in PROFILES)
        raise ValueError(f"unknown profile {name!r}; valid profiles are {valid}")
    return PROFILES[name]


def chapter_config(profile: str, chapter: str, **overrides: Any) -> SimpleNamespace:
    """Defaults of ``chapter`` under ``profile``, with non-``None`` overrides applied.

    Overrides are the notebook's own parameters: ``None`` means "use the profile's value".

    Raises:
        ValueError: for an unknown profile or chapter, or an override the chapter does not
            define (the message lists what is valid).
    """
    prof = get_profile(profile)
    if chapter not in prof.chapters:
        valid = ", ".join(repr(c) for c in prof.chapters)
        raise ValueError(f"profile {profile!r} has no chapter {chapter!r}; chapters: {valid}")
    values = dict(prof.chapters[chapter])
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(
            f"chapter {chapter!r} has no parameter(s) {unknown}; valid: {sorted(values)}"
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SimpleNamespace(profile=profile, **values)
