"""Bands for chapter 04_bert_finetuning: what a correct quick run must record, and why.

A band is (low, high), inclusive, or a set of allowed values; its reason is a chance level, an
anchor, or the spread observed over seeds 0-4 of the quick profile. ``tests/test_notebooks.py``
holds the chapter's recorded results to them.
"""

BANDS = {
    "bert_val_acc": ((0.74, 0.85), "observed 0.774-0.809; the majority class is about 0.58"),
    "baseline_val_acc": ((0.67, 0.78), "observed 0.706-0.744"),
    "bert_test_acc": ((0.73, 0.85), "observed 0.768-0.811"),
    "bert_test_f1": ((0.76, 0.88), "observed 0.803-0.843"),
    "bert_test_ece": ((0.0, 0.08), "observed 0.030-0.041; twice the highest"),
    "bert_vs_baseline": ({"better"}, "better at seeds 0-4, interval low end 0.019-0.093"),
}
