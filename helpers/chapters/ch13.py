"""Chapter 13: the one declaration of its settings, time budget and key results.

Quick profile: Chapter 13 serves chapter 04's first fine-tune (retrained: same run key). The
load test is bounded: a fixed count per level, 30 s at most in all.
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    return Workload("13_serving", "inference and a load test (no training)", 0, 0.0)


CHAPTER = Chapter(
    stem="13_serving",
    section="serving",
    quick={
        "requests": 200,
        "concurrencies": (1, 8, 32),
        "time_limit_s": 30.0,
        "threads": 0,
        "thread_rounds": 8,
        "thread_requests": 120,
        "max_texts": 64,
        "max_chars": 1000,
        "format_repeats": 3,
    },
    full={
        "requests": 1000,
        "concurrencies": (1, 8, 32),
        "time_limit_s": 30.0,
        "threads": 0,
        "thread_rounds": 10,
        "thread_requests": 200,
        "max_texts": 64,
        "max_chars": 1000,
        "format_repeats": 5,
    },
    time_limit_s={"quick": 120, "full": 1800},
    key_results=(
        KeyResult("serve_test_acc", "served int8 model, test accuracy", ".3f", "-"),
        KeyResult("serve_errors", "server errors under load", "d", "-"),
    ),
    workload=_workload,
)
