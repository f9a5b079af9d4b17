"""Chapter 10: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    priv = cfg("privacy")
    runs = len(priv.epsilons) + 1 + priv.n_shadows
    return Workload(
        "10_privacy_dp",
        f"small CNN: ({len(priv.epsilons)} private + 1 + "
        f"{priv.n_shadows} shadows) x {priv.epochs} epochs x {priv.n_members:,} images",
        runs * priv.epochs * priv.n_members,
        flops.cnn("small-cnn", "fashion-mnist"),
    )


CHAPTER = Chapter(
    stem="10_privacy_dp",
    section="privacy",
    quick={
        # 1,000 members for 20 epochs (the same compute as 2,000 for 10): the non-private target
        # over-fits (training accuracy about 0.99), so the attack has something to find
        "n_members": 1000,
        "n_test": 2000,
        "epochs": 20,
        "batch_size": 256,
        "lr": 0.002,
        "width": 16,
        "epsilons": (1.0, 3.0, 8.0),
        "delta": 1e-05,
        "clip": 1.0,
        "clip_norms": (0.1, 1.0, 10.0),
        "accountant": "prv",
        "n_shadows": 8,
        "n_boot": 300,
    },
    full={
        "n_members": 30000,
        "n_test": 10000,
        "epochs": 20,
        "batch_size": 512,
        "lr": 0.002,
        "width": 16,
        "epsilons": (1.0, 3.0, 8.0),
        "delta": 1e-05,
        "clip": 1.0,
        "clip_norms": (0.1, 1.0, 10.0),
        "accountant": "prv",
        "n_shadows": 32,
        "n_boot": 1000,
    },
    time_limit_s={"quick": 150, "full": 1800},
    key_results=(
        KeyResult(
            "dp_acc", "DP-SGD accuracy", ".3f", "Papernot et al.: 86.1% at eps 2.7 (Fashion-MNIST)"
        ),
        KeyResult("dp_eps_achieved", "epsilon spent", ".2f", "-"),
        KeyResult(
            "mia_dp_verdict", "membership inference against DP", "", "LiRA: report TPR at low FPR"
        ),
    ),
    workload=_workload,
)
