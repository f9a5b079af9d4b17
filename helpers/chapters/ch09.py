"""Chapter 09: the one declaration of its settings, time budget and key results.

Quick profile: Chapter 09 retrains chapters 03's CNN and 04's first fine-tune too.
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    return Workload("09_explainability", "attributions only (no training)", 0, 0.0)


CHAPTER = Chapter(
    stem="09_explainability",
    section="explainability",
    quick={
        "imagenet_images": 2,
        "ig_steps": 32,
        "smooth_samples": 4,
        "cnn_images": 16,
        "deletion_steps": 20,
        "text_steps": 50,
        "text_scan": 300,
        "shap_samples": 25,
        "perm_repeats": 10,
        "credit_test": 300,
        "credit_val": 200,
    },
    full={
        "imagenet_images": 8,
        "ig_steps": 64,
        "smooth_samples": 16,
        "cnn_images": 64,
        "deletion_steps": 50,
        "text_steps": 100,
        "text_scan": 2000,
        "shap_samples": 100,
        "perm_repeats": 30,
        "credit_test": 300,
        "credit_val": 200,
    },
    time_limit_s={"quick": 120, "full": 1800},
    key_results=(
        KeyResult("xai_deletion_verdict_ig", "IG's deletion curve against random", "", "-"),
        KeyResult(
            "xai_sanity_corr_ig",
            "IG map vs the randomized model's (corr.)",
            ".2f",
            "Adebayo et al. 2018: a faithful map changes",
        ),
    ),
    workload=_workload,
)
