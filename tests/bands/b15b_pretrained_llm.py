"""Bands for chapter 15b_pretrained_llm: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, a count fixed by the shipped model, or the spread observed over seeds 0-4 of the quick
profile (2 CPU cores; AMD EPYC with AVX-512 and VNNI). A seed changes the 160 scored sentences,
the few-shot examples and LoRA's initialization. The accuracies are over 160 sentences of
balanced Rotten Tomatoes (chance 0.5; one standard error is about 0.035).

Timing: the KV cache's speed-up is banded by its direction (above 1): without the cache every new
token recomputes the whole context. int8's speed-up has no direction that holds on every CPU: it
measured 0.45-1.56 over seeds 0-4 on one CPU, so it depends on the CPU and the moment. Its band
asserts no direction, only that int8 generation ran at fp32's order of speed, between 10x slower
and 10x faster: a path that fell off the int8 kernels (dequantizing every weight in Python at
each step, say) would run far slower than that.
"""

_NOT_BETTER = {"worse", "indistinguishable at this budget"}

BANDS = {
    "llm_params": ({134515008}, "SmolLM2-135M-Instruct's parameter count, fixed by the shipped GGUF"),
    "llm_bpb": ((1.5, 1.75), "observed 1.599-1.658 bits per byte at seeds 0-4"),
    "llm_bpb_vs_small": ({"better"}, "the pretrained LLM beat chapter 15a's small GPT at seeds 0-4"),
    "llm_zero_shot_acc": ((0.5, 0.8), "chance 0.5 at the bottom; observed 0.575-0.700 at seeds 0-4"),
    "llm_few_shot_acc": ((0.5, 0.8), "chance 0.5 at the bottom; observed 0.569-0.725 at seeds 0-4"),
    "llm_lora_acc": ((0.6, 0.88), "observed 0.688-0.788 at seeds 0-4"),
    "llm_minilm_acc": ((0.7, 0.9), "chapter 04's fine-tuned MiniLM on these rows; observed 0.750-0.844"),
    "llm_zero_shot_vs_finetuned": (_NOT_BETTER, "worse than the fine-tuned encoder at seeds 0-4"),
    "llm_few_shot_vs_finetuned": (_NOT_BETTER, "worse (3 seeds) or indistinguishable (2) at seeds 0-4"),
    "llm_lora_vs_finetuned": (_NOT_BETTER, "worse (2 seeds) or indistinguishable (3) at seeds 0-4"),
    "llm_int8_size_ratio": (
        (0.35, 0.45),
        "int8 linear weights (1 byte + a scale per row) beside fp32 embeddings and norms: "
        "0.4099 at every seed (a size, fixed by the model's shapes)",
    ),
    "llm_int8_acc_vs_fp32": (
        {"indistinguishable at this budget", "better"},
        "int8 weights must not cost accuracy: indistinguishable at seeds 0-4",
    ),
    "llm_int8_speedup": (
        (0.1, 10.0),
        "no direction (see above): fp32's order of speed either way; observed 0.45-1.56 at seeds 0-4",
    ),
    "llm_kv_identical": ({True}, "greedy decoding with and without the cache gives the same tokens"),
    "llm_kv_speedup": ((1.01, 20.0), "direction only: observed 2.52-3.04 at seeds 0-4"),
}
