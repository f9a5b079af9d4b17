"""Bands for chapter 12_scaling_out: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "accum_max_grad_diff": (
        (0.0, 1e-5),
        "issue 17: accumulated gradients equal the large batch's "
        "(float32); observed 3.0e-8 to 9.3e-8",
    ),
    "accum_fit_weight_diff": (
        (0.0, 1e-4),
        "fit(accumulation_steps=4) ends where the 4x batch does, "
        "up to rounding amplified over an epoch's 16 steps: observed 3e-8 to "
        "3.2e-5; a wrong scale or an extra step moves weights by ~1e-2",
    ),
    "ckpt_max_grad_diff": (
        (0.0, 1e-5),
        "issue 17: checkpointed activations give the same gradients; observed 0",
    ),
    "ckpt_memory_ratio": (
        (0.0, 0.5),
        "checkpointing each of MiniLM's 6 layers keeps only their "
        "inputs: observed 0.046; above 0.5 it is not checkpointing",
    ),
    "ddp_world_size": ((2, 2), "two gloo ranks on this CPU"),
    "ddp_max_weight_diff": (
        (0.0, 1e-5),
        "issue 17: 2 DDP ranks end with one process's weights "
        "(same global batch); observed 6.0e-8 to 8.9e-8",
    ),
    "pg_workers": ((2, 2), "issue 17: at least 2 worker processes"),
    "pg_study_trials": ((4, 4), "2 workers x 2 trials, all in one study"),
    "pg_complete": ((4, 4), "every trial completes (none lost between the workers)"),
}
