"""Chapter 12: the one declaration of its settings, time budget and key results."""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    sc = cfg("scaling")
    return Workload(
        "12_scaling_out",
        f"small CNN: {sc.ddp_epochs} DDP epochs x {sc.n_train:,} + "
        f"{sc.pg_trials} trials x {sc.pg_epochs} epochs x {sc.pg_n_train:,} images",
        sc.ddp_epochs * sc.n_train + sc.pg_trials * sc.pg_epochs * sc.pg_n_train,
        flops.cnn("small-cnn", "fashion-mnist"),
    )


CHAPTER = Chapter(
    stem="12_scaling_out",
    section="scaling",
    quick={
        "n_train": 1024,
        "global_batch": 64,
        "accum_steps": 4,
        "text_batch": 4,
        "text_len": 64,
        "amp_batch": 32,
        "amp_rounds": 10,  # alternating rounds of fp32 / bf16 (and eager / compiled) step timings
        "amp_repeats": 10,  # steps per timing (their median)
        "repeats": 3,
        "ddp_world": 2,
        "ddp_epochs": 1,
        "pg_workers": 2,
        "pg_trials": 2,
        "pg_n_train": 300,
        "pg_epochs": 1,
        "loader_workers": 2,
        "loader_epochs": 3,  # the first epoch pays the workers' start-up; later ones show persistent_workers
    },
    full={
        "n_train": 50000,
        "global_batch": 256,
        "accum_steps": 4,
        "text_batch": 16,
        "text_len": 128,
        "amp_batch": 256,
        "amp_rounds": 20,
        "amp_repeats": 10,
        "repeats": 20,
        "ddp_world": 2,
        "ddp_epochs": 2,
        "pg_workers": 4,
        "pg_trials": 10,
        "pg_n_train": 10000,
        "pg_epochs": 3,
        "loader_workers": 4,
        "loader_epochs": 3,
    },
    time_limit_s={"quick": 150, "full": 1800},
    key_results=(
        KeyResult("ddp_max_weight_diff", "DDP against one process (max weight diff.)", ".1e", "-"),
        KeyResult("ckpt_memory_ratio", "activation memory with checkpointing", ".3f", "-"),
    ),
    workload=_workload,
)
