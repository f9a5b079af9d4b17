"""Bands for chapter 06_regularization: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "reg_baseline_gap_mean": ((0.13, 0.23), "observed 0.165-0.189 (5 seeds per run)"),
    "reg_test_acc": ((0.78, 0.84), "observed 0.797-0.810; tested once"),
    "reg_min_epoch_median": (
        (5, 12),
        "observed 8-9 of 15: the U-shape early stopping needs; "
        "without overfitting the minimum would be at 15",
    ),
    # Holm-corrected over the chapter's 16 comparisons with none, 5 seeds each
    "reg_wd8_gap_verdict": ({"better"}, "better at seeds 0-4, after Holm's correction"),
    "reg_drop75_gap_verdict": (
        {"better", "indistinguishable at this budget"},
        "better at seeds 0-4 on an AVX-512 EPYC; indistinguishable at seed 0 on an AVX2-only EPYC "
        "(gap 0.116 against 0.182, intervals apart, but its paired t-test over 5 seeds is 4th in "
        "Holm's order, threshold 0.05/13, and the kernels' rounding moves it across): never worse",
    ),
    "reg_aug_gap_verdict": ({"better"}, "better at seeds 0-4, after Holm's correction"),
    "reg_l1_adam_zero": (
        (0.0, 0.01),
        "observed 0 at seeds 0-4: L1 as a loss term under Adam leaves no exact zeros "
        "(the chapter's sentence turns on 1%)",
    ),
    "reg_l1_adam_small": (
        (0.08, 0.105),
        "observed 0.089-0.097 (sd 0.003) below 1e-3, against 0.016-0.018 without L1: about 3 sd",
    ),
    "reg_l1_prox_zero": (
        (0.30, 0.37),
        "observed 0.322-0.347 exactly zero (mean 0.331, sd 0.010) with the proximal step: about 3 sd",
    ),
}
