"""Chapter 14: the one declaration of its settings, time budget and key results.

Quick profile: Chapter 14: one epoch of 800 sentences per run, 2 methods x 3 seeds in about a
minute on 2 cores. MFU: the share of the measured fp32 matmul rate a small transformer reaches
on a CPU, assumed before measuring (the chapter measures it). LoRA's rate: Hu et al. use ~25x
the full fine-tuning rate for RoBERTa-base (5e-4 against 1e-5 to 2e-5).

Full profile: bert-base on 8,000 SST-2 sentences; a GPU reaches ~0.3-0.5 of its bf16 matmul rate
on a model this size (assumed; the chapter measures it).
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    cost = cfg("cost")
    return Workload(
        "14_compute_and_cost",
        f"{cost.model}: 2 methods x {cost.n_seeds} seeds x "
        f"{cost.num_epochs} epoch(s) x {cost.n_train:,} sentences",
        2 * cost.n_seeds * cost.num_epochs * cost.n_train,
        flops.text(cost.model, cost.max_length),
    )


CHAPTER = Chapter(
    stem="14_compute_and_cost",
    section="cost",
    quick={
        "dataset": "rotten-tomatoes",
        "model": "minilm-l6",
        "n_train": 800,
        "n_val": 500,
        "n_test": 1000,
        "n_seeds": 3,
        "max_length": 64,
        "batch_size": 32,
        "lr": 0.00015,
        "num_epochs": 1,
        "weight_decay": 0.01,
        "warmup_fraction": 0.1,
        "freeze_embeddings": True,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_lr": 0.006,
        "assumed_mfu": 0.5,
        "grid_g_co2_per_kwh": 400.0,
        "country": "FRA",
        "price_table": None,
    },
    full={
        "dataset": "sst-2",
        "model": "bert-base-uncased",
        "n_train": 8000,
        "n_val": 2000,
        "n_test": 0,
        "n_seeds": 3,
        "max_length": 128,
        "batch_size": 32,
        "lr": 2e-05,
        "num_epochs": 1,
        "weight_decay": 0.01,
        "warmup_fraction": 0.1,
        "freeze_embeddings": False,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_lr": 0.0005,
        "assumed_mfu": 0.35,
        "grid_g_co2_per_kwh": 400.0,
        "country": "FRA",
        "price_table": None,
    },
    budget_s={"quick": 150, "full": 3600},
    key_results=(
        KeyResult("cost_time_pred_ratio", "measured over predicted epoch time", ".2f", "-"),
        KeyResult("flops_6nd_ratio", "counted FLOPs over 6ND", ".3f", "Kaplan et al. 2020: ~6 N D"),
        KeyResult(
            "lora_trainable_frac",
            "share of parameters LoRA trains",
            ".4f",
            "Hu et al.: 0.3 M of 125 M (0.24%)",
        ),
    ),
    workload=_workload,
)
