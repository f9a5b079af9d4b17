"""Bands for chapter 07_evaluation_fairness: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "eval_ece_before": (
        (0.05, 0.20),
        "observed 0.098-0.114: chapter 6's unregularized CNN is "
        "over-confident (Guo et al. 2017); a calibrated net is near 0",
    ),
    "eval_ece_after": ((0.0, 0.05), "observed 0.009-0.023 after temperature scaling"),
    "eval_temperature": ((1.3, 3.5), "observed 1.80-2.45; T > 1 softens an over-confident net"),
    "eval_ece_verdict_overfit": ({"better"}, "better at seeds 0-4: the acceptance of issue 12"),
    "eval_temperature_lowers_ece": (
        {True},
        "temperature scaling must lower the ECE of at least one course model (issue 12)",
    ),
    "eval_auc_ci_low": ((0.78, 0.92), "observed 0.835-0.870 (1,000 test sentences); chance is 0.5"),
    "eval_vs_baseline": ({"better"}, "better at seeds 0-4, as chapter 4 finds on validation"),
    "eval_worst_class": (
        {"Shirt"},
        "Shirt at seeds 0-4: it is confused with T-shirt, pullover "
        "and coat, the known hardest Fashion-MNIST class",
    ),
    "eval_cv_std": (
        (0.01, 0.08),
        "observed 0.022-0.039; the binomial sd of one 140-row fold is "
        "about 0.037, so near 0 would mean identical folds",
    ),
    "fair_gap_before": ((0.08, 0.35), "observed 0.168-0.212: the naive model uses age"),
    "fair_gap_after": ((0.0, 0.15), "observed 0.001-0.093 after ThresholdOptimizer"),
    "fair_gap_lowered": (
        {True},
        "mitigation must lower the demographic-parity difference (issue 12); lower at seeds 0-4",
    ),
    "fair_acc_cost": (
        (-0.06, 0.06),
        "observed -0.027 to +0.007 at seeds 0-4: indistinguishable from 0 at 300 test "
        "applicants, whose paired interval reaches about +-0.02",
    ),
    "eval_threshold": (
        (0.6, 1.0),
        "observed 0.72-0.94 at seeds 0-4; cost_fp / (cost_fp + cost_fn) = 0.83 for calibrated "
        "probabilities, so a threshold near 0.5 would mean the costs were ignored",
    ),
    "eval_threshold_verdict": (
        {"better"},
        "the cost threshold chosen on validation is cheaper than 0.5 on test at seeds 0-4 "
        "(Elkan 2001: the threshold follows the costs)",
    ),
    "fair_parity_price": (
        (-0.01, 0.03),
        "observed -0.001 to +0.010 at seeds 0-4 (700 development rows, one row = 0.0014): the "
        "accuracy-best group thresholds nearly equalize selection rates, so parity costs little",
    ),
    "fair_min_group_n": (
        (8, 30),
        "observed 14-22 (the smallest sex x age group of 300 test applicants, about 5-7%)",
    ),
}
