"""Evaluating classifiers beyond one accuracy figure: how good, how sure, and for whom.

Calibration is introduced in ``notebooks/04_bert_finetuning.ipynb`` ("Is the model's confidence
honest?"); everything else is taught in ``notebooks/07_evaluation_fairness.ipynb``.

* **Intervals.** ``bootstrap_metrics`` resamples the test set (with replacement) and reports
  accuracy, macro-F1, ROC AUC, average precision and ECE with 95% percentile intervals. A
  resample is a vector of integer weights (how often each row was drawn), so every metric is a
  weighted count and all resamples are computed at once with numpy; ``tests/test_evaluate.py``
  checks each against scikit-learn given the same weights.
* **Two models, one test set.** ``paired_bootstrap`` resamples the rows once for both models
  (the difference of a metric, with its interval and a verdict); ``mcnemar`` is the exact test
  on the rows where exactly one model is right (``scipy.stats.binomtest``).
* **Calibration.** ``calibration_table``, ``expected_calibration_error`` (confidence bins, Guo
  et al. 2017), ``reliability_diagram``; ``fit_temperature`` on validation logits and
  ``apply_temperature`` on test logits.
* **Decisions.** ``choose_threshold`` picks a threshold on validation for stated costs of a
  false positive and a false negative; ``expected_cost`` scores it on test.
* **Slices and groups.** ``slice_metrics``: a metric per slice with its size and interval;
  empty slices are kept with ``n = 0``. ``group_metrics`` (Fairlearn's ``MetricFrame`` with its
  bootstrap) and ``disparities`` (demographic-parity and equalized-odds differences with
  intervals) for a sensitive attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.experiment import verdict

__all__ = [
    "METRICS", "calibration_table", "expected_calibration_error", "bootstrap_weights",
    "bootstrap_metrics", "per_class_metrics", "curve_band", "paired_bootstrap", "Paired",
    "mcnemar", "fit_temperature", "apply_temperature", "reliability_diagram",
    "choose_threshold", "expected_cost", "slice_metrics", "group_metrics", "disparities",
]

#: The metrics ``bootstrap_metrics`` knows. ``ece`` is lower-is-better; the others higher.
METRICS = ("accuracy", "macro_f1", "roc_auc", "average_precision", "ece")


# --- checking what comes in ----------------------------------------------------------------
def _as_probs(probs: np.ndarray) -> np.ndarray:
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


def _check(y_true: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels as integers 0..K-1 and probabilities [N, K], of the same length."""
    probs = _as_probs(probs)
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


def _one_hot(codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(codes), n), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1
    return out


# --- calibration -----------------------------------------------------------------------------
def calibration_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per confidence bin (equal width over [0, 1]): ``count``, mean ``confidence``,
    ``accuracy`` and their ``gap``. Empty bins are left out."""
    labels, probs = _check(labels, probs)
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    which = _bins(confidence, n_bins)
    rows = []
    for b in np.unique(which):
        inside = which == b
        rows.append({"bin": f"({edges[b]:.1f}, {edges[b + 1]:.1f}]", "count": int(inside.sum()),
                     "confidence": confidence[inside].mean(), "accuracy": correct[inside].mean()})
    table = pd.DataFrame(rows)
    table["gap"] = table["accuracy"] - table["confidence"]
    return table


def _bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(0, 1, n_bins + 1)
    return np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE: ``sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)|`` over confidence bins."""
    table = calibration_table(probs, labels, n_bins)
    return float((table["count"] * table["gap"].abs()).sum() / table["count"].sum())


def reliability_diagram(probs: np.ndarray, labels: np.ndarray, ax: Any = None, label: str = "",
                        n_bins: int = 10) -> Any:
    """Accuracy against confidence per bin (marker area ~ bin size), with the diagonal of a
    calibrated model; the legend carries the ECE."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    table = calibration_table(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    lowest = 1 / _as_probs(probs).shape[1]
    ax.plot([lowest, 1], [lowest, 1], "--", color="gray", lw=1)
    ax.plot(table["confidence"], table["accuracy"], "-", alpha=0.6)
    ax.scatter(table["confidence"], table["accuracy"], s=8 + 300 * table["count"] / table["count"].sum(),
               label=f"{label} (ECE {ece:.3f})".strip(), alpha=0.8)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy in the bin")
    ax.legend(fontsize=8)
    return ax


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _as_logits(logits: Any) -> np.ndarray:
    z = np.asarray(logits, dtype=float)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must be [N, classes], got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite")
    return z


def fit_temperature(logits: Any, labels: Any) -> float:
    """Temperature scaling (Guo et al. 2017): the ``T > 0`` that minimizes the negative
    log-likelihood of ``softmax(logits / T)`` on *validation* data. ``T > 1`` softens an
    over-confident model; the predicted class never changes. Fitted with
    ``scipy.optimize.minimize_scalar`` over ``log T``."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    z = _as_logits(logits)
    y, _ = _check(labels, _softmax(z))

    def nll(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(res.x))


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """Probabilities ``softmax(logits / temperature)``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return _softmax(_as_logits(logits) / temperature)


# --- bootstrap -------------------------------------------------------------------------------
def bootstrap_weights(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """``[n_boot, n]`` resampling weights: row ``b`` says how often each of the ``n`` rows was
    drawn in resample ``b`` (each row sums to ``n``)."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"need at least one row and one resample, got n={n}, n_boot={n_boot}")
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    draws += np.arange(n_boot)[:, None] * n
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
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
    auc = _safe_div((tp * (neg_below + 0.5 * fp)).sum(1), ptot * ntot)
    auc[(ptot == 0) | (ntot == 0)] = np.nan
    ap = _safe_div((tp * _safe_div(ctp, ctp + cfp)).sum(1), ptot)
    ap[ptot == 0] = np.nan
    return auc, ap


def _weighted_metrics(y: np.ndarray, probs: np.ndarray, w: np.ndarray, metrics: Sequence[str],
                      n_bins: int = 10) -> dict[str, np.ndarray]:
    """Each metric for every row of weights ``w`` ([B, N]), vectorized."""
    k = probs.shape[1]
    pred = probs.argmax(1)
    out: dict[str, np.ndarray] = {}
    total = w.sum(1)
    if "accuracy" in metrics:
        out["accuracy"] = w @ (pred == y).astype(np.float32) / total
    if "macro_f1" in metrics:
        confusion = (w @ _one_hot(y * k + pred, k * k)).reshape(-1, k, k)
        tp = np.diagonal(confusion, axis1=1, axis2=2)
        f1 = _safe_div(2 * tp, confusion.sum(1) + confusion.sum(2))
        out["macro_f1"] = f1.mean(1)
    if "roc_auc" in metrics or "average_precision" in metrics:
        classes = [1] if k == 2 else range(k)  # binary: the positive class, as scikit-learn
        pairs = [_binary_auc_ap(probs[:, c], y == c, w) for c in classes]
        out["roc_auc"] = np.mean([p[0] for p in pairs], axis=0)
        out["average_precision"] = np.mean([p[1] for p in pairs], axis=0)
    if "ece" in metrics:
        conf = probs.max(1)
        onehot = _one_hot(_bins(conf, n_bins), n_bins)
        gap = w @ (onehot * ((pred == y) - conf)[:, None].astype(np.float32))
        out["ece"] = np.abs(gap).sum(1) / total
    return {m: out[m] for m in metrics}


def _check_metrics(metrics: Sequence[str]) -> list[str]:
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    return metrics


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_metrics(y_true: Any, probs: Any, metrics: Sequence[str] = METRICS[:4],
                      n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
                      ) -> pd.DataFrame:
    """Each metric on the whole test set (``estimate``) with a ``confidence`` percentile
    bootstrap interval over ``n_boot`` resamples of its rows. ``probs`` is ``[N, K]`` (or
    ``[N]`` of P(positive)); ROC AUC and average precision are one-vs-rest macro averages
    for K > 2, as scikit-learn's ``roc_auc_score(multi_class="ovr")``."""
    y, probs = _check(y_true, probs)
    metrics = _check_metrics(metrics)
    full = _weighted_metrics(y, probs, np.ones((1, len(y)), np.float32), metrics)
    boot = _weighted_metrics(y, probs, bootstrap_weights(len(y), n_boot, seed), metrics)
    rows = {m: {"estimate": float(full[m][0]), **dict(zip(("ci_low", "ci_high"),
                                                           _percentiles(boot[m], confidence),
                                                           strict=True)), "n": len(y)}
            for m in metrics}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")


def per_class_metrics(y_true: Any, probs: Any, class_names: Sequence[str] | None = None,
                      n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
                      ) -> pd.DataFrame:
    """Precision, recall and F1 of each class with bootstrap intervals, and its ``support``."""
    y, probs = _check(y_true, probs)
    k = probs.shape[1]
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} columns of probs")
    pred = probs.argmax(1)
    codes = _one_hot(y * k + pred, k * k)

    def scores(w: np.ndarray) -> dict[str, np.ndarray]:
        cm = (w @ codes).reshape(-1, k, k)
        tp = np.diagonal(cm, axis1=1, axis2=2)
        return {"precision": _safe_div(tp, cm.sum(1)), "recall": _safe_div(tp, cm.sum(2)),
                "f1": _safe_div(2 * tp, cm.sum(1) + cm.sum(2))}

    full = scores(np.ones((1, len(y)), np.float32))
    boot = scores(bootstrap_weights(len(y), n_boot, seed))
    rows = []
    for c, name in enumerate(names):
        row: dict[str, Any] = {"class": name, "support": int((y == c).sum())}
        for m in ("precision", "recall", "f1"):
            row[m] = float(full[m][0, c])
            row[f"{m}_low"], row[f"{m}_high"] = _percentiles(boot[m][:, c], confidence)
        rows.append(row)
    return pd.DataFrame(rows).set_index("class")


def curve_band(y_true: Any, probs: Any, kind: str = "roc", positive: int = 1, n_boot: int = 200,
               confidence: float = 0.95, seed: int = 0, grid: int = 101) -> pd.DataFrame:
    """A ROC (``kind="roc"``: TPR against FPR) or precision-recall curve (``"pr"``: precision
    against recall) for class ``positive`` against the rest, on a common ``x`` grid, with the
    pointwise bootstrap band (``low``, ``high``)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if kind not in ("roc", "pr"):
        raise ValueError(f"kind must be 'roc' or 'pr', got {kind!r}")
    y, probs = _check(y_true, probs)
    is_pos, score = (y == positive).astype(int), probs[:, positive]
    if is_pos.min() == is_pos.max():
        raise ValueError(f"class {positive} is {'all' if is_pos[0] else 'none'} of the labels: "
                         "a curve needs both positives and negatives")
    xs = np.linspace(0, 1, grid)

    def curve(idx: np.ndarray) -> np.ndarray:
        if kind == "roc":
            fpr, tpr, _ = roc_curve(is_pos[idx], score[idx])
            return np.interp(xs, fpr, tpr)
        precision, recall, _ = precision_recall_curve(is_pos[idx], score[idx])
        return np.interp(xs, recall[::-1], precision[::-1])

    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if is_pos[idx].min() != is_pos[idx].max():
            boots.append(curve(idx))
    low, high = np.quantile(np.array(boots), [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return pd.DataFrame({"x": xs, "y": curve(np.arange(len(y))), "low": low, "high": high})


@dataclass(frozen=True)
class Paired:
    """Model ``a`` against model ``b`` on one test set: the metric of each, the difference
    ``a - b`` with its paired bootstrap interval, and the verdict for ``a`` (``"better"``,
    ``"worse"`` or ``"indistinguishable at this budget"``; for ECE lower is better)."""

    metric: str
    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    n: int
    verdict: str
    confidence: float = 0.95

    def __str__(self) -> str:
        pct = round(100 * self.confidence)
        return (f"{self.metric}: {self.a:.4f} vs {self.b:.4f}, difference {self.diff:+.4f}, {pct}% "
                f"CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}] over {self.n} rows: {self.verdict}")


def paired_bootstrap(y_true: Any, probs_a: Any, probs_b: Any, metric: str = "accuracy",
                     n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> Paired:
    """Is model ``a`` better than ``b`` on this test set? Both are scored on the *same*
    resamples, so the interval of the difference is much narrower than the two separate
    intervals would suggest."""
    y, pa = _check(y_true, probs_a)
    _, pb = _check(y_true, probs_b)
    if pa.shape != pb.shape:
        raise ValueError(f"the two models' probs differ in shape: {pa.shape} and {pb.shape}")
    (metric,) = _check_metrics([metric])
    ones = np.ones((1, len(y)), np.float32)
    w = bootstrap_weights(len(y), n_boot, seed)
    a, b = (_weighted_metrics(y, p, ones, [metric])[metric][0] for p in (pa, pb))
    diffs = _weighted_metrics(y, pa, w, [metric])[metric] - _weighted_metrics(y, pb, w, [metric])[metric]
    low, high = _percentiles(diffs, confidence)
    return Paired(metric, float(a), float(b), float(a - b), low, high, len(y),
                  verdict(low, high, metric != "ece"), confidence)


def mcnemar(y_true: Any, pred_a: Any, pred_b: Any) -> dict[str, float]:
    """McNemar's exact test: of the rows where exactly one model is right (``a_only``,
    ``b_only``), is the split further from 50:50 than chance allows? Returns both counts and
    the two-sided ``p_value`` (``scipy.stats.binomtest``)."""
    from scipy.stats import binomtest

    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    if not len(y) == len(a) == len(b):
        raise ValueError(f"{len(a)} and {len(b)} predictions but {len(y)} labels: they must be "
                         "the same rows")
    a_only, b_only = int(((a == y) & (b != y)).sum()), int(((a != y) & (b == y)).sum())
    p = 1.0 if a_only + b_only == 0 else binomtest(a_only, a_only + b_only, 0.5).pvalue
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p)}


# --- decisions -------------------------------------------------------------------------------
def _binary(y_true: Any, p_positive: Any) -> tuple[np.ndarray, np.ndarray]:
    y, probs = _check(y_true, p_positive)
    if probs.shape[1] != 2:
        raise ValueError(f"a threshold needs a binary classifier, got {probs.shape[1]} classes")
    return y, probs[:, 1]


def expected_cost(y_true: Any, p_positive: Any, threshold: float, cost_fp: float = 1.0,
                  cost_fn: float = 1.0) -> float:
    """Mean cost per example of predicting positive when ``p_positive >= threshold``."""
    y, p = _binary(y_true, p_positive)
    pred = p >= threshold
    return float((cost_fp * (pred & (y == 0)).sum() + cost_fn * (~pred & (y == 1)).sum()) / len(y))


def choose_threshold(y_val: Any, p_val: Any, cost_fp: float = 1.0, cost_fn: float = 1.0
                     ) -> tuple[float, pd.DataFrame]:
    """The threshold on P(positive) with the lowest mean cost on *validation*, and the cost of
    every candidate (each distinct score, plus 0 and above 1). With calibrated probabilities
    the best threshold is near ``cost_fp / (cost_fp + cost_fn)``."""
    if cost_fp < 0 or cost_fn < 0 or cost_fp + cost_fn == 0:
        raise ValueError(f"costs must be non-negative and not both 0, got fp {cost_fp}, fn {cost_fn}")
    y, p = _binary(y_val, p_val)
    candidates = np.unique(np.r_[0.0, p, np.nextafter(1.0, 2.0)])
    order = np.argsort(p)
    ps, ys = p[order], y[order]
    below = np.searchsorted(ps, candidates, side="left")  # predicted negative: p < threshold
    fn = np.r_[0, np.cumsum(ys == 1)][below]
    fp = (ys == 0).sum() - np.r_[0, np.cumsum(ys == 0)][below]
    cost = (cost_fp * fp + cost_fn * fn) / len(y)
    table = pd.DataFrame({"threshold": candidates, "false_pos": fp, "false_neg": fn, "cost": cost})
    return float(candidates[np.argmin(cost)]), table


# --- slices and groups -----------------------------------------------------------------------
def slice_metrics(y_true: Any, probs: Any, slices: Any, metric: str = "accuracy",
                  n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """``metric`` per slice, with its size ``n`` and a bootstrap interval (rows resampled
    within the slice). ``slices`` is one label per row (a list, array or Series; a pandas
    Categorical keeps unused categories) or a mapping ``name -> boolean mask``. A slice with
    no rows is reported with ``n = 0`` and no estimate: it is never dropped."""
    y, probs = _check(y_true, probs)
    (metric,) = _check_metrics([metric])
    if isinstance(slices, Mapping):
        masks = {name: np.asarray(m, dtype=bool) for name, m in slices.items()}
    else:
        labels = pd.Series(slices).reset_index(drop=True)
        if len(labels) != len(y):
            raise ValueError(f"{len(labels)} slice labels but {len(y)} rows")
        names = list(labels.cat.categories) if isinstance(labels.dtype, pd.CategoricalDtype) \
            else list(pd.unique(labels))
        masks = {name: (labels == name).to_numpy() for name in names}
    rows = []
    for i, (name, mask) in enumerate(masks.items()):
        if len(mask) != len(y):
            raise ValueError(f"the mask of slice {name!r} has {len(mask)} rows, the data {len(y)}")
        n = int(mask.sum())
        row: dict[str, Any] = {"slice": name, "n": n, "estimate": np.nan, "ci_low": np.nan,
                               "ci_high": np.nan}
        if n:
            ys, ps = y[mask], probs[mask]
            row["estimate"] = float(_weighted_metrics(ys, ps, np.ones((1, n), np.float32),
                                                      [metric])[metric][0])
            boot = _weighted_metrics(ys, ps, bootstrap_weights(n, n_boot, seed + i), [metric])
            row["ci_low"], row["ci_high"] = _percentiles(boot[metric], confidence)
        rows.append(row)
    return pd.DataFrame(rows).set_index("slice")


def _groups(sensitive: Any, n: int) -> pd.DataFrame:
    frame = sensitive.to_frame() if isinstance(sensitive, pd.Series) else pd.DataFrame(sensitive)
    frame = frame.reset_index(drop=True)
    if len(frame) != n:
        raise ValueError(f"{len(frame)} sensitive values but {n} predictions")
    for col in frame.columns:
        if frame[col].isna().any():
            raise ValueError(f"the group column {col!r} has {int(frame[col].isna().sum())} "
                             "missing values: fill them (e.g. 'unknown') or drop those rows first")
        if frame[col].nunique() < 2:
            raise ValueError(f"the group column {col!r} has one group only "
                             f"({frame[col].iloc[0]!r}): a disparity needs two or more groups")
    return frame


def _hard(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    if len(y) != len(p):
        raise ValueError(f"{len(p)} predictions but {len(y)} labels: they must be the same rows")
    if len(y) == 0:
        raise ValueError("no predictions to evaluate (0 rows)")
    for name, v in (("labels", y), ("predictions", p)):
        if not set(np.unique(v)) <= {0, 1}:
            raise ValueError(f"{name} must be 0/1 for group metrics, got {sorted(set(np.unique(v)))[:5]}")
    return y, p


def group_metrics(y_true: Any, y_pred: Any, sensitive: Any, n_boot: int = 200,
                  confidence: float = 0.95, seed: int = 0) -> Any:
    """Fairlearn's ``MetricFrame`` of ``count``, ``selection_rate``, ``tpr`` and ``fpr`` per
    group of ``sensitive`` (a Series, or a DataFrame for intersections), with Fairlearn's
    bootstrap intervals (``.by_group_ci``, ``.difference_ci``)."""
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    y, p = _hard(y_true, y_pred)
    groups = _groups(sensitive, len(y))
    alpha = (1 - confidence) / 2
    return MetricFrame(metrics={"count": count, "selection_rate": selection_rate,
                                "tpr": true_positive_rate, "fpr": false_positive_rate},
                       y_true=y, y_pred=p, sensitive_features=groups, n_boot=n_boot,
                       ci_quantiles=[alpha, 1 - alpha], random_state=seed)


def _disparity_values(y: np.ndarray, p: np.ndarray, g: np.ndarray, w: np.ndarray
                      ) -> dict[str, np.ndarray]:
    onehot = _one_hot(g, g.max() + 1)
    n = w @ onehot
    sel = _safe_div(w @ (onehot * p[:, None]), n)
    pos = w @ (onehot * y[:, None])
    neg = n - pos
    tpr = _safe_div(w @ (onehot * (p * y)[:, None]), pos)
    fpr = _safe_div(w @ (onehot * (p * (1 - y))[:, None]), neg)

    def spread(v: np.ndarray, present: np.ndarray) -> np.ndarray:
        hi = np.where(present, v, -np.inf).max(1)
        lo = np.where(present, v, np.inf).min(1)
        return hi - lo

    return {"demographic_parity_difference": spread(sel, n > 0),
            "equalized_odds_difference": np.maximum(spread(tpr, pos > 0), spread(fpr, neg > 0))}


def disparities(y_true: Any, y_pred: Any, sensitive: Any, y_pred_b: Any = None,
                n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Demographic-parity difference (largest gap in selection rate between groups) and
    equalized-odds difference (the larger of the TPR gap and the FPR gap), as Fairlearn
    defines them, with bootstrap intervals. With ``y_pred_b`` (another model's predictions on
    the same rows), also the paired difference ``b - a`` and its interval."""
    y, p = _hard(y_true, y_pred)
    groups = _groups(sensitive, len(y))
    g = groups.astype(str).agg(" & ".join, axis=1).pipe(pd.factorize)[0]
    ones, w = np.ones((1, len(y)), np.float32), bootstrap_weights(len(y), n_boot, seed)
    y32, p32 = y.astype(np.float32), p.astype(np.float32)
    full, boot = _disparity_values(y32, p32, g, ones), _disparity_values(y32, p32, g, w)
    rows = {}
    for m in full:
        rows[m] = {"estimate": float(full[m][0]),
                   **dict(zip(("ci_low", "ci_high"), _percentiles(boot[m], confidence), strict=True))}
    if y_pred_b is not None:
        _, pb = _hard(y_true, y_pred_b)
        pb32 = pb.astype(np.float32)
        full_b, boot_b = _disparity_values(y32, pb32, g, ones), _disparity_values(y32, pb32, g, w)
        for m in full:
            low, high = _percentiles(boot_b[m] - boot[m], confidence)
            rows[m] |= {"estimate_b": float(full_b[m][0]), "b_minus_a": float(full_b[m][0] - full[m][0]),
                        "diff_low": low, "diff_high": high,
                        "verdict_b": verdict(low, high, higher_is_better=False)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")
