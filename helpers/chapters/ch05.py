"""Chapter 05: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    tun = cfg("tuning")
    return Workload(
        "05_hyperparameter_tuning",
        f"small CNN: 3 searches x {tun.grid_points**2} "
        f"trials x {tun.n_seeds} seeds x {tun.num_epochs} epochs x {tun.n_train:,} images",
        3 * tun.grid_points**2 * tun.n_seeds * tun.num_epochs * tun.n_train,
        flops.cnn("small-cnn", "fashion-mnist"),
    )


CHAPTER = Chapter(
    stem="05_hyperparameter_tuning",
    section="tuning",
    quick={
        "n_train": 2000,
        "n_val": 1000,
        "n_test": 2000,
        "num_epochs": 2,
        "grid_points": 3,
        "worker_trials": 3,
        "n_seeds": 3,
        "opt_epochs": 3,
        "surrogate_seeds": 30,
    },
    full={
        "n_train": 50000,
        "n_val": 10000,
        "n_test": 10000,
        "num_epochs": 6,
        "grid_points": 5,
        "worker_trials": 10,
        "n_seeds": 3,
        "opt_epochs": 10,
        "surrogate_seeds": 30,
    },
    time_limit_s={"quick": 150, "full": 5400},
    key_results=(
        KeyResult("tune_test_acc", "tuned CNN, test accuracy", ".3f", "-"),
        KeyResult("tune_top_param", "most important hyperparameter", "", "-"),
    ),
    workload=_workload,
)
