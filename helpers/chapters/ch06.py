"""Chapter 06: the one declaration of its settings, time budget and key results.

Quick profile: Small enough to overfit within 15 epochs, and to run 9 configurations x 5 seeds
(five, so that Holm's correction over the chapter's 16 comparisons leaves some power) in about
120 s on 2 cores. ``n_stop`` also cuts chapter 07's splits (``recipes.regularization_data``).
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    reg = cfg("regularization")
    n_configs = 9  # the notebook's CONFIGS
    return Workload(
        "06_regularization",
        f"small CNN: {n_configs} configurations x {reg.n_seeds} "
        f"seeds x {reg.num_epochs} epochs x {reg.n_train:,} images",
        n_configs * reg.n_seeds * reg.num_epochs * reg.n_train,
        flops.cnn("small-cnn", "fashion-mnist"),
    )


CHAPTER = Chapter(
    stem="06_regularization",
    section="regularization",
    quick={
        "n_train": 500,
        "n_stop": 1000,
        "n_val": 2000,
        "n_test": 2000,
        "num_epochs": 15,
        "lr": 0.004,
        "n_seeds": 5,
    },
    full={
        "n_train": 5000,
        "n_stop": 5000,
        "n_val": 5000,
        "n_test": 10000,
        "num_epochs": 40,
        "lr": 0.002,
        "n_seeds": 5,
    },
    time_limit_s={"quick": 150, "full": 1800},
    key_results=(
        KeyResult("reg_test_acc", "chosen regularizer, test accuracy", ".3f", "-"),
        KeyResult("reg_aug_gap_verdict", "augmentation against the train-val gap", "", "-"),
    ),
    workload=_workload,
)
