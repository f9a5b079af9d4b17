"""Chapter 08: the one declaration of its settings, time budget and key results.

Quick profile: Chapter 08 retrains chapters 03's CNN and 04's first fine-tune, then compresses
both; every step below fits its 150 s on 2 cores.
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    comp, cnn = cfg("compression"), cfg("cnn")
    return Workload(
        "08_compression",
        f"{cnn.model} fine-tuned after pruning: "
        f"{len(comp.prune_amounts)} amounts x {comp.finetune_epochs} epochs x "
        f"{comp.finetune_images:,} images",
        len(comp.prune_amounts) * comp.finetune_epochs * comp.finetune_images,
        flops.cnn(cnn.model, cnn.dataset),
    )


CHAPTER = Chapter(
    stem="08_compression",
    section="compression",
    quick={
        "scan_amounts": (0.5, 0.7, 0.9),
        "scan_images": 2000,
        "prune_amounts": (0.5, 0.8, 0.9, 0.95),
        "finetune_images": 8000,
        "finetune_epochs": 1,
        "structured_ratio": 0.5,
        "calibration_images": 1000,
        "distill_images": 2000,
        "distill_epochs": 10,
        "distill_width": 4,
        "distill_lr": 0.005,
        "distill_seeds": 5,
        "temperature": 4.0,
        "alpha": 0.9,
        "latency_rounds": 5,
        "max_eval_s": 60.0,
        "n_boot": 1000,
    },
    full={
        "scan_amounts": (0.3, 0.5, 0.7, 0.9),
        "scan_images": 5000,
        "prune_amounts": (0.5, 0.7, 0.8, 0.9, 0.95),
        "finetune_images": 45000,
        "finetune_epochs": 2,
        "structured_ratio": 0.5,
        "calibration_images": 2000,
        "distill_images": 5000,
        "distill_epochs": 20,
        "distill_width": 8,
        "distill_lr": 0.003,
        "distill_seeds": 5,
        "temperature": 4.0,
        "alpha": 0.9,
        "latency_rounds": 10,
        "max_eval_s": 600.0,
        "n_boot": 2000,
    },
    time_limit_s={"quick": 150, "full": 1800},
    key_results=(
        KeyResult(
            "compress_int8_size_ratio",
            "fp32 size over int8 size",
            ".2f",
            "PyTorch tutorial: 438 MB -> 181 MB (2.4x)",
        ),
        KeyResult(
            "compress_int8_speedup",
            "int8 speed-up on CPU",
            ".2f",
            "PyTorch tutorial: 1.8x on 1 thread",
        ),
        KeyResult(
            "distill_verdict",
            "distilled student against one trained alone",
            "",
            "DistilBERT keeps 97% of BERT",
        ),
    ),
    workload=_workload,
)
