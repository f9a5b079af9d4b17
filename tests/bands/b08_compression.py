"""Bands for chapter 08_compression: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "compress_int8_size_ratio": (
        (3.0, 5.0),
        "issue 13: at least 3x smaller; observed 3.84 (int8 weights, fp32 embeddings' share stays)",
    ),
    "compress_int8_acc_drop": (
        (-0.02, 0.01),
        "issue 13: a drop of at most 1 point; observed -0.004 "
        "to +0.006 on 1,000 test sentences (per-channel scales)",
    ),
    "text_fp32_acc": ((0.73, 0.85), "chapter 4's test band: observed 0.768-0.811; majority ~0.5"),
    "prune_mask_size_ratio": (
        (1.5, 2.5),
        "masks store weight_orig and weight_mask: observed 1.94; "
        "below 1.5 would mean the masks were not saved, or folded in",
    ),
    "prune_mask_verdict": (
        {"worse", "indistinguishable at this budget"},
        "a timing whose direction "
        "holds on every CPU: the masked net runs the same dense kernel plus a "
        "multiply by the mask before each forward pass, so it is never faster; "
        "observed worse at 2 seeds, indistinguishable at 3",
    ),
    "prune_structured_verdict": (
        {"better"},
        "a timing whose direction holds on every CPU: half the "
        "channels leave about a quarter of the multiply-adds of each inner "
        "convolution and the same kernels; better at seeds 0-4, and under "
        "ATEN_CPU_CAPABILITY=default with ONEDNN_MAX_CPU_ISA=SSE41",
    ),
    "prune_global_spares_first": (
        {True},
        "global magnitude pruning leaves the small first convolution "
        "below the net's overall sparsity (its weights are larger): at seeds "
        "0-4",
    ),
    "prune_structured_val_acc": (
        (0.85, 0.92),
        "observed 0.885-0.890 after one short fine-tune; dense 0.914-0.921",
    ),
    "prune_90_val_acc": (
        (0.80, 0.90),
        "observed 0.855-0.867 at 90% global sparsity, fine-tuned; chance is 0.1",
    ),
    "prune_most_sensitive": ({"features.0.0"}, "the first conv (144 weights) at seeds 0-4"),
    "onnx_max_abs_diff": (
        (0.0, 1e-3),
        "issue 13: ONNX Runtime matches PyTorch within 1e-3 at an "
        "unseen batch and length; observed <= 3e-6",
    ),
    "pt2_max_abs_diff": (
        (0.0, 1e-5),
        "the reloaded torch.export program runs the same kernels: observed 0",
    ),
    "cnn_int8_acc_drop": (
        (-0.01, 0.01),
        "static int8 with calibration: observed -0.0006 to +0.0004 on 10,000 test images",
    ),
    "distill_student_acc": ((0.78, 0.86), "observed 0.818-0.824 (mean of 5 seeds); chance is 0.1"),
    "student_alone_acc": ((0.77, 0.85), "observed 0.804-0.814 (mean of 5 seeds)"),
    "distill_gain": (
        (0.0, 0.04),
        "observed +0.008 to +0.015: distillation must not hurt the student at this budget",
    ),
    "distill_verdict": (
        {"better", "indistinguishable at this budget"},
        "better at seeds 0, 1, 3; indistinguishable at 2 and 4 (5 seeds, t interval); never worse",
    ),
}
