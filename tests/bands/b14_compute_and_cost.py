"""Bands for chapter 14_compute_and_cost: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "flops_6nd_ratio": (
        (0.75, 1.25),
        "issue 19: counted FLOPs within 25% of 6ND at the measured length; observed 0.984",
    ),
    "cost_text_mfu": (
        (0.02, 1.2),
        "the share of this machine's own measured matmul rate a training "
        "step reaches: above 1 (plus timer noise) the FLOPs or the time would be "
        "miscounted, near 0 the step would do something else; observed 0.64. The "
        "prediction ratio itself depends on the CPU, so it is glued, not banded",
    ),
    "cost_mem_pred_ratio": (
        (0.8, 1.1),
        "observed 0.935-0.941: the peak holds no full set of "
        "gradients (zero_grad(set_to_none=True)); outside means the prediction "
        "or the measurement changed",
    ),
    "lora_trainable_frac": (
        (0.001, 0.02),
        "issue 19: LoRA trains under 2%; observed 0.0098 (r=8 "
        "on query and value, with the pooler and the head)",
    ),
    "lora_acc": (
        (0.66, 0.80),
        "LoRA at its chosen rate, mean of 3 seeds: observed 0.704-0.758 at seeds 0-4; chance is about "
        "0.5 (balanced reviews)",
    ),
    "full_ft_acc": (
        (0.70, 0.82),
        "full fine-tuning at its chosen rate (75 steps), mean of 3 seeds: observed 0.729-0.779 at seeds "
        "0-4, above this chapter's TF-IDF baseline (0.662-0.698) at every seed and above chapter 04's "
        "(0.744) at 4 of 5",
    ),
    "full_ft_lr": ({0.00015}, "the sweep chose chapter 04's rate, the grid's middle, at seeds 0-4"),
    "lora_lr": ({0.003}, "the sweep chose the LoRA grid's middle (20x full's) at seeds 0-4"),
    "lora_acc_gap_ci_low": ((-0.25, 0.2), "observed -0.139 to +0.119 with 3 seeds a side"),
    "lora_vs_full": (
        {"better", "indistinguishable at this budget"},
        "indistinguishable at seeds 0-4 (each at its own chosen rate); 'worse' would be new",
    ),
}
