"""Chapter 03: the one declaration of its settings, time budget and key results.


Full profile: The fast CIFAR-10 ResNet recipe: SGD+Nesterov, one-cycle LR, label smoothing,
crop+flip on the GPU, bf16 autocast (BN stays fp32).
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    cnn = cfg("cnn")
    images = 45_000 if cnn.dataset == "cifar-10" else 55_000  # the training split less validation
    return Workload(
        "03_cnn_training",
        f"{cnn.model}: {images:,} images x {cnn.num_epochs} epochs",
        images * cnn.num_epochs,
        flops.cnn(cnn.model, cnn.dataset),
    )


CHAPTER = Chapter(
    stem="03_cnn_training",
    section="cnn",
    quick={
        "dataset": "fashion-mnist",
        "model": "small-cnn",
        "num_epochs": 3,
        "batch_size": 128,
        "lr": 0.005,
        "optimizer": "adamw",
        "weight_decay": 0.0001,
        "label_smoothing": 0.0,
        "target_acc": 0.9,
        "transfer_backbone": "efficientnet-lite0",
        "transfer_per_class": 10,
        "transfer_eval_size": 1000,
        "transfer_seeds": 5,
    },
    full={
        "dataset": "cifar-10",
        "model": "resnet9",
        "num_epochs": 24,
        "batch_size": 512,
        "lr": 0.4,
        "optimizer": "sgd",
        "weight_decay": 0.0005,
        "label_smoothing": 0.2,
        "target_acc": 0.94,
        "transfer_backbone": "resnet18",
        "transfer_per_class": 10,
        "transfer_eval_size": 5000,
        "transfer_seeds": 5,
    },
    time_limit_s={"quick": 90, "full": 900},
    key_results=(
        KeyResult(
            "cnn_test_acc",
            "CNN test accuracy",
            ".3f",
            "airbench94: 94.0% on CIFAR-10 in 3.3 s (A100)",
        ),
        KeyResult("transfer_vs_scratch", "pretrained features vs from scratch", "", "-"),
    ),
    workload=_workload,
)
