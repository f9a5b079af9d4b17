"""Chapter 15a: the one declaration of its settings, time budget and key results.

Quick profile: four GPT sizes, the largest with nanoGPT's CPU configuration's 4 layers, 4 heads
and context 64 but 96 dimensions instead of 128, each trained on the same 1,500,000 tokens of
the Rotten Tomatoes snippets with a 512-token byte-level BPE: about 85 s of training on 2 cores.
Measured while choosing: at 800,000 tokens the 128-wide model had not yet beaten the
count-based bigram (held-out loss 3.82 against 3.77), at 1,200,000 the 96-wide one had (3.67);
more tokens bought more than more width at this budget. A 512-token vocabulary keeps the output
layer small beside the blocks (at 2,048 the bigram was not beaten within the budget either). The
peak learning rate is ``lr_width / d_model`` (wider models, smaller steps).

Full profile: one GPU, larger models (up to 6 layers x 256) on more tokens of the same corpus,
the only one offline; the larger ones see the corpus about ten times over.
"""

from . import Chapter, ConfigOf, Flops, KeyResult, Workload


def _training_flops_per_token(n_layer: int, d_model: int, vocab: int) -> float:
    """6 x (the blocks' 12 d^2 per layer + the tied output layer's vocab x d) per token."""
    return 6.0 * (12 * n_layer * d_model**2 + vocab * d_model)


def _workload(cfg: ConfigOf, flops: Flops) -> Workload:
    gpt = cfg("small_gpt")
    per_token = [_training_flops_per_token(n, d, gpt.vocab_size) for n, d, _ in gpt.sizes]
    return Workload(
        "15a_small_gpt",
        f"{len(gpt.sizes)} GPT sizes x {gpt.tokens:,} tokens",
        len(gpt.sizes) * gpt.tokens,
        sum(per_token) / len(per_token),
    )


CHAPTER = Chapter(
    stem="15a_small_gpt",
    section="small_gpt",
    quick={
        "dataset": "rotten-tomatoes",
        "vocab_size": 512,
        "n_val_docs": 500,
        "n_test_docs": 1000,
        "block_size": 64,
        "sizes": ((1, 32, 2), (2, 48, 4), (3, 64, 4), (4, 96, 4)),
        "tokens": 1_500_000,
        "batch_size": 32,
        "lr_width": 0.4,
        "warmup_fraction": 0.1,
        "assumed_mfu": 0.5,
        "n_samples": 8,
        "sample_tokens": 40,
        "temperature": 0.8,
        "top_k": 40,
        "top_p": 0.9,
        "kv_new_tokens": 56,
        "n_boot": 1000,
    },
    full={
        "dataset": "rotten-tomatoes",
        "vocab_size": 2048,
        "n_val_docs": 500,
        "n_test_docs": 1000,
        "block_size": 128,
        "sizes": ((2, 64, 4), (4, 128, 4), (4, 192, 6), (6, 256, 8)),
        "tokens": 4_000_000,
        "batch_size": 64,
        "lr_width": 0.4,
        "warmup_fraction": 0.1,
        "assumed_mfu": 0.3,
        "n_samples": 16,
        "sample_tokens": 60,
        "temperature": 0.8,
        "top_k": 40,
        "top_p": 0.9,
        "kv_new_tokens": 120,
        "n_boot": 1000,
    },
    time_limit_s={"quick": 150, "full": 1800},
    key_results=(
        KeyResult("lm_vs_bigram", "small GPT against a count-based bigram, held-out perplexity",
                  "", "-"),
        KeyResult("lm_test_bpb", "small GPT, held-out bits per byte", ".3f",
                  "nanoGPT shakespeare-char, CPU configuration: loss 1.88 nats/char "
                  "(2.71 bits/char; another corpus)"),
        KeyResult("lm_scaling_exponent", "alpha in loss ~ N^-alpha, fixed token budget", ".3f",
                  "Kaplan et al. 2020: alpha_N 0.076"),
        KeyResult("lm_test_loss", "small GPT, held-out loss (nats per token, 512-token BPE)", ".3f",
                  "llama2.c on TinyStories: validation loss 1.297 at 260 K parameters, 0.760 at "
                  "110 M (another corpus and tokenizer)"),
        KeyResult("lm_tokens_per_param", "training tokens per non-embedding parameter, largest size",
                  ".1f", "Chinchilla (Hoffmann et al. 2022): about 20 is compute-optimal"),
        KeyResult("lm_kv_speedup", "generation speed-up from the KV cache", ".2f",
                  "LLMs-from-scratch, 124 M GPT on an M4 CPU: 27 -> 110 tokens/s"),
    ),
    workload=_workload,
)
