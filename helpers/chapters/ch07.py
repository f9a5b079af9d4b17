"""Chapter 07: the one declaration of its settings, time budget and key results.

Quick profile: Chapter 07 retrains chapter 03's CNN and chapter 04's first fine-tune (same
configurations, so `make book` reuses their checkpoints), then evaluates.
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    return Workload(
        "07_evaluation_fairness", "reuses 03 and 04's runs; logistic regression (CPU)", 0, 0.0
    )


CHAPTER = Chapter(
    stem="07_evaluation_fairness",
    section="evaluation",
    quick={
        "n_boot": 1000,
        "n_folds": 5,
        "credit_test": 300,
        "credit_val": 200,
        "cost_fp": 5.0,
        "cost_fn": 1.0,
    },
    full={
        "n_boot": 2000,
        "n_folds": 10,
        "credit_test": 300,
        "credit_val": 200,
        "cost_fp": 5.0,
        "cost_fn": 1.0,
    },
    time_limit_s={"quick": 120, "full": 1800},
    key_results=(
        KeyResult(
            "eval_ece_after",
            "ECE after temperature scaling",
            ".3f",
            "Guo et al. 2017: temperature scaling fixes most of it",
        ),
        KeyResult("fair_gap_after", "fairness gap after mitigation", ".3f", "-"),
    ),
    workload=_workload,
)
