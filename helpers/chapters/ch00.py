"""Chapter 00: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    return Workload("00_setup", "hardware check (seconds)", 0, 0.0)


CHAPTER = Chapter(
    stem="00_setup",
    section="setup",
    quick={"matmul_size": 1024, "matmul_repeats": 5, "bandwidth_mib": 64, "bandwidth_repeats": 5},
    full={
        "matmul_size": 8192,
        "matmul_repeats": 20,
        "bandwidth_mib": 1024,
        "bandwidth_repeats": 20,
    },
    time_limit_s={"quick": 60, "full": 300},
    key_results=(
        KeyResult("setup_matmul_tflops", "measured matmul rate (TFLOP/s)", ".3f", "-"),
        KeyResult("setup_reseed_identical", "reseeding reproduces every draw", "", "-"),
    ),
    workload=_workload,
)
