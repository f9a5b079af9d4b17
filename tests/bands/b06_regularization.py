"""Bands for chapter 06_regularization: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "reg_baseline_gap_mean": ((0.13, 0.23), "observed 0.161-0.194"),
    "reg_test_acc": ((0.78, 0.84), "observed 0.800-0.815; tested once"),
    "reg_min_epoch_median": (
        (5, 12),
        "observed 7-9 of 15: the U-shape early stopping needs; "
        "without overfitting the minimum would be at 15",
    ),
    "reg_wd8_gap_verdict": ({"better"}, "better at seeds 0-4"),
    "reg_drop75_gap_verdict": ({"better"}, "better at seeds 0-4"),
    "reg_aug_gap_verdict": ({"better"}, "better at seeds 0-4"),
}
