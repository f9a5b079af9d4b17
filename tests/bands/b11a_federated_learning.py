"""Bands for chapter 11a_federated_learning: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "fl_iid_gap": (
        (-0.03, 0.02),
        "issue 16: FedAvg on IID clients within 2 points of centralized "
        "training (upper end); observed -0.007 to +0.012 (3 seeds each, seeds 0-4)",
    ),
    "fl_central_acc": ((0.80, 0.88), "observed 0.838-0.853 (3,000 images, 10 epochs, chosen lr)"),
    "fl_fedavg_acc": ((0.80, 0.88), "observed 0.835-0.851; chance is 0.1"),
    "fl_noniid_alpha": ((0.1, 0.1), "the smallest alpha of the quick profile"),
    "fl_noniid_gap": (
        (0.03, 0.30),
        "non-IID (alpha 0.1) costs accuracy: observed +0.100 to +0.162; "
        "below 0.03 the split would not be non-IID",
    ),
    "fl_flower_rounds": (
        (3, 3),
        "issue 16: the Flower run completes every round it was asked for, the dropout included",
    ),
    "fl_flower_drop_replies": ((2, 2), "2 of 3 SuperNodes answer round 2 after node 2 is stopped"),
    "fl_flower_drop_failures": (
        (1, 1),
        "the stopped node's reply is an error (Node Unavailable), not a silent omission",
    ),
    "fl_flower_leftover": ((0, 0), "issue 16: no Flower process left behind after the with block"),
    "fl_flower_acc": ((0.72, 0.86), "observed 0.783-0.813 after 3 rounds with a dropout"),
    "fl_flower_round1_diff": (
        (0.0, 0.0025),
        "Flower's round 1 is the plain fedavg's round 1 (same "
        "code and seeds): at most 5 of 2,000 test images may flip from "
        "float rounding; observed 0",
    ),
    "fl_dp_eps": (
        (18.5, 19.5),
        "RDP for noise 1.0, sampling rate 1, 10 rounds, delta 1e-5: 19.05 (deterministic)",
    ),
    "fl_dp_acc_few": (
        (0.0, 0.25),
        "3 clients with DP (one seed): the noise drowns the updates; observed 0.070-0.124 at "
        "seeds 0-4, chance 0.1",
    ),
    "fl_dp_acc_many": (
        (0.25, 0.70),
        "50 clients with DP, mean of 3 seeds: observed 0.352-0.534 at seeds 0-4 (about 2 sd "
        "either side); below the same clients without DP",
    ),
    "fl_many_clients_nonoise_acc": (
        (0.45, 0.75),
        "50 clients without DP, mean of 3 seeds: observed 0.545-0.651 at seeds 0-4 (about 2 sd "
        "either side); the upper end stays below the 3-client runs (0.835-0.851): 2 local steps "
        "per round instead of 32",
    ),
    "fl_clients_verdict": (
        {"better"},
        "3 clients against 50, both without DP: better at every seed 0-4 (a gap of about 0.2-0.3)",
    ),
    "fl_dp_many_verdict": (
        {"better", "indistinguishable at this budget"},
        "50 clients without DP against with DP: better at seeds 0-2, indistinguishable at 3-4 "
        "(3 seeds each); worse would mean the noise helped",
    ),
}
