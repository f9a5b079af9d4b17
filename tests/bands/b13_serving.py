"""Bands for chapter 13_serving: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "serve_errors": ((0, 0), "issue 18: zero 5xx (and no dropped connection) across the load test"),
    "serve_completed": ((600, 600), "3 levels x 200 requests, all answered within the 30 s limit"),
    "serve_errors_threads": ((0, 0), "no 5xx in the threads rounds either"),
    "serve_bad_4xx": ((8, 8), "issue 18: every bad input gets a 4xx"),
    "serve_bad_healthy": ({True}, "issue 18: the server answers a health check after each"),
    "serve_payload_refused": (
        {True},
        "both safe loaders refuse the crafted pickle; its payload never runs",
    ),
    "serve_formats_max_diff": (
        (0.0, 1e-4),
        "the four formats give the model's own outputs: observed 0",
    ),
    "serve_test_acc": (
        (0.73, 0.85),
        "chapter 04's test band (the same fine-tune, int8): observed 0.772-0.808 at seeds 0-4",
    ),
    "serve_agreement": (
        (0.95, 1.0),
        "int8 per-channel against fp32: chapter 08 saw 98.1% on validation; observed 0.981-0.988",
    ),
    "serve_psi_same": (
        (0.0, 0.1),
        "validation vs test scores, same source: 'stable' by the rule of "
        "thumb; sampling noise alone ~0.02; observed 0.007-0.040",
    ),
    "serve_psi_shift": (
        (0.25, 5.0),
        "negative sentences only: a 'major shift' (above 0.25); observed 0.81-1.10",
    ),
    "serve_page_console_errors": (
        (0, 0),
        "issue 18: the page works in headless Chromium without console errors",
    ),
    "serve_card_matches": ({True}, "the service serves the card the chapter rendered"),
}
