"""helpers.experiment on synthetic data with known answers."""

import numpy as np
import pandas as pd
import pytest

from helpers import experiment

VERDICT_SAME = "indistinguishable at this budget"


def _runs(means: dict[str, float], sd: float, n: int, rng, paired_sd: float = 0.0):
    """Runs whose per-seed values share a seed effect (sd ``paired_sd``), as paired runs do."""
    seed_effect = rng.normal(0, paired_sd, n)
    rows = [{"config": c, "seed": s, "acc": m + seed_effect[s] + rng.normal(0, sd)}
            for c, m in means.items() for s in range(n)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_intervals_cover_a_known_mean_about_95_percent_of_the_time(method):
    rng = np.random.default_rng(0)
    reps = 400 if method == "t" else 150  # the bootstrap is slower
    n = 5 if method == "t" else 20  # BCa under-covers with few points: 0.85-0.91 at n=8
    hits = 0
    for _ in range(reps):
        runs = pd.DataFrame({"seed": range(n), "acc": rng.normal(0.7, 0.05, n)})
        s = experiment.summarize(runs, "acc", by=None, method=method).iloc[0]
        hits += s.ci_low <= 0.7 <= s.ci_high
    coverage = hits / reps
    # Observed over 6 generator seeds: t (n=5, 400 reps) 0.940-0.965, binomial sd 1.1 points;
    # BCa (n=20, 150 reps) 0.913-0.947 over 5 seeds, sd 1.8 points. Bands: about 2 sd past.
    assert (0.92 <= coverage <= 0.98) if method == "t" else (0.88 <= coverage <= 0.98)


def test_summarize_columns_and_order():
    runs = pd.DataFrame({"config": ["b", "b", "a", "a"], "seed": [0, 1, 0, 1],
                         "acc": [0.5, 0.7, 0.8, 0.8]})
    s = experiment.summarize(runs, "acc")
    assert list(s.index) == ["b", "a"] and list(s.columns) == ["n", "mean", "std", "ci_low",
                                                                 "ci_high"]
    assert s.loc["b", "mean"] == pytest.approx(0.6) and s.loc["b", "ci_low"] < 0.5
    assert s.loc["a", "ci_low"] == pytest.approx(0.8)  # no spread, no width
    with pytest.raises(KeyError, match="no column 'loss'"):
        experiment.summarize(runs, "loss")
    with pytest.raises(ValueError, match="at least 2 seeds"):
        experiment.summarize(runs[runs.seed == 0], "acc")
    with pytest.raises(ValueError, match="'t' or 'bootstrap'"):
        experiment.summarize(runs, "acc", method="jackknife")


def test_clearly_different_configs_get_better_and_worse():
    rng = np.random.default_rng(1)
    runs = _runs({"new": 0.80, "old": 0.70}, sd=0.01, n=5, rng=rng, paired_sd=0.05)
    better = experiment.compare(runs, "acc", "new", "old")
    assert better.verdict == "better" and better.ci_low > 0 and better.n == 5
    assert better.diff == pytest.approx(0.10, abs=0.03)
    assert experiment.compare(runs, "acc", "old", "new").verdict == "worse"
    # a loss: lower is better
    loss = runs.assign(loss=1 - runs["acc"])
    assert experiment.compare(loss, "loss", "new", "old", higher_is_better=False).verdict == "better"
    assert experiment.compare(loss, "loss", "old", "new", higher_is_better=False).verdict == "worse"
    assert "better" in str(better) and "5 seeds" in str(better)
    same = experiment.compare(runs, "acc", "new", "new")  # e.g. the chosen recipe is the baseline
    assert same.diff == 0 and same.ci_low == same.ci_high == 0 and same.verdict == VERDICT_SAME
    # pairing matters: the shared seed effect (sd 0.05) would swamp an unpaired comparison
    assert better.ci_high - better.ci_low < 0.05


def test_identical_distributions_are_mostly_indistinguishable():
    rng = np.random.default_rng(2)
    verdicts = [experiment.compare(_runs({"a": 0.8, "b": 0.8}, 0.02, 5, rng), "acc", "a",
                                   "b").verdict for _ in range(300)]
    share = verdicts.count("indistinguishable at this budget") / len(verdicts)
    # a 95% interval: about 5% false verdicts; observed 0.930-0.953 over 6 generator seeds
    assert 0.91 <= share <= 0.99


def test_compare_needs_paired_runs():
    runs = pd.DataFrame({"config": ["a", "a", "b"], "seed": [0, 1, 0], "acc": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"same seeds.*\[1\]"):
        experiment.compare(runs, "acc", "a", "b")
    with pytest.raises(ValueError, match=r"no runs for \['c'\]"):
        experiment.compare(runs, "acc", "a", "c")


def test_over_seeds_and_plot():
    runs = experiment.over_seeds(lambda s: {"acc": s / 10, "loss": 1 - s / 10}, seeds=range(3),
                                 progress=False)
    assert list(runs.columns) == ["seed", "acc", "loss"] and runs["acc"].tolist() == [0, .1, .2]
    grid = experiment.over_seeds(lambda c, s: {"a": 1.0, "b": 2.0}[c] + s, range(2),
                                 configs=["a", "b"], progress=False)
    assert grid.to_dict("list") == {"config": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
                                    "value": [1.0, 2.0, 2.0, 3.0]}
    with pytest.raises(ValueError, match="no seeds"):
        experiment.over_seeds(lambda s: 1.0, seeds=[])
    import matplotlib

    matplotlib.use("Agg")
    ax = experiment.plot_intervals(experiment.summarize(grid), highlight="b")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    many = experiment.over_seeds(lambda c, s: float(s), range(2), configs=list("abcdefg"),
                                 progress=False)
    ax = experiment.plot_intervals(experiment.summarize(many), highlight="c")
    assert len(ax.get_yticklabels()) == 7


def test_bounded_summary_cuts_the_interval_and_keeps_the_default():
    # one of three seeds failed (chance level): the t-interval runs far outside [0, 1]
    runs = pd.DataFrame({"config": ["sgd"] * 3 + ["adam"] * 3, "seed": [0, 1, 2] * 2,
                         "acc": [0.10, 0.83, 0.84, 0.80, 0.81, 0.82]})
    plain = experiment.summarize(runs, "acc")
    assert plain.loc["sgd", "ci_low"] < 0 and plain.loc["sgd", "ci_high"] > 1  # as before
    cut = experiment.summarize(runs, "acc", bounds=(0, 1))
    assert cut.loc["sgd", "ci_low"] == 0 and cut.loc["sgd", "ci_high"] == 1
    assert cut.loc["adam"].equals(plain.loc["adam"])  # inside the bounds: unchanged
    assert cut.loc["sgd", "mean"] == plain.loc["sgd", "mean"]
    with pytest.raises(ValueError, match="low < high"):
        experiment.summarize(runs, "acc", bounds=(1, 0))


def test_holm_adjusts_a_known_example():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 -> at least 0.06
    assert experiment.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert experiment.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert experiment.holm([]) == []
    with pytest.raises(ValueError, match="NaN"):
        experiment.holm([0.01, float("nan")])
    try:  # the reference implementation, where it is installed
        from statsmodels.stats.multitest import multipletests
    except ImportError:
        return
    p = np.random.default_rng(3).uniform(0, 0.1, 12)
    assert experiment.holm(p) == pytest.approx(multipletests(p, method="holm")[1])


def test_p_value_agrees_with_the_interval():
    rng = np.random.default_rng(4)
    for _ in range(50):
        runs = _runs({"a": 0.8, "b": 0.8 + rng.normal(0, 0.02)}, 0.02, 4, rng)
        c = experiment.compare(runs, "acc", "a", "b")
        assert (c.p < 0.05) == (c.verdict != VERDICT_SAME)
    assert np.isnan(experiment.compare(runs, "acc", "a", "b", method="bootstrap").p)


def test_correct_keeps_the_family_wise_error_near_five_percent():
    rng = np.random.default_rng(5)
    any_false = {"raw": 0, "holm": 0}
    families = 200
    for _ in range(families):  # 10 regularizers that do nothing, each against the baseline
        runs = _runs({"none": 0.8} | {f"r{k}": 0.8 for k in range(10)}, 0.02, 5, rng, 0.03)
        raw = [experiment.compare(runs, "acc", f"r{k}", "none") for k in range(10)]
        any_false["raw"] += any(c.verdict != VERDICT_SAME for c in raw)
        any_false["holm"] += any(c.verdict != VERDICT_SAME for c in experiment.correct(raw))
    # Unadjusted, up to 1 - 0.95**10 = 40% of families hold a false verdict (fewer: the shared
    # baseline correlates them); Holm keeps it at 5% or below. Observed over generator seeds 5-9:
    # raw 0.245-0.375, Holm 0.03-0.06 (binomial sd of a share of 200: 1.5 points at 5%).
    assert any_false["raw"] / families > 0.18 and any_false["holm"] / families <= 0.08
    # a clear effect survives, in the direction of each comparison's higher_is_better
    runs = _runs({"none": 0.20, "reg": 0.10}, 0.002, 5, rng, 0.03)
    gap = experiment.compare(runs, "acc", "reg", "none", higher_is_better=False)
    acc = experiment.compare(runs, "acc", "none", "none")
    fixed = experiment.correct([gap, acc])
    assert [c.verdict for c in fixed] == ["better", VERDICT_SAME]
    assert fixed[0].p_holm == pytest.approx(2 * gap.p) and "Holm-adjusted p" in str(fixed[0])
