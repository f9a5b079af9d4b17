"""Evaluating classifiers beyond accuracy: calibration first.

Introduced in ``notebooks/04_bert_finetuning.ipynb`` ("Is the model's confidence honest?").

A model is *calibrated* when, among the predictions it makes with confidence 0.8, 80% are
right. ``calibration_table`` bins predictions by their confidence (the probability of the
predicted class, ``max_k p_k``) and compares each bin's accuracy with its mean confidence;
``expected_calibration_error`` (ECE, Guo et al. 2017) is the average gap, weighted by how many
predictions fall in each bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["calibration_table", "expected_calibration_error"]


def _as_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:  # P(positive) of a binary classifier
        probs = np.stack([1 - probs, probs], axis=1)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must be [N, classes] (or [N] of P(positive)), got shape "
                         f"{probs.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any() or \
            not np.allclose(probs.sum(1), 1, atol=1e-4):
        raise ValueError("probs must be finite, non-negative, and sum to 1 per row: pass "
                         "softmax(logits), not the logits")
    return probs


def calibration_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per confidence bin (equal width over [0, 1]): ``count``, mean ``confidence``,
    ``accuracy`` and their ``gap``. Empty bins are left out."""
    probs, labels = _as_probs(probs), np.asarray(labels)
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} predictions but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no predictions to evaluate")
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in np.unique(which):
        inside = which == b
        rows.append({"bin": f"({edges[b]:.1f}, {edges[b + 1]:.1f}]", "count": int(inside.sum()),
                     "confidence": confidence[inside].mean(), "accuracy": correct[inside].mean()})
    table = pd.DataFrame(rows)
    table["gap"] = table["accuracy"] - table["confidence"]
    return table


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE: ``sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)|`` over confidence bins."""
    table = calibration_table(probs, labels, n_bins)
    return float((table["count"] * table["gap"].abs()).sum() / table["count"].sum())
