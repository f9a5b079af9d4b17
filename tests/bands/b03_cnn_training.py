"""Bands for chapter 03_cnn_training: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "cnn_test_acc": (
        (0.895, 0.93),
        "observed 0.904-0.912; above 0.93 would be implausible for "
        "3 epochs of this CNN (look for leakage)",
    ),
    "transfer_acc_mean": ((0.74, 0.83), "observed 0.771-0.796 (5 seeds each)"),
    "scratch_acc_mean": ((0.69, 0.78), "observed 0.725-0.747; chance is 0.10"),
    "transfer_vs_scratch": ({"better"}, "better at seeds 0-4, interval low end 0.014-0.032"),
    "middle_vs_last": ({"better"}, "better at seeds 0-4 (Yosinski et al. 2014 for why)"),
}
