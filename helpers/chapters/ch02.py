"""Chapter 02: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    return Workload("02_data_cleaning", "duplicates and label issues: CPU (scikit-learn)", 0, 0.0)


CHAPTER = Chapter(
    stem="02_data_cleaning",
    section="cleaning",
    quick={"n_images": 3000, "n_texts": 3000, "flip_fraction": 0.06, "label_seeds": 3},
    full={"n_images": 12000, "n_texts": 12000, "flip_fraction": 0.06, "label_seeds": 5},
    time_limit_s={"quick": 90, "full": 900},
    key_results=(
        KeyResult("clean_label_issue_recall", "injected label errors found", ".3f", "-"),
        KeyResult("clean_dup_recall", "injected duplicates found", ".3f", "-"),
    ),
    workload=_workload,
)
