"""Bands for chapter 11b_pii_encryption: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "pii_recall_email": ((0.9, 1.0), "issue 16: recall of at least 0.9; observed 1.0"),
    "pii_recall_phone": ((0.9, 1.0), "issue 16: recall of at least 0.9; observed 1.0"),
    "pii_recall_card": ((0.9, 1.0), "issue 16: recall of at least 0.9; observed 1.0"),
    "pii_recall_person": (
        (0.85, 0.99),
        "measured and reported (issue 16); observed 0.926-0.956 with en_core_web_sm",
    ),
    "pii_precision_micro": ((0.97, 1.0), "observed 0.999-1.0 on the planted test texts"),
    "pii_default_recall_card": (
        (0.55, 0.92),
        "Presidio as shipped misses 2-series Mastercard and "
        "12/19-digit cards: observed 0.707-0.814",
    ),
    "pii_rt_other": (
        (0, 5),
        "critics' sentences hold no e-mails, phones or cards: observed 0; an "
        "earlier phone setting (leniency 0, all regions) flagged 59 ratings and years",
    ),
    "pii_rt_person": ((250, 420), "actors and directors: observed 322-340 spans in 1,000 reviews"),
    "pii_decrypt_roundtrip": ({True}, "Presidio's encrypt operator is reversible with the key"),
    "kanon_k": ((5, 5), "the k the chapter reports"),
    "kanon_suppressed": (
        (0, 50),
        "at most 5% of 1,000 rows may be suppressed (k_anonymize's limit); observed 29",
    ),
    "kanon_acc_orig": (
        (0.68, 0.76),
        "chapter 07's credit model, mean over 20 splits: observed 0.724-0.731 at seeds 0-4",
    ),
    "kanon_acc_cost": (
        (-0.025, 0.015),
        "original minus 5-anonymous, 20 splits: observed -0.0055 to -0.0027 at seeds 0-4; "
        "consecutive seeds share 19 of 20 splits, so that spread understates the noise: the band "
        "widens it by about three of a run's 95% half-widths (0.006). The quasi-identifiers carry "
        "little signal (removing them at k = 25 costs nothing measurable); a generalization that "
        "missed the test rows, or scrambled other columns, would cost more",
    ),
    "kanon_cost_verdict": (
        {"indistinguishable at this budget", "worse"},
        "indistinguishable at every seed 0-4 (interval upper ends +0.001 to +0.003, a small gain "
        "on average, so a gain that excludes zero may come up); a cost that excludes zero would "
        "contradict the k = 25 release, which removes the quasi-identifiers at no measurable cost",
    ),
    "enc_key_source": (
        {"environment"},
        "the test sets DL_HANDBOOK_KEY; the variable wins over the key file, as the chapter says",
    ),
    "enc_roundtrip_ok": ({True}, "a sealed checkpoint comes back bit for bit"),
    "enc_tamper_detected": ({True}, "issue 16: one flipped bit fails Fernet's HMAC"),
    "enc_wrong_key_detected": ({True}, "another key fails the HMAC"),
    "he_max_abs_err": (
        (0.0, 1e-4),
        "CKKS at scale 2^40: observed 2.6e-7 to 4.4e-7 at seeds 0-4 (29 features)",
    ),
    "he_same_decisions": ({True}, "errors of 1e-7 cannot flip a credit decision"),
}
