"""Bands for chapter 10_privacy_dp: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "dp_eps_within_5pct": ({True}, "issue 15: the accountant's epsilon within 5% of each target"),
    "dp_eps_achieved": (
        (7.6, 8.0),
        "issue 15: within 5% of the target 8 (Opacus stops at or below it); observed 7.9993",
    ),
    "nodp_acc": ((0.80, 0.88), "observed 0.833-0.856 (2,000 members, 10 epochs)"),
    "dp_acc": ((0.72, 0.83), "observed 0.771-0.794 at eps 8: below the non-private model"),
    "dp_acc_eps1": ((0.58, 0.72), "observed 0.651-0.678 at eps 1; chance is 0.1"),
    "mia_auc_nodp_low": (
        (0.52, 0.70),
        "issue 15: the attack on the non-private model beats chance "
        "(interval above 0.5); observed 0.575-0.604 over 4,000 points",
    ),
    "mia_auc_nodp": ((0.55, 0.72), "observed 0.594-0.622"),
    "mia_dp_verdict": (
        {"better", "indistinguishable at this budget"},
        "indistinguishable at seeds "
        "0-4: 20 false positives at 1% FPR cannot separate TPRs of 0.01-0.02 (the "
        "notebook says so); worse would contradict DP",
    ),
    "mia_tpr_gap": ((-0.01, 0.04), "observed +0.0005 to +0.010: the attack is not stronger on DP"),
    "dp_prv_tighter": (
        {True},
        "PRV's numerical composition is tighter than the RDP bound at every "
        "epoch (observed); it also matches the engine's epsilon",
    ),
}
