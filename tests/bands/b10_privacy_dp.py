"""Bands for chapter 10_privacy_dp: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "dp_eps_within_5pct": ({True}, "issue 15: the accountant's epsilon within 5% of each target"),
    "dp_eps_achieved": (
        (7.6, 8.0),
        "issue 15: within 5% of the target 8 (Opacus stops at or below it); observed 7.996 at seeds 0-4",
    ),
    "nodp_acc": ((0.80, 0.88), "observed 0.837-0.844 at seeds 0-4 (1,000 members, 20 epochs)"),
    "dp_acc": (
        (0.70, 0.82),
        "observed 0.739-0.782 at eps 8 at seeds 0-4 (about 2 sd either side): below the non-private model",
    ),
    "dp_acc_eps1": ((0.45, 0.70), "observed 0.515-0.625 at eps 1 at seeds 0-4; chance is 0.1"),
    "mia_auc_nodp_low": (
        (0.62, 0.78),
        "the attack on the non-private model beats chance (interval above 0.5); observed "
        "0.691-0.724 at seeds 0-4 over 2,000 points",
    ),
    "mia_auc_nodp": ((0.66, 0.80), "online LiRA, fixed variance, 8 shadows: observed 0.714-0.743"),
    "mia_tpr_1fpr_nodp_low": (
        (0.02, 0.20),
        "issue 29's acceptance: the low end of the 95% interval of TPR at 1% FPR on the "
        "non-private target is above 2% (chance is 1%); observed 0.084-0.104 at seeds 0-4",
    ),
    "mia_tpr_1fpr_nodp": ((0.07, 0.20), "observed 0.112-0.131 at seeds 0-4"),
    "mia_tpr_1fpr_dp": (
        (0.0, 0.04),
        "against the DP model (eps 8) the attack stays near chance (0.01): observed 0.009-0.015",
    ),
    "mia_dp_verdict": (
        {"better"},
        "the attack is stronger against the non-private model than against the DP one at every "
        "seed 0-4 (paired interval's low end 0.063-0.092)",
    ),
    "mia_tpr_gap": ((0.05, 0.20), "non-private minus DP, TPR at 1% FPR: observed 0.102-0.122"),
    "dp_prv_tighter": (
        {True},
        "PRV's numerical composition is tighter than the RDP bound at every "
        "epoch (observed); it also matches the engine's epsilon",
    ),
}
