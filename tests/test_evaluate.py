import numpy as np
import pandas as pd
import pytest

from helpers import evaluate, resample


def test_ece_on_cases_with_a_known_answer():
    labels = np.array([0] * 8 + [1] * 2)
    # ten predictions of class 0 at confidence 0.8, eight of them right: perfectly calibrated
    probs = np.tile([0.8, 0.2], (10, 1))
    assert evaluate.expected_calibration_error(probs, labels) == pytest.approx(0.0)
    # the same at confidence 0.95: over-confident by 0.15
    assert evaluate.expected_calibration_error(np.tile([0.95, 0.05], (10, 1)), labels) == \
        pytest.approx(0.15)
    # two bins by hand: 4 predictions at 0.9 (all right: gap 0.1), 6 at 0.6 (3 right: gap 0.1)
    probs = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 6)
    labels = np.array([0] * 4 + [0, 0, 0, 1, 1, 1])
    table = evaluate.calibration_table(probs, labels)
    assert table["count"].tolist() == [6, 4] and table["bin"].tolist() == ["(0.5, 0.6]",
                                                                            "(0.8, 0.9]"]
    assert evaluate.expected_calibration_error(probs, labels) == pytest.approx(0.4 * 0.1 + 0.6 * 0.1)


def test_the_resampling_engine_stays_importable_from_evaluate():
    assert evaluate.bootstrap_weights is resample.bootstrap_weights
    assert evaluate.METRICS is resample.METRICS
    w = resample.bootstrap_weights(7, n_boot=5, seed=3)
    # each resample draws 7 rows: integer counts summing to 7
    assert w.shape == (5, 7) and (w.sum(1) == 7).all() and (w == np.round(w)).all()


def test_binary_probs_use_the_confidence_of_the_predicted_class():
    # P(positive) = 0.3 predicts class 0 with confidence 0.7. Binning P(positive) against the
    # fraction positive (the old chapter-4 mistake) would give another number.
    p_pos = np.array([0.3] * 10)
    labels = np.array([0] * 7 + [1] * 3)
    assert evaluate.expected_calibration_error(p_pos, labels) == pytest.approx(0.0)
    three = np.array([[0.7, 0.2, 0.1]] * 10)
    assert evaluate.expected_calibration_error(three, np.array([0] * 7 + [2] * 3)) == \
        pytest.approx(0.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="softmax"):
        evaluate.expected_calibration_error(np.array([[2.0, -1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="2 predictions but 1 labels"):
        evaluate.calibration_table(np.array([0.2, 0.3]), np.array([1]))
    with pytest.raises(ValueError, match="shape"):
        evaluate.calibration_table(np.ones((2, 1)), np.array([0, 0]))
    with pytest.raises(ValueError, match="no predictions"):
        evaluate.calibration_table(np.zeros((0, 2)), np.array([]))


# --- issue 12: intervals, comparisons, temperature, thresholds, slices, groups ---------------
def _data(n=400, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]
    logits[:5] = logits[5:10]  # a few tied scores, as real models produce
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs, logits


@pytest.mark.parametrize("k", [2, 4])
def test_weighted_metrics_match_scikit_learn_on_the_same_resample(k):
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
    from sklearn.preprocessing import label_binarize

    y, probs, _ = _data(k=k)
    w = resample.bootstrap_weights(len(y), n_boot=3, seed=1)
    got = resample.weighted_metrics(y, probs, w, resample.METRICS)
    for b in range(3):
        idx = np.repeat(np.arange(len(y)), w[b].astype(int))  # the resample as rows
        yb, pb = y[idx], probs[idx]
        assert got["accuracy"][b] == pytest.approx(accuracy_score(yb, pb.argmax(1)))
        assert got["macro_f1"][b] == pytest.approx(
            f1_score(yb, pb.argmax(1), average="macro", labels=range(k), zero_division=0))
        if k == 2:
            auc, ap = roc_auc_score(yb, pb[:, 1]), average_precision_score(yb, pb[:, 1])
        else:
            auc = roc_auc_score(yb, pb, multi_class="ovr", average="macro")
            ap = average_precision_score(label_binarize(yb, classes=range(k)), pb, average="macro")
        assert got["roc_auc"][b] == pytest.approx(auc, abs=1e-6)
        assert got["average_precision"][b] == pytest.approx(ap, abs=1e-6)
        assert got["ece"][b] == pytest.approx(evaluate.expected_calibration_error(pb, yb), abs=1e-6)


def test_bootstrap_interval_covers_the_truth_at_about_the_stated_rate():
    # 300 draws of a classifier whose true accuracy is 0.8: the 95% interval should contain
    # 0.8 in about 95% of test sets (observed 0.93-0.96 over seeds; a binomial 95% band for
    # 300 draws is 0.925-0.975, widened for the percentile method's known undercoverage).
    hits = 0
    rng = np.random.default_rng(0)
    for i in range(300):
        y = rng.integers(0, 2, 200)
        right = rng.random(200) < 0.8
        probs = np.where(right, y, 1 - y).astype(float) * 0.8 + 0.1
        t = evaluate.bootstrap_metrics(y, probs, ["accuracy"], n_boot=400, seed=i)
        hits += t.loc["accuracy", "ci_low"] <= 0.8 <= t.loc["accuracy", "ci_high"]
    assert 0.91 <= hits / 300 <= 0.98


def test_bootstrap_metrics_estimate_is_the_full_data_value():
    from sklearn.metrics import accuracy_score, roc_auc_score

    y, probs, _ = _data(k=2)
    t = evaluate.bootstrap_metrics(y, probs, n_boot=200)
    assert t.loc["accuracy", "estimate"] == pytest.approx(accuracy_score(y, probs.argmax(1)))
    assert t.loc["roc_auc", "estimate"] == pytest.approx(roc_auc_score(y, probs[:, 1]))
    assert (t["ci_low"] <= t["estimate"]).all() and (t["estimate"] <= t["ci_high"]).all()
    assert (t["n"] == len(y)).all()


def test_per_class_metrics_match_the_classification_report():
    from sklearn.metrics import precision_recall_fscore_support

    y, probs, _ = _data(k=3)
    t = evaluate.per_class_metrics(y, probs, ["a", "b", "c"], n_boot=100)
    p, r, f, s = precision_recall_fscore_support(y, probs.argmax(1))
    assert np.allclose(t["precision"], p) and np.allclose(t["recall"], r) and np.allclose(t["f1"], f)
    assert t["support"].tolist() == s.tolist()
    assert (t["f1_low"] <= t["f1"]).all() and (t["f1"] <= t["f1_high"]).all()


def test_curve_band_contains_the_curve():
    y, probs, _ = _data(k=2)
    for kind in ("roc", "pr"):
        band = evaluate.curve_band(y, probs, kind=kind, n_boot=50)
        assert len(band) == 101
        assert ((band["low"] <= band["y"] + 1e-9) | (band["y"] >= band["high"] - 1e-9)).mean() > 0.9
    with pytest.raises(ValueError, match="kind"):
        evaluate.curve_band(y, probs, kind="det")


def test_paired_bootstrap_and_mcnemar():
    y, probs, _ = _data(n=1000, k=2)
    same = evaluate.paired_bootstrap(y, probs, probs)
    assert same.diff == 0 and same.ci_low == same.ci_high == 0
    assert same.verdict == "indistinguishable at this budget"
    coin = np.tile([0.501, 0.499], (len(y), 1))  # always predicts class 0, at chance level
    better = evaluate.paired_bootstrap(y, probs, coin)
    assert better.verdict == "better" and better.ci_low > 0
    assert evaluate.paired_bootstrap(y, coin, probs).verdict == "worse"
    # ECE: lower is better, so the better-calibrated model wins
    rng = np.random.default_rng(1)
    p_true = rng.random(1000)
    y_cal = (rng.random(1000) < p_true).astype(int)  # p_true is calibrated by construction
    sharp = np.where(p_true > 0.5, 0.999, 0.001)  # same predictions, far too sure
    assert evaluate.paired_bootstrap(y_cal, p_true, sharp, metric="ece").verdict == "better"
    m = evaluate.mcnemar(y, probs.argmax(1), coin.argmax(1))
    assert m["a_only"] > m["b_only"] and m["p_value"] < 1e-6
    assert evaluate.mcnemar(y, y, y) == {"a_only": 0, "b_only": 0, "p_value": 1.0}


def test_temperature_scaling_recovers_a_known_temperature_and_keeps_predictions():
    rng = np.random.default_rng(0)
    n, k = 4000, 4
    true_logits = rng.normal(scale=2.0, size=(n, k))
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])  # labels drawn from the true probabilities
    over_confident = 3.0 * true_logits  # a model 3x too sure of itself
    t = evaluate.fit_temperature(over_confident, y)
    assert t == pytest.approx(3.0, rel=0.1)
    scaled = evaluate.apply_temperature(over_confident, t)
    assert (scaled.argmax(1) == over_confident.argmax(1)).all()
    assert evaluate.expected_calibration_error(scaled, y) < \
        evaluate.expected_calibration_error(evaluate.apply_temperature(over_confident, 1.0), y) / 2
    with pytest.raises(ValueError, match="positive"):
        evaluate.apply_temperature(over_confident, 0.0)


def test_choose_threshold_follows_the_costs():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(200_000) < p).astype(int)  # calibrated: P(y=1 | p) = p
    for cost_fp, cost_fn in [(1, 1), (5, 1), (1, 4)]:
        threshold, table = evaluate.choose_threshold(y, p, cost_fp, cost_fn)
        assert threshold == pytest.approx(cost_fp / (cost_fp + cost_fn), abs=0.05)  # flat near the optimum
        assert table["cost"].min() == pytest.approx(evaluate.expected_cost(y, p, threshold,
                                                                            cost_fp, cost_fn))
    # by hand: scores 0.2 (neg), 0.6 (pos), 0.7 (neg), 0.9 (pos); equal costs -> best at 0.6 or 0.9
    t, table = evaluate.choose_threshold([0, 1, 0, 1], [0.2, 0.6, 0.7, 0.9])
    assert table.set_index("threshold").loc[0.6, "cost"] == pytest.approx(0.25)
    assert t in (0.6, 0.9)
    with pytest.raises(ValueError, match="binary"):
        evaluate.choose_threshold([0, 1, 2], np.full((3, 3), 1 / 3))


def test_paired_cost_matches_expected_cost_and_reads_lower_as_better():
    # by hand: scores 0.2 (neg), 0.6 (pos), 0.7 (neg), 0.9 (pos), a false positive costs 5
    y, p = [0, 1, 0, 1], [0.2, 0.6, 0.7, 0.9]
    paired = evaluate.paired_cost(y, p, 0.8, 0.5, cost_fp=5.0, cost_fn=1.0, n_boot=200)
    assert paired.a == pytest.approx(evaluate.expected_cost(y, p, 0.8, 5.0, 1.0)) == pytest.approx(0.25)
    assert paired.b == pytest.approx(evaluate.expected_cost(y, p, 0.5, 5.0, 1.0)) == pytest.approx(1.25)
    assert paired.diff == pytest.approx(-1.0) and paired.metric == "cost" and paired.n == 4
    assert paired.ci_low <= paired.diff <= paired.ci_high
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)
    # on calibrated scores with fp cost 5, the threshold 5/6 costs less than 0.5: "better"
    assert evaluate.paired_cost(y, p, 5 / 6, 0.5, 5.0, 1.0).verdict == "better"
    assert evaluate.paired_cost(y, p, 0.5, 5 / 6, 5.0, 1.0).verdict == "worse"
    same = evaluate.paired_cost(y, p, 0.5, 0.5, 5.0, 1.0)
    assert same.diff == 0 and same.verdict == "indistinguishable at this budget"


def test_slices_keep_empty_ones_and_resample_within_each():
    y, probs, _ = _data(n=300, k=2)
    length = pd.Categorical(np.where(np.arange(300) < 100, "short", "long"),
                            categories=["short", "long", "very long"])
    t = evaluate.slice_metrics(y, probs, length, n_boot=100)
    assert t.loc["very long", "n"] == 0 and np.isnan(t.loc["very long", "estimate"])
    assert t.loc["short", "n"] == 100
    assert t.loc["short", "estimate"] == pytest.approx((probs[:100].argmax(1) == y[:100]).mean())
    masks = {"negation": np.arange(300) % 3 == 0, "none": np.zeros(300, bool)}
    t2 = evaluate.slice_metrics(y, probs, masks, n_boot=100)
    assert t2["n"].tolist() == [100, 0]


def test_disparities_match_fairlearn():
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    rng = np.random.default_rng(0)
    n = 600
    group = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    y = rng.integers(0, 2, n)
    pred = (rng.random(n) < np.where(group == "a", 0.7, 0.4)).astype(int)
    t = evaluate.disparities(y, pred, pd.Series(group, name="g"), n_boot=200)
    assert t.loc["demographic_parity_difference", "estimate"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=group))
    assert t.loc["equalized_odds_difference", "estimate"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=group))
    fair = (rng.random(n) < 0.55).astype(int)  # ignores the group
    t2 = evaluate.disparities(y, pred, pd.Series(group, name="g"), y_pred_b=fair, n_boot=200)
    assert t2.loc["demographic_parity_difference", "verdict_b"] == "better"
    frame = evaluate.group_metrics(y, pred, pd.DataFrame({"g": group, "h": y}), n_boot=20)
    assert len(frame.by_group) == 6 and "selection_rate" in frame.by_group.columns


def test_bad_evaluation_input_gets_a_clear_error():
    y, probs, _ = _data(n=50, k=2)
    with pytest.raises(ValueError, match="50 predictions but 49 labels"):
        evaluate.bootstrap_metrics(y[:49], probs)
    with pytest.raises(ValueError, match=r"in \[0, 1\]; row 3"):
        bad = probs.copy()
        bad[3] = [1.2, -0.2]
        evaluate.bootstrap_metrics(y, bad)
    with pytest.raises(ValueError, match="row 7 sums to 1.5"):
        bad = probs.copy()
        bad[7] = [0.9, 0.6]
        evaluate.bootstrap_metrics(y, bad)
    with pytest.raises(ValueError, match="one group only"):
        evaluate.disparities(y, probs.argmax(1), pd.Series(["x"] * 50, name="sex"))
    with pytest.raises(ValueError, match="one group only"):
        evaluate.group_metrics(y, probs.argmax(1), pd.DataFrame({"sex": ["f"] * 50}))
    with pytest.raises(ValueError, match="3 predictions but 50 labels"):
        evaluate.disparities(y, [0, 1, 0], pd.Series(["x", "y", "x"]))
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate.bootstrap_metrics(y, probs, ["auc"])
    with pytest.raises(ValueError, match="class indices"):
        evaluate.bootstrap_metrics(y + 1, probs)  # labels 1..2 for two columns
