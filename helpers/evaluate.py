"""Evaluating classifiers beyond one accuracy figure: how good, how sure, and for whom.

Calibration is introduced in ``notebooks/04_bert_finetuning.ipynb`` ("Is the model's confidence
honest?"); everything else is taught in ``notebooks/07_evaluation_fairness.ipynb``.

* **Intervals.** ``bootstrap_metrics`` resamples the test set (with replacement) and reports
  accuracy, macro-F1, ROC AUC, average precision and ECE with 95% percentile intervals. A
  resample is a vector of integer weights (how often each row was drawn), so every metric is a
  weighted count and all resamples are computed at once with numpy: that engine is
  ``helpers/resample.py`` (``bootstrap_weights`` and ``METRICS`` are importable from here too).
* **Two models, one test set.** ``paired_bootstrap`` resamples the rows once for both models
  (the difference of a metric, with its interval and a verdict); ``mcnemar`` is the exact test
  on the rows where exactly one model is right (``scipy.stats.binomtest``).
* **Calibration.** ``calibration_table``, ``expected_calibration_error`` (confidence bins, Guo
  et al. 2017), ``reliability_diagram``; ``fit_temperature`` on validation logits and
  ``apply_temperature`` on test logits.
* **Decisions.** ``choose_threshold`` picks a threshold on validation for stated costs of a
  false positive and a false negative; ``expected_cost`` scores it on test, and
  ``paired_cost`` compares two thresholds on the same test rows (paired bootstrap).
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
from helpers.resample import (
    METRICS,
    as_probs,
    bootstrap_weights,
    check_metrics,
    check_probs,
    confidence_bins,
    one_hot,
    percentile_interval,
    safe_div,
    weighted_metrics,
)

__all__ = [
    "METRICS", "calibration_table", "expected_calibration_error", "bootstrap_weights",
    "bootstrap_metrics", "per_class_metrics", "curve_band", "paired_bootstrap", "Paired",
    "mcnemar", "fit_temperature", "apply_temperature", "reliability_diagram",
    "choose_threshold", "expected_cost", "paired_cost", "slice_metrics", "group_metrics",
    "disparities",
]


# --- calibration -----------------------------------------------------------------------------
def calibration_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per confidence bin (equal width over [0, 1]): ``count``, mean ``confidence``,
    ``accuracy`` and their ``gap``. Empty bins are left out."""
    labels, probs = check_probs(labels, probs)
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    which = confidence_bins(confidence, n_bins)
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


def reliability_diagram(probs: np.ndarray, labels: np.ndarray, ax: Any = None, label: str = "",
                        n_bins: int = 10) -> Any:
    """Accuracy against confidence per bin (marker area ~ bin size), with the diagonal of a
    calibrated model; the legend carries the ECE."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    table = calibration_table(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    lowest = 1 / as_probs(probs).shape[1]
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
    y, _ = check_probs(labels, _softmax(z))

    def nll(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(res.x))


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """Probabilities ``softmax(logits / temperature)``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return _softmax(_as_logits(logits) / temperature)


def bootstrap_metrics(y_true: Any, probs: Any, metrics: Sequence[str] = METRICS[:4],
                      n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
                      ) -> pd.DataFrame:
    """Each metric on the whole test set (``estimate``) with a ``confidence`` percentile
    bootstrap interval over ``n_boot`` resamples of its rows. ``probs`` is ``[N, K]`` (or
    ``[N]`` of P(positive)); ROC AUC and average precision are one-vs-rest macro averages
    for K > 2, as scikit-learn's ``roc_auc_score(multi_class="ovr")``."""
    y, probs = check_probs(y_true, probs)
    metrics = check_metrics(metrics)
    full = weighted_metrics(y, probs, np.ones((1, len(y)), np.float32), metrics)
    boot = weighted_metrics(y, probs, bootstrap_weights(len(y), n_boot, seed), metrics)
    rows = {m: {"estimate": float(full[m][0]),
                **dict(zip(("ci_low", "ci_high"), percentile_interval(boot[m], confidence),
                           strict=True)), "n": len(y)}
            for m in metrics}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")


def per_class_metrics(y_true: Any, probs: Any, class_names: Sequence[str] | None = None,
                      n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
                      ) -> pd.DataFrame:
    """Precision, recall and F1 of each class with bootstrap intervals, and its ``support``."""
    y, probs = check_probs(y_true, probs)
    k = probs.shape[1]
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} columns of probs")
    pred = probs.argmax(1)
    codes = one_hot(y * k + pred, k * k)

    def scores(w: np.ndarray) -> dict[str, np.ndarray]:
        cm = (w @ codes).reshape(-1, k, k)
        tp = np.diagonal(cm, axis1=1, axis2=2)
        return {"precision": safe_div(tp, cm.sum(1)), "recall": safe_div(tp, cm.sum(2)),
                "f1": safe_div(2 * tp, cm.sum(1) + cm.sum(2))}

    full = scores(np.ones((1, len(y)), np.float32))
    boot = scores(bootstrap_weights(len(y), n_boot, seed))
    rows = []
    for c, name in enumerate(names):
        row: dict[str, Any] = {"class": name, "support": int((y == c).sum())}
        for m in ("precision", "recall", "f1"):
            row[m] = float(full[m][0, c])
            row[f"{m}_low"], row[f"{m}_high"] = percentile_interval(boot[m][:, c], confidence)
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
    y, probs = check_probs(y_true, probs)
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
    y, pa = check_probs(y_true, probs_a)
    _, pb = check_probs(y_true, probs_b)
    if pa.shape != pb.shape:
        raise ValueError(f"the two models' probs differ in shape: {pa.shape} and {pb.shape}")
    (metric,) = check_metrics([metric])
    ones = np.ones((1, len(y)), np.float32)
    w = bootstrap_weights(len(y), n_boot, seed)
    a, b = (weighted_metrics(y, p, ones, [metric])[metric][0] for p in (pa, pb))
    diffs = weighted_metrics(y, pa, w, [metric])[metric] - weighted_metrics(y, pb, w, [metric])[metric]
    low, high = percentile_interval(diffs, confidence)
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
    y, probs = check_probs(y_true, p_positive)
    if probs.shape[1] != 2:
        raise ValueError(f"a threshold needs a binary classifier, got {probs.shape[1]} classes")
    return y, probs[:, 1]


def expected_cost(y_true: Any, p_positive: Any, threshold: float, cost_fp: float = 1.0,
                  cost_fn: float = 1.0) -> float:
    """Mean cost per example of predicting positive when ``p_positive >= threshold``."""
    y, p = _binary(y_true, p_positive)
    pred = p >= threshold
    return float((cost_fp * (pred & (y == 0)).sum() + cost_fn * (~pred & (y == 1)).sum()) / len(y))


def paired_cost(y_true: Any, p_positive: Any, threshold_a: float, threshold_b: float,
                cost_fp: float = 1.0, cost_fn: float = 1.0, n_boot: int = 1000,
                confidence: float = 0.95, seed: int = 0) -> Paired:
    """Mean cost per example at ``threshold_a`` against ``threshold_b`` on the same rows: the
    difference ``a - b`` with its paired bootstrap interval, and the verdict for ``a`` (lower
    cost is better)."""
    y, p = _binary(y_true, p_positive)

    def row_costs(threshold: float) -> np.ndarray:
        accept = p >= threshold
        return np.where(accept, cost_fp * (y == 0), cost_fn * (y == 1)).astype(np.float64)

    a, b = row_costs(threshold_a), row_costs(threshold_b)
    diffs = bootstrap_weights(len(y), n_boot, seed) @ (a - b) / len(y)
    low, high = percentile_interval(diffs, confidence)
    return Paired("cost", float(a.mean()), float(b.mean()), float(a.mean() - b.mean()), low, high,
                  len(y), verdict(low, high, higher_is_better=False), confidence)


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
    y, probs = check_probs(y_true, probs)
    (metric,) = check_metrics([metric])
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
            row["estimate"] = float(weighted_metrics(ys, ps, np.ones((1, n), np.float32),
                                                     [metric])[metric][0])
            boot = weighted_metrics(ys, ps, bootstrap_weights(n, n_boot, seed + i), [metric])
            row["ci_low"], row["ci_high"] = percentile_interval(boot[metric], confidence)
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
    onehot = one_hot(g, g.max() + 1)
    n = w @ onehot
    sel = safe_div(w @ (onehot * p[:, None]), n)
    pos = w @ (onehot * y[:, None])
    neg = n - pos
    tpr = safe_div(w @ (onehot * (p * y)[:, None]), pos)
    fpr = safe_div(w @ (onehot * (p * (1 - y))[:, None]), neg)

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
                   **dict(zip(("ci_low", "ci_high"), percentile_interval(boot[m], confidence),
                              strict=True))}
    if y_pred_b is not None:
        _, pb = _hard(y_true, y_pred_b)
        pb32 = pb.astype(np.float32)
        full_b, boot_b = _disparity_values(y32, pb32, g, ones), _disparity_values(y32, pb32, g, w)
        for m in full:
            low, high = percentile_interval(boot_b[m] - boot[m], confidence)
            rows[m] |= {"estimate_b": float(full_b[m][0]), "b_minus_a": float(full_b[m][0] - full[m][0]),
                        "diff_low": low, "diff_high": high,
                        "verdict_b": verdict(low, high, higher_is_better=False)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")
