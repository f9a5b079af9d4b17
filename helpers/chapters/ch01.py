"""Chapter 01: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    return Workload("01_data_collection", "downloads and a crawl: network-bound", 0, 0.0)


CHAPTER = Chapter(
    stem="01_data_collection",
    section="collection",
    quick={"crawl_items": 24, "min_interval_s": 0.02},
    full={"crawl_items": 120, "min_interval_s": 0.2},
    time_limit_s={"quick": 90, "full": 900},
    key_results=(
        KeyResult("collect_n_images", "images collected (robots.txt and checksums kept)", "d", "-"),
    ),
    workload=_workload,
)
