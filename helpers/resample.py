"""Resampling a test set: the bootstrap as a matrix of weights, and metrics as weighted counts.

Taught in ``notebooks/07_evaluation_fairness.ipynb`` (section 2, "One number is not enough");
``helpers/evaluate.py`` builds its intervals, paired comparisons, slices and group disparities
on it, and re-exports ``METRICS`` and ``bootstrap_weights``.

A bootstrap resample of ``n`` rows is a vector of counts: how often each row was drawn (the
counts sum to ``n``). ``bootstrap_weights`` draws ``n_boot`` of them at once, as an
``[n_boot, n]`` matrix ``W``. A metric that is a sum over rows becomes a matrix product: the
accuracy of every resample is ``W @ correct / n``. ``weighted_metrics`` computes accuracy,
macro-F1, ROC AUC, average precision and ECE this way for every row of ``W`` together, and
``percentile_interval`` reads off the middle of their distribution.
``tests/test_evaluate.py`` checks each metric against scikit-learn given the same weights.

``check_probs`` validates what comes in (labels 0..K-1, probabilities ``[N, K]`` that sum to
1, the same rows), with messages that say what to pass instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "METRICS", "as_probs", "check_probs", "one_hot", "confidence_bins", "bootstrap_weights", "safe_div",
    "weighted_metrics", "check_metrics", "percentile_interval",
]

#: The metrics ``bootstrap_metrics`` knows. ``ece`` is lower-is-better; the others higher.
METRICS = ("accuracy", "macro_f1", "roc_auc", "average_precision", "ece")


# --- checking what comes in ----------------------------------------------------------------
def as_probs(probs: np.ndarray) -> np.ndarray:
    """``probs`` as a float ``[N, K]`` array (``[N]`` of P(positive) becomes two columns), after
    checking that each row is a finite probability distribution."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:  # P(positive) of a binary classifier
        probs = np.stack([1 - probs, probs], axis=1)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must be [N, classes] (or [N] of P(positive)), got shape "
                         f"{probs.shape}")
    if not np.isfinite(probs).all():
        row = int(np.flatnonzero(~np.isfinite(probs).all(1))[0])
        raise ValueError(f"probs must be finite; row {row} is {probs[row].tolist()}")
    outside = (probs < 0) | (probs > 1)
    if outside.any():
        row = int(np.flatnonzero(outside.any(1))[0])
        raise ValueError(f"probabilities must lie in [0, 1]; row {row} is {probs[row].tolist()}: "
                         "pass softmax(logits), not the logits")
    sums = probs.sum(1)
    if not np.allclose(sums, 1, atol=1e-4):
        row = int(np.flatnonzero(~np.isclose(sums, 1, atol=1e-4))[0])
        raise ValueError(f"each row of probs must sum to 1; row {row} sums to {sums[row]:.4f}: "
                         "pass softmax(logits), not the logits")
    return probs


def check_probs(y_true: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels as integers 0..K-1 and probabilities [N, K], of the same length."""
    probs = as_probs(probs)
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    if len(probs) != len(y):
        raise ValueError(f"{len(probs)} predictions but {len(y)} labels: they must be the same "
                         "rows, in the same order")
    if len(y) == 0:
        raise ValueError("no predictions to evaluate (0 rows)")
    if not np.issubdtype(y.dtype, np.integer):
        if y.dtype == bool or (np.issubdtype(y.dtype, np.number) and np.all(y == np.round(y))):
            y = y.astype(int)
        else:
            raise ValueError(f"labels must be class indices 0..{probs.shape[1] - 1}, got dtype "
                             f"{y.dtype} (e.g. {y[:3].tolist()})")
    bad = (y < 0) | (y >= probs.shape[1])
    if bad.any():
        raise ValueError(f"labels must be class indices 0..{probs.shape[1] - 1} for "
                         f"{probs.shape[1]} columns of probs; row {int(np.flatnonzero(bad)[0])} "
                         f"has label {y[bad][0]}")
    return y, probs


def one_hot(codes: np.ndarray, n: int) -> np.ndarray:
    """``[len(codes), n]`` float32 indicator matrix: row ``i`` has a 1 in column ``codes[i]``."""
    out = np.zeros((len(codes), n), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1
    return out


def confidence_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin (0..n_bins-1, equal width over [0, 1], right-closed) of each confidence."""
    edges = np.linspace(0, 1, n_bins + 1)
    return np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)


# --- bootstrap -------------------------------------------------------------------------------
def bootstrap_weights(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``[n_boot, n]`` resampling weights: row ``b`` says how often each of the ``n`` rows was
    drawn in resample ``b`` (each row sums to ``n``)."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"need at least one row and one resample, got n={n}, n_boot={n_boot}")
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    draws += np.arange(n_boot)[:, None] * n
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` where ``b > 0``, else 0 (an empty group or class contributes nothing)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _binary_auc_ap(score: np.ndarray, positive: np.ndarray, w: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision for every weight row at once (ties as scikit-learn)."""
    order = np.argsort(-score, kind="stable")  # descending: thresholds from high to low
    s, pos = score[order], positive[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # one group per distinct score
    wo = w[:, order]
    tp = np.add.reduceat(wo * pos, starts, axis=1)  # weighted positives at each score
    fp = np.add.reduceat(wo * ~pos, starts, axis=1)
    ptot, ntot = tp.sum(1), fp.sum(1)
    ctp, cfp = np.cumsum(tp, 1), np.cumsum(fp, 1)
    # AUC: each positive beats the negatives ranked below it, half for ties
    neg_below = ntot[:, None] - cfp
    auc = safe_div((tp * (neg_below + 0.5 * fp)).sum(1), ptot * ntot)
    auc[(ptot == 0) | (ntot == 0)] = np.nan
    ap = safe_div((tp * safe_div(ctp, ctp + cfp)).sum(1), ptot)
    ap[ptot == 0] = np.nan
    return auc, ap


def weighted_metrics(y: np.ndarray, probs: np.ndarray, w: np.ndarray, metrics: Sequence[str],
                     n_bins: int = 10) -> dict[str, np.ndarray]:
    """Each metric for every row of weights ``w`` ([B, N]), vectorized."""
    k = probs.shape[1]
    pred = probs.argmax(1)
    out: dict[str, np.ndarray] = {}
    total = w.sum(1)
    if "accuracy" in metrics:
        out["accuracy"] = w @ (pred == y).astype(np.float32) / total
    if "macro_f1" in metrics:
        confusion = (w @ one_hot(y * k + pred, k * k)).reshape(-1, k, k)
        tp = np.diagonal(confusion, axis1=1, axis2=2)
        f1 = safe_div(2 * tp, confusion.sum(1) + confusion.sum(2))
        out["macro_f1"] = f1.mean(1)
    if "roc_auc" in metrics or "average_precision" in metrics:
        classes = [1] if k == 2 else range(k)  # binary: the positive class, as scikit-learn
        pairs = [_binary_auc_ap(probs[:, c], y == c, w) for c in classes]
        out["roc_auc"] = np.mean([p[0] for p in pairs], axis=0)
        out["average_precision"] = np.mean([p[1] for p in pairs], axis=0)
    if "ece" in metrics:
        conf = probs.max(1)
        onehot = one_hot(confidence_bins(conf, n_bins), n_bins)
        gap = w @ (onehot * ((pred == y) - conf)[:, None].astype(np.float32))
        out["ece"] = np.abs(gap).sum(1) / total
    return {m: out[m] for m in metrics}


def check_metrics(metrics: Sequence[str]) -> list[str]:
    """``metrics`` as a list, after checking that each is one of ``METRICS``."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    return metrics


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` share of ``values`` (resamples that gave NaN are left out)."""
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(values, [alpha, 1 - alpha])
    return float(low), float(high)
