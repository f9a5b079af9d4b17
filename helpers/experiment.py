"""Experiments over seeds: run, summarize with 95% intervals, compare paired, plot.

Introduced in ``notebooks/03_cnn_training.ipynb`` ("Transfer or scratch, over seeds").

One training run is one draw: another seed gives another number. So a claim such as
"transfer beats training from scratch" is checked like this::

    runs = experiment.over_seeds(train_and_score, seeds=range(5), configs=["scratch", "transfer"])
    experiment.summarize(runs, "acc")            # mean, sd and a 95% interval per config
    experiment.compare(runs, "acc", "transfer", "scratch")   # paired by seed, with a verdict

``compare`` says ``"better"`` or ``"worse"`` only when the 95% interval of the paired
difference excludes zero; otherwise ``"indistinguishable at this budget"``: more seeds (or
more data) could still tell them apart, this experiment cannot. The statistics are
``scipy.stats``: a t-interval by default, or ``scipy.stats.bootstrap``.

A bounded metric (an accuracy lies in [0, 1]) gets ``summarize(..., bounds=(0, 1))``: the
interval is cut at the bounds, which loses no coverage, since the mean cannot lie outside
them. Many comparisons read at once: ``holm`` adjusts their p-values and ``correct`` redoes
their verdicts at a family-wise 5% level (Holm, 1979).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import env

__all__ = ["over_seeds", "summarize", "compare", "verdict", "Comparison", "plot_intervals", "VERDICTS",
           "holm", "correct"]

VERDICTS = ("better", "worse", "indistinguishable at this budget")


def over_seeds(fn: Callable[..., Mapping[str, float] | float], seeds: Iterable[int],
               configs: Sequence[Any] | None = None, progress: bool = True) -> pd.DataFrame:
    """Call ``fn(seed)`` (or ``fn(config, seed)`` for each of ``configs``) for every seed.

    ``fn`` returns a number (the column ``value``) or a dict of metrics. The result is tidy:
    one row per run, with the columns ``config`` (when given), ``seed`` and the metrics.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("no seeds: give at least one, e.g. seeds=range(3)")
    jobs = [(c, s) for c in configs for s in seeds] if configs is not None else \
        [(None, s) for s in seeds]
    rows = []
    for config, seed in env.progress(jobs, "runs", progress):
        result = fn(seed) if configs is None else fn(config, seed)
        metrics = dict(result) if isinstance(result, Mapping) else {"value": float(result)}
        rows.append(({"config": config} if configs is not None else {}) | {"seed": seed}
                    | metrics)
    return pd.DataFrame(rows)


def _interval(values: np.ndarray, confidence: float, method: str) -> tuple[float, float]:
    from scipy import stats

    if len(values) < 2:
        raise ValueError(f"an interval needs at least 2 seeds, got {len(values)}")
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    if np.ptp(values) == 0:  # every seed gave the same number: a zero-width interval
        return float(values[0]), float(values[0])
    if method == "t":
        low, high = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    else:
        res = stats.bootstrap((values,), np.mean, confidence_level=confidence,
                              n_resamples=9999, method="BCa", random_state=0)
        low, high = res.confidence_interval
    return float(low), float(high)


def summarize(runs: pd.DataFrame, metric: str = "value", by: str | None = "config",
              confidence: float = 0.95, method: str = "t",
              bounds: tuple[float, float] | None = None) -> pd.DataFrame:
    """Per ``by`` group (or over all rows if ``by`` is None): ``n``, ``mean``, ``std`` and a
    ``confidence`` interval of the mean (``ci_low``, ``ci_high``), a t-interval or a BCa
    bootstrap (``method="bootstrap"``). Groups keep their order of first appearance.

    With 3-5 seeds use the t-interval: the bootstrap has too few points to resample and its
    intervals come out too narrow (``tests/test_experiment.py`` measures both).

    ``bounds=(low, high)``: the metric's possible range, e.g. ``(0, 1)`` for an accuracy. The
    interval is then cut at the bounds: the mean cannot lie outside them, so the cut interval
    covers it exactly as often as the uncut one (a t-interval of 3 seeds with one failed run
    can otherwise reach [-0.35, 1.35]). A cut interval is still wide; it says the same thing."""
    if metric not in runs.columns:
        raise KeyError(f"no column {metric!r}; the runs have {list(runs.columns)}")
    if bounds is not None and not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    groups = runs.groupby(by, sort=False)[metric] if by is not None else [("all", runs[metric])]
    rows = {}
    for name, values in groups:
        values = values.to_numpy(dtype=float)
        low, high = _interval(values, confidence, method)
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        rows[name] = {"n": len(values), "mean": values.mean(), "std": values.std(ddof=1),
                      "ci_low": low, "ci_high": high}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by or "group")


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b`` on ``metric``, paired by seed: the mean difference ``a - b``, its
    interval, the number of seeds and the verdict for ``a`` (one of ``VERDICTS``); ``p``, the
    paired t-test's p-value, is what ``correct`` adjusts for many comparisons."""

    a: str
    b: str
    metric: str
    diff: float
    ci_low: float
    ci_high: float
    n: int
    verdict: str
    confidence: float = 0.95
    p: float = float("nan")  # two-sided, paired t-test (NaN for the bootstrap)
    higher_is_better: bool = True
    p_holm: float | None = None  # set by ``correct``: the verdict then follows it

    def __str__(self) -> str:
        pct = round(100 * self.confidence)
        holm = "" if self.p_holm is None else f", Holm-adjusted p {self.p_holm:.3g}"
        return (f"{self.a} - {self.b} ({self.metric}): {self.diff:+.4f}, {pct}% CI "
                f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}] over {self.n} seeds{holm}: "
                f"{self.verdict}")


def verdict(low: float, high: float, higher_is_better: bool = True) -> str:
    """The verdict for ``a`` from the interval ``[low, high]`` of the difference ``a - b``:
    ``"better"`` or ``"worse"`` only when it excludes zero (read mirrored when lower is better)."""
    sign = 1.0 if higher_is_better else -1.0
    gain_low, gain_high = sorted((sign * low, sign * high))
    return VERDICTS[0] if gain_low > 0 else VERDICTS[1] if gain_high < 0 else VERDICTS[2]


def compare(runs: pd.DataFrame, metric: str, a: Any, b: Any, by: str = "config",
            higher_is_better: bool = True, confidence: float = 0.95,
            method: str = "t") -> Comparison:
    """Is ``a`` better than ``b``? Paired by seed: each seed's difference ``a - b`` (same data
    split, same initialization stream), then a ``confidence`` interval of their mean.

    The verdict is ``"better"`` or ``"worse"`` only when the interval excludes zero, else
    ``"indistinguishable at this budget"``.

    Raises:
        ValueError: ``a`` and ``b`` were not run on the same seeds, or on fewer than 2.
    """
    wide = runs.pivot_table(index="seed", columns=by, values=metric, aggfunc="first")
    missing = [c for c in (a, b) if c not in wide.columns]
    if missing:
        raise ValueError(f"no runs for {missing}; the runs have {list(wide.columns)}")
    pair = wide[[a, b]] if a != b else wide[[a]]
    if pair.isna().any().any():
        raise ValueError(f"{a!r} and {b!r} must be run on the same seeds to be paired; seeds "
                         f"with one missing: {sorted(pair.index[pair.isna().any(axis=1)])}")
    diffs = (pair[a] - pair[b]).to_numpy(dtype=float)  # a == b: zeros, "indistinguishable"
    low, high = _interval(diffs, confidence, method)
    verdict_ = verdict(low, high, higher_is_better)
    return Comparison(str(a), str(b), metric, float(diffs.mean()), low, high, len(diffs),
                      verdict_, confidence, _p_value(diffs) if method == "t" else float("nan"),
                      higher_is_better)


def _p_value(diffs: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test that the mean difference is 0 (the t-interval
    excludes 0 exactly when it is below 1 - confidence). No spread: 0 if the differences are
    not 0, else 1."""
    from scipy import stats

    if np.ptp(diffs) == 0:
        return 0.0 if diffs[0] != 0 else 1.0
    return float(stats.ttest_1samp(diffs, 0.0).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (Holm, 1979).

    Sort the m p-values; the k-th smallest (k = 0, 1, ...) is multiplied by m - k, and each
    adjusted value is at least the one before it (capped at 1). Rejecting where the adjusted
    value is below alpha keeps the chance of *any* false "better" or "worse" among the m
    comparisons below alpha, whatever they are; m unadjusted tests at 5% give about 0.05 m
    false verdicts on average when nothing differs."""
    p = np.asarray(p_values, dtype=float)
    if np.isnan(p).any():
        raise ValueError("a p-value is NaN (bootstrap comparisons have none): use method='t'")
    adjusted, running = np.empty_like(p), 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def correct(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The ``comparisons`` (from ``compare``), read as one family: each with its Holm-adjusted
    p-value (``p_holm``) and its verdict redone from it: ``"better"`` or ``"worse"`` (by the
    sign of the difference, and each comparison's ``higher_is_better``) only when
    ``p_holm < 1 - confidence``, else "indistinguishable at this budget". The intervals stay
    the per-comparison ones: an interval that excludes 0 may now read "indistinguishable"."""
    from dataclasses import replace

    out = []
    for c, p_adj in zip(comparisons, holm([c.p for c in comparisons]), strict=True):
        gain = c.diff if c.higher_is_better else -c.diff
        v = VERDICTS[2] if p_adj >= 1 - c.confidence or gain == 0 else \
            VERDICTS[0] if gain > 0 else VERDICTS[1]
        out.append(replace(c, verdict=v, p_holm=p_adj))
    return out


def plot_intervals(summary: pd.DataFrame, ax: Any = None, xlabel: str = "",
                   highlight: Any = None) -> Any:
    """Means with their intervals (from ``summarize``), one row per configuration."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.35 * len(summary) + 1.2))
    y = np.arange(len(summary))[::-1]
    for row, (name, s) in zip(y, summary.iterrows(), strict=True):
        ax.errorbar(s["mean"], row, xerr=[[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]],
                    fmt="o", color="C3" if name == highlight else "C0", capsize=3)
    ax.set_yticks(y, [str(i) for i in summary.index])
    n = summary["n"].iloc[0] if summary["n"].nunique() == 1 else "several"
    ax.set_xlabel(xlabel or f"mean with 95% interval ({n} seeds)")
    ax.grid(axis="x", alpha=0.3)
    return ax
