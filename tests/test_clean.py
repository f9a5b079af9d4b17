import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import clean
from helpers.data import DataFormatError


def test_cleaning_log_records_and_summarizes():
    log = clean.CleaningLog()
    log.add(["a", "b"], "removed", "duplicate")
    log.add(["c"], "changed", "mode", "L from RGB")
    assert log.removed_ids() == {"a", "b"}
    assert log.summary().to_dict("list") == {"action": ["changed", "removed"],
                                             "reason": ["mode", "duplicate"], "records": [1, 2]}
    with pytest.raises(ValueError, match="'removed' or 'changed'"):
        log.add(["d"], "dropped", "x")


def test_hashes_and_exact_duplicates():
    a = np.zeros((2, 2), np.uint8)
    assert clean.content_hash(a) == clean.content_hash(a.copy())
    assert clean.content_hash(a) != clean.content_hash(a.astype(np.int16))  # dtype counts
    assert clean.content_hash("x") == clean.content_hash(b"x")
    assert clean.exact_duplicates(["h1", "h2", "h1", "h1"]).tolist() == [False, False, True, True]


def _blob(seed):
    """A smooth synthetic 'photo': a few Gaussian bumps of random size and place."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    img = np.zeros((28, 28))
    for _ in range(4):
        r, c, s = rng.uniform(4, 24), rng.uniform(4, 24), rng.uniform(2, 6)
        img += rng.uniform(60, 160) * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * s * s))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_near_duplicates_find_noisy_copies_but_not_distinct_images():
    rng = np.random.default_rng(0)
    originals = [_blob(s) for s in range(20)]
    copy = np.clip(originals[3] * 1.1 + rng.normal(0, 3, (28, 28)), 0, 255).astype(np.uint8)
    match = clean.near_duplicates(np.stack(originals + [copy]))
    assert match[-1] == 3
    assert (match[:-1] == -1).all()
    assert clean.phash(originals[0]).shape == (63,)


def test_text_checks_and_repairs():
    reasons = clean.text_problems(["", "fine", "x" * 50, "Itâ€™s", "bad\x00byte"], max_chars=20)
    assert reasons.tolist() == ["empty", "", "longer than 20 characters", "encoding junk",
                                "encoding junk"]
    assert clean.repair_mojibake("Itâ€™s") == "It’s"
    assert clean.repair_mojibake("caf\ufffd") is None
    assert clean.normalize_text("  A  Great, FILM!") == "a great film"


def test_read_image_file_errors_and_conversion(tmp_path):
    good = tmp_path / "g.png"
    Image.fromarray(_blob(1)).save(good)
    assert clean.read_image_file(good, (28, 28))[1] == ""
    rgb = tmp_path / "rgb.png"
    Image.fromarray(_blob(1)).convert("RGB").save(rgb)
    arr, note = clean.read_image_file(rgb, (28, 28), "L")
    assert arr.shape == (28, 28) and note == "converted RGB to L"
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(DataFormatError, match="cut.png: unreadable image"):
        clean.read_image_file(cut, (28, 28))
    (tmp_path / "t.png").write_text("not an image")
    with pytest.raises(DataFormatError, match="unreadable"):
        clean.read_image_file(tmp_path / "t.png", (28, 28))
    with pytest.raises(DataFormatError, match=r"size \(28, 28\), expected \(32, 32\)"):
        clean.read_image_file(good, (32, 32))


def test_read_labelled_csv_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFormatError, match="empty.csv is empty"):
        clean.read_labelled_csv(tmp_path / "empty.csv")
    (tmp_path / "hdr.csv").write_text("text,label\n")
    with pytest.raises(DataFormatError, match="header but no rows"):
        clean.read_labelled_csv(tmp_path / "hdr.csv")
    (tmp_path / "cols.csv").write_text("sentence,label\nok,1\n")
    with pytest.raises(DataFormatError, match=r"no column\(s\) \['text'\].*\['sentence', 'label'\]"):
        clean.read_labelled_csv(tmp_path / "cols.csv")
    assert len(clean.read_labelled_csv(tmp_path / "cols.csv", text_column="sentence")) == 1


def test_label_issues_from_out_of_fold_probs():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    y = np.repeat([0, 1], 100)
    y[[5, 150]] = 1 - y[[5, 150]]
    probs = clean.out_of_fold_probs(x, y, LogisticRegression(), folds=4)
    issues = clean.find_label_issues(y, probs)
    assert set(np.flatnonzero(issues)) == {5, 150}
    s = clean.detector_scores(issues, np.isin(np.arange(200), [5, 150]))
    assert s["precision"] == 1.0 and s["recall"] == 1.0


def test_imbalance_leakage_and_split():
    rep = clean.imbalance_report([0, 0, 0, 1], names=["a", "b"])
    assert rep.loc["b", "count"] == 1 and rep.loc["b", "vs largest"] == pytest.approx(1 / 3)
    assert clean.cross_split_matches(["x", "y"], ["y"]).tolist() == [False, True]
    labels = np.repeat([0, 1, 2], [100, 50, 50])
    parts = clean.stratified_split(labels, 0.2, 0.2, seed=0)
    assert sorted(np.concatenate(list(parts.values()))) == list(range(200))
    for idx in parts.values():
        assert np.bincount(labels[idx]) / len(idx) == pytest.approx([0.5, 0.25, 0.25], abs=0.03)
    with pytest.raises(ValueError, match="fractions"):
        clean.stratified_split(labels, 0.6, 0.5)


def test_detector_scores_with_nothing_flagged():
    s = clean.detector_scores(np.zeros(3, bool), np.array([True, False, False]))
    assert s["recall"] == 0 and np.isnan(s["precision"])


def test_token_augment_keeps_words_from_the_sentence():
    rng = np.random.default_rng(0)
    out = clean.token_augment("one two three four five", rng, p_delete=0.2, n_swaps=2)
    assert set(out.split()) <= {"one", "two", "three", "four", "five"} and out
    assert clean.token_augment("solo", rng, p_delete=1.0) == "solo"
    assert isinstance(pd.Series([out]), pd.Series)


def test_nan_none_and_blank_texts_are_empty():
    # pandas reads an empty CSV cell as NaN (a float): that is an empty text, not a crash
    table = pd.read_csv(io.StringIO("text,label\nfine,1\n,0\n   ,1\n"))
    reasons = clean.text_problems(list(table["text"]) + [None, 42], max_chars=20)
    assert reasons.tolist() == ["", "empty", "empty", "empty", ""]


def test_bad_labels_are_named_by_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("text,label\na,1\nb,pos\nc,\nd,0\ne,2.5\nf,-1\n")
    with pytest.raises(DataFormatError, match=r"labels.csv: 4 rows of column 'label' hold no "
                       r"valid class label.*line 3: 'pos'.*line 4: missing.*line 6: '2.5'.*line 7: '-1'"):
        clean.read_labelled_csv(path)
    path.write_text("text,label\na,1\nb,0\nc,\n")  # NaN turns the column to float: still named
    with pytest.raises(DataFormatError, match=r"1 row of column 'label' holds .*line 4: missing"):
        clean.read_labelled_csv(path)
    path.write_text("text,label\na,1\nb,0\n")
    assert clean.read_labelled_csv(path)["label"].tolist() == [1, 0]
    path.write_text("text,label\na,cat\nb,dog\nc,cow\n")
    with pytest.raises(DataFormatError, match=r"line 4: 'cow'.*expected one of \['cat', 'dog'\]"):
        clean.read_labelled_csv(path, classes=["cat", "dog"])
    assert clean.read_labelled_csv(path, classes=["cat", "dog", "cow"])["label"].tolist() == [
        "cat", "dog", "cow"]


def test_missing_and_oversized_images_are_named_for_what_they_are(tmp_path, monkeypatch):
    with pytest.raises(DataFormatError, match=r"nope.png: missing \(no such file"):
        clean.read_image_file(tmp_path / "nope.png", (28, 28))
    good = tmp_path / "g.png"
    Image.fromarray(_blob(1)).save(good)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 784 pixels: over twice the limit
    with pytest.raises(DataFormatError, match="g.png: .*decompression bomb"):
        clean.read_image_file(good, (28, 28))


def test_flip_labels_changes_exactly_the_share_asked_to_another_class():
    labels = np.repeat([1, 3, 5], 20)
    out, flipped = clean.flip_labels(labels, 0.25, np.random.default_rng(0), classes=[1, 3, 5])
    assert flipped.sum() == 15 and (out[flipped] != labels[flipped]).all()
    assert (out[~flipped] == labels[~flipped]).all() and set(out) <= {1, 3, 5}
    with pytest.raises(ValueError, match="fraction"):
        clean.flip_labels(labels, 1.5, np.random.default_rng(0))


def test_flip_and_detect_scores_the_detector_against_its_own_flips():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 60)
    images = (labels[:, None, None] * 80 + rng.integers(0, 30, (180, 4, 4))).astype(np.uint8)
    scores = clean.flip_and_detect(images, labels, [0, 1, 2], 150, 0.1, LogisticRegression(max_iter=500),
                                   seed=0, folds=3)
    assert scores["injected"] == 15 and scores["recall"] >= 0.8 and scores["oof_acc"] > 0.8
