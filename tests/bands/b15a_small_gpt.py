"""Bands for chapter 15a_small_gpt: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile (2 CPU cores). Each seed
changes the document split, the tokenizer's training documents, the initializations and the
samples. ``tests/test_notebooks.py`` holds the chapter's recorded results to them.

Timing: only the KV cache's speed-up is banded, and only its direction (above 1): without the
cache every step recomputes the whole context, with it one position, so it holds on every CPU.
"""

BANDS = {
    "lm_init_loss": (
        (5.614, 6.862),
        "issue 31: within 10% of ln(512) = 6.238, the loss of a uniform guess over the vocabulary; "
        "observed 6.247-6.256 at seeds 0-4",
    ),
    "lm_causal": ({True}, "changing a later token must leave earlier logits unchanged (the causal mask)"),
    "lm_attention_diff": (
        (0.0, 1e-4),
        "the written-out attention and F.scaled_dot_product_attention compute the same numbers; "
        "observed 4.8e-07 to 6.0e-07 (fp32 rounding) at seeds 0-4",
    ),
    "lm_round_trip": ({True}, "byte-level BPE decodes every text back to itself"),
    "lm_bytes_per_token": (
        (1.9, 2.3),
        "observed 2.078-2.083 at seeds 0-4 (512 tokens on English); 1.0 would be bytes alone",
    ),
    "lm_vs_bigram": (
        {"better"},
        "issue 31: the GPT beats the count-based bigram on held-out documents; better at all of "
        "seeds 0-4, with the paired interval's upper end at -7.6 to -9.2 perplexity",
    ),
    "lm_ppl_diff_high": (
        (-15.0, -4.0),
        "GPT minus bigram perplexity, upper end of the paired 95% interval: observed -9.16 to "
        "-7.58 at seeds 0-4 (sd 0.63); below 0 is what 'better' means",
    ),
    "lm_ppl": ((31.0, 40.0), "observed 34.3-36.5 at seeds 0-4 (sd 0.94); the bigram scores 43.2-44.4"),
    "lm_test_bpb": (
        (2.35, 2.58),
        "observed 2.446-2.503 bits per byte at seeds 0-4 (sd 0.023); the bigram 2.613-2.640",
    ),
    "lm_kv_identical": (
        {True},
        "issue 31: greedy decoding gives the same tokens with and without the cache (true at seeds 0-4)",
    ),
    "lm_kv_speedup": (
        (1.01, 20.0),
        "issue 31: above 1. Without the cache each of the 56 steps runs the whole context, with it "
        "one position: faster on any CPU. Observed 1.52-2.10 at seeds 0-4; the upper end only "
        "catches a broken timer",
    ),
    "lm_scaling_exponent": (
        (0.015, 0.047),
        "positive: held-out loss falls with size at a fixed token budget. Observed 0.0251-0.0364 at "
        "seeds 0-4 (mean 0.028, sd 0.0045), the range widened by about 2 sd; well below Kaplan et "
        "al.'s 0.076, since the larger models see few tokens per parameter",
    ),
    "lm_scaling_exponent_low": (
        (0.013, 0.045),
        "the exponent's 95% interval over held-out documents, lower end: observed 0.0244-0.0354 at "
        "seeds 0-4; the interval is narrow (about 0.0015 wide), far narrower than the spread "
        "between seeds (exercise 2)",
    ),
    "lm_scaling_exponent_high": (
        (0.017, 0.049),
        "the same interval's upper end: observed 0.0258-0.0373 at seeds 0-4",
    ),
}
