"""Bands for chapter 05_hyperparameter_tuning: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "tune_best_acc": ((0.76, 0.88), "observed 0.795-0.843 (best validation score of ~95 trials)"),
    "tune_test_acc": ((0.74, 0.87), "observed 0.779-0.835; tested once"),
    "tune_pruned_trials": (
        (9.5, 16.0),
        "observed 11.3-12.7: pruning spends the same 18 epochs on "
        "more than the 9 trials of an unpruned search",
    ),
    "tune_top_param": ({"lr"}, "lr at seeds 0-4, with importance 0.95-0.997"),
    "tune_retried_ok": ({True}, "a killed worker's trial must fail and run again"),
}
