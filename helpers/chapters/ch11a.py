"""Chapter 11a: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    fed = cfg("federated")
    runs = len(fed.lrs) + 3 * fed.seeds
    return Workload(
        "11a_federated_learning",
        f"small CNN: ({len(fed.lrs)} learning rates + 3 x "
        f"{fed.seeds} seeds) x {fed.rounds} rounds x {fed.n_train:,} images",
        runs * fed.rounds * fed.local_epochs * fed.n_train,
        flops.cnn("small-cnn", "fashion-mnist"),
    )


CHAPTER = Chapter(
    stem="11a_federated_learning",
    section="federated",
    quick={
        "n_train": 3000,
        "n_val": 1000,
        "n_test": 2000,
        "clients": 3,
        "rounds": 10,
        "local_epochs": 1,
        "lrs": (0.01, 0.02, 0.05),
        "batch_size": 32,
        "width": 8,
        "alphas": (1.0, 0.1),
        "drift_epochs": 5,
        "seeds": 3,
        "flower_nodes": 3,
        "flower_rounds": 3,
        "round_timeout": 60.0,
        "dp_clients": (3, 50),
        "dp_noise": 1.0,
        "dp_clip": 1.0,
    },
    full={
        "n_train": 50000,
        "n_val": 10000,
        "n_test": 10000,
        "clients": 10,
        "rounds": 30,
        "local_epochs": 1,
        "lrs": (0.01, 0.02, 0.05),
        "batch_size": 32,
        "width": 16,
        "alphas": (1.0, 0.1),
        "drift_epochs": 5,
        "seeds": 5,
        "flower_nodes": 5,
        "flower_rounds": 10,
        "round_timeout": 300.0,
        "dp_clients": (10, 100),
        "dp_noise": 1.0,
        "dp_clip": 1.0,
    },
    time_limit_s={"quick": 150, "full": 3600},
    key_results=(
        KeyResult("fl_fedavg_acc", "FedAvg accuracy (IID)", ".3f", "McMahan et al. 2017"),
        KeyResult("fl_central_acc", "central training accuracy", ".3f", "-"),
    ),
    workload=_workload,
)
