"""Bands for chapter 02_data_cleaning: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "clean_dup_recall": (
        (0.97, 1.0),
        "observed 0.992-1.000; 120 injected copies, one miss costs 0.008",
    ),
    "clean_label_issue_recall": ((0.85, 1.0), "observed 0.883-0.906"),
    "clean_label_issue_precision": (
        (0.68, 1.0),
        "observed 0.768-0.874 (sd 0.04); 2 sd below the lowest",
    ),
    "clean_rows_after": ((2760, 2845), "observed 2789-2815 of 3170 records"),
    "clean_ten_class_precision": (
        {"lower on ten classes"},
        "label-error precision on all ten classes against five, paired over 3 seeds: lower at "
        "chapter seeds 0-4 (precision 0.330-0.346 against 0.827-0.855, interval high end -0.505 "
        "to -0.447); the section's lesson, so a detector that stops telling them apart fails",
    ),
}
