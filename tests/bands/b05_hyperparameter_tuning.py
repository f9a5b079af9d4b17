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
    "best_low": ((0.7, 0.85), "the best configuration's 95% interval over seeds, low end: observed "
                 "0.776-0.800 at seeds 0-4 (issue 29: an accuracy interval stays within [0, 1])"),
    "best_high": ((0.8, 1.0), "its high end: observed 0.817-0.859; 1 is accuracy's bound"),
    "opt_best_vs_worst": ({"better"}, "the best of the tuned configurations beat the worst at seeds 0-4"),
    "tune_sur_near_top_verdict": (
        {"better"},
        "on the surrogate benchmark (30 study seeds) TPE reached near the top more often than random "
        "search at seeds 0-4, as Bergstra et al. (2011) report",
    ),
}
