import numpy as np
import pandas as pd
import pytest

from helpers import pii


@pytest.fixture(scope="module")
def engine():
    return pii.analyzer(tuned=True)


def test_planted_spans_point_at_their_values():
    for p in pii.planted_corpus(30, seed=0):
        assert p.spans and all(p.text[s:e].strip() == p.text[s:e] != "" for s, e, _ in p.spans)
    with pytest.raises(ValueError, match=r"unknown slot \{SSN\}"):
        pii.planted_corpus(1, templates=["my ssn is {SSN}"])


def test_an_unknown_entity_type_is_an_error_listing_the_known_ones(engine):
    with pytest.raises(ValueError, match=r"unknown entity type\(s\) \['SOCIAL'\].*EMAIL_ADDRESS"):
        pii.detection_scores(engine, pii.planted_corpus(2), entities=["EMAIL_ADDRESS", "SOCIAL"])


def test_evaluation_counts_hits_misses_and_false_positives(engine):
    corpus = [pii.Planted("Mail bob@example.com now", [(5, 20, "EMAIL_ADDRESS")]),
              pii.Planted("Call 212-555-0142 please", [])]  # an unplanted phone: a false positive
    table = pii.detection_scores(engine, corpus, entities=["EMAIL_ADDRESS", "PHONE_NUMBER"])
    assert table.loc["EMAIL_ADDRESS", ["planted", "found", "predicted"]].tolist() == [1, 1, 1]
    assert table.loc["PHONE_NUMBER", "predicted"] == 1 and table.loc["PHONE_NUMBER", "precision"] == 0
    wrong = pii.mistakes(engine, corpus, entities=["EMAIL_ADDRESS", "PHONE_NUMBER"])
    assert wrong[["kind", "value"]].values.tolist() == [["false positive", "212-555-0142"]]


def test_the_email_check_works_offline(engine, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the analyzer tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    found = pii.find(engine, "write to ann.lee@example.co.uk today", ["EMAIL_ADDRESS"])
    assert [r.entity_type for r in found] == ["EMAIL_ADDRESS"]


def test_wilson_interval_brackets_the_proportion():
    lo, hi = pii.wilson(9, 10)
    assert lo < 0.9 < hi <= 1
    assert np.isnan(pii.wilson(0, 0)[0])


def _ages(col: pd.Series, level: int) -> pd.Series:
    width = [1, 10, 100][level]
    return (col // width * width).astype(str)


def test_k_anonymize_generalizes_until_every_class_has_k_rows_and_counts_suppressed_rows():
    df = pd.DataFrame({"age": [21, 22, 23, 24, 35, 36, 37, 61], "y": range(8)})
    out = pii.k_anonymize(df, {"age": _ages}, k=3, max_level=2, max_suppressed=0.2)
    assert out.level == 1 and list(out.suppressed) == [7]  # the lone 61-year-old
    assert pii.group_sizes(out.table, ["age"]).min() >= 3
    assert len(out.table) + len(out.suppressed) == len(df)
    with pytest.raises(ValueError, match="no level up to 0"):
        pii.k_anonymize(df, {"age": _ages}, k=3, max_level=0)
    with pytest.raises(ValueError, match="k must be at least 1"):
        pii.k_anonymize(df, {"age": _ages}, k=0, max_level=2)
    with pytest.raises(KeyError, match=r"columns \['height'\] not in the table"):
        pii.generalize(df, {"height": _ages}, 1)
