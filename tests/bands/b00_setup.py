"""Bands for chapter 00_setup: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "setup_reseed_identical": (
        {True},
        "seed_everything must reproduce Python, NumPy and torch "
        "draws; a seeding bug makes this False",
    ),
}
