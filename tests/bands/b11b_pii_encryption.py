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
    "kanon_acc_orig": ((0.68, 0.76), "chapter 07's credit model: observed 0.714-0.721"),
    "kanon_acc_cost": (
        (-0.04, 0.03),
        "the quasi-identifiers carry little signal: observed -0.013 to "
        "-0.005; a broken generalization (e.g. every column dropped) costs more",
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
        "CKKS at scale 2^40: observed ~3e-7 (environment notes: 1.4e-6 for a 64x10 layer)",
    ),
    "he_same_decisions": ({True}, "errors of 1e-7 cannot flip a credit decision"),
}
