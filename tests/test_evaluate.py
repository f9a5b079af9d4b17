import numpy as np
import pytest

from helpers import evaluate


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
