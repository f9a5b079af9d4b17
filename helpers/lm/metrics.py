"""How good is a language model: per-document losses, perplexity with bootstrap intervals, a
count-based bigram baseline, bits per byte, and a power law fitted to losses across sizes.

Taught in ``notebooks/15a_small_gpt.ipynb`` ("Checks", "Scaling, measured"); used again in
``notebooks/15b_pretrained_llm.ipynb`` to set a pretrained model beside the small one.

Every model is scored the same way: each held-out document starts from one start token and
the model predicts each of the document's tokens from the ones before it. ``DocLoss`` keeps the
summed loss (in nats) and the token count of every document, so intervals come from
resampling *documents* (``bootstrap_ppl``, ``paired_ppl``), the unit the text was split by.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from helpers import experiment

__all__ = ["DocLoss", "doc_losses", "Bigram", "fit_bigram", "bootstrap_ppl", "PairedPpl",
           "paired_ppl", "bits_per_byte", "paired_bits_per_byte", "PowerLaw", "fit_power_law"]


@dataclass(frozen=True)
class DocLoss:
    """Summed next-token loss (nats) and token count of each document."""

    nll: np.ndarray
    tokens: np.ndarray

    @property
    def loss(self) -> float:
        """Mean loss per token over all documents."""
        return float(self.nll.sum() / self.tokens.sum())

    @property
    def ppl(self) -> float:
        """Perplexity: exp of the mean loss per token."""
        return math.exp(self.loss)


def _batches(docs: Sequence[Sequence[int]], start: int, block: int, batch: int):
    """Padded inputs (the start token, then the document) and targets (the document; -100 on
    padding), ``batch`` documents at a time, each cut to ``block`` tokens."""
    for i in range(0, len(docs), batch):
        part = [list(d[:block]) for d in docs[i:i + batch]]
        width = max(len(d) for d in part)
        x = torch.full((len(part), width), start, dtype=torch.long)
        y = torch.full((len(part), width), -100, dtype=torch.long)
        for row, d in enumerate(part):
            x[row, 1:len(d)] = torch.tensor(d[:-1], dtype=torch.long)
            y[row, :len(d)] = torch.tensor(d, dtype=torch.long)
        yield x, y


@torch.no_grad()
def doc_losses(logits_fn: Callable[[torch.Tensor], torch.Tensor], docs: Sequence[Sequence[int]],
               start: int, block: int, batch: int = 64, device: str | torch.device = "cpu") -> DocLoss:
    """Per-document losses of a model: ``logits_fn(x)`` gives ``[batch, tokens, vocab]`` logits
    (a ``GPT`` on ``device``, or any causal model), each document conditioned on the token
    ``start``."""
    nll, count = [], []
    for x, y in _batches([d for d in docs if len(d)], start, block, batch):
        logits = logits_fn(x.to(device)).float().cpu()
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        nll.append(loss.view(y.shape).sum(1))
        count.append((y != -100).sum(1))
    return DocLoss(torch.cat(nll).double().numpy(), torch.cat(count).numpy())


@dataclass(frozen=True)
class Bigram:
    """A count-based bigram model, interpolated with the unigram: P(b | a) =
    lam * count(a, b) / count(a) + (1 - lam) * P(b), with P(b) add-one smoothed."""

    log_probs: torch.Tensor  # [vocab, vocab]: log P(next | previous)
    lam: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (log-probabilities) of the next token after each token of ``x``."""
        return self.log_probs[x]


def _bigram(counts: torch.Tensor, lam: float) -> Bigram:
    row = counts.sum(1, keepdim=True)
    unigram = (counts.sum(0) + 1) / (counts.sum() + counts.shape[0])
    cond = torch.where(row > 0, counts / row.clamp(min=1), unigram)
    return Bigram((lam * cond + (1 - lam) * unigram).log().float(), lam)


def fit_bigram(train_docs: Sequence[Sequence[int]], val_docs: Sequence[Sequence[int]], vocab: int,
               start: int, lams: Sequence[float] = (0.5, 0.7, 0.8, 0.9, 0.95)) -> Bigram:
    """Count the training documents' bigrams (each preceded by ``start``) and choose the
    interpolation weight ``lam`` with the lowest validation loss."""
    prev = torch.tensor([t for d in train_docs for t in (start, *d[:-1])], dtype=torch.long)
    nxt = torch.tensor([t for d in train_docs for t in d], dtype=torch.long)
    counts = torch.bincount(prev * vocab + nxt, minlength=vocab * vocab).view(vocab, vocab).double()
    models = [_bigram(counts, lam) for lam in lams]
    losses = [doc_losses(m, val_docs, start, 10**9).loss for m in models]
    return models[int(np.argmin(losses))]


def _weights(n_docs: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of documents as counts ``[n_boot, n_docs]``."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_docs, np.full(n_docs, 1 / n_docs), size=n_boot).astype(float)


def _ppl(w: np.ndarray, d: DocLoss) -> np.ndarray:
    return np.exp((w @ d.nll) / (w @ d.tokens))


def bootstrap_ppl(d: DocLoss, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Perplexity and its 95% percentile interval over resampled documents."""
    low, high = np.quantile(_ppl(_weights(len(d.nll), n_boot, seed), d), [0.025, 0.975])
    return d.ppl, float(low), float(high)


@dataclass(frozen=True)
class PairedPpl:
    """Perplexity of ``a`` minus that of ``b`` on the same documents, its 95% interval over the
    same resamples, and the verdict for ``a`` (lower perplexity is better)."""

    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    verdict: str


def paired_ppl(a: DocLoss, b: DocLoss, n_boot: int = 1000, seed: int = 0) -> PairedPpl:
    """Is ``a`` better (lower perplexity) than ``b`` on these documents? Both are scored on the
    same resamples, so the interval of the difference is narrow where the two agree.

    Raises:
        ValueError: the two were scored on different documents or tokens.
    """
    if not np.array_equal(a.tokens, b.tokens):
        raise ValueError("the two models were scored on different documents or tokens: pair "
                         "them on the same tokenized documents")
    w = _weights(len(a.nll), n_boot, seed)
    low, high = np.quantile(_ppl(w, a) - _ppl(w, b), [0.025, 0.975])
    return PairedPpl(a.ppl, b.ppl, a.ppl - b.ppl, float(low), float(high),
                     experiment.verdict(float(low), float(high), higher_is_better=False))


def bits_per_byte(d: DocLoss, n_bytes: int) -> float:
    """The loss in bits per UTF-8 byte of the text: comparable across tokenizers, where
    perplexity per token is not (a token holds more text in a larger vocabulary)."""
    return float(d.nll.sum() / math.log(2) / n_bytes)


def paired_bits_per_byte(a: DocLoss, b: DocLoss, doc_bytes: Sequence[int], n_boot: int = 1000,
                         seed: int = 0) -> PairedPpl:
    """Bits per byte of ``a`` minus ``b`` on the same documents (``doc_bytes`` each), however
    differently the two tokenize them, with a 95% interval over resampled documents and the
    verdict for ``a`` (fewer bits is better). The fields hold bits per byte, not perplexities.

    Raises:
        ValueError: the two were scored on different numbers of documents.
    """
    if len(a.nll) != len(b.nll) or len(a.nll) != len(doc_bytes):
        raise ValueError(f"{len(a.nll)} and {len(b.nll)} documents scored, {len(doc_bytes)} byte "
                         "counts: score both models on the same documents")
    n = np.asarray(doc_bytes, dtype=float)
    w = _weights(len(n), n_boot, seed)
    bpb = [(w @ d.nll) / (w @ n) / math.log(2) for d in (a, b)]
    low, high = np.quantile(bpb[0] - bpb[1], [0.025, 0.975])
    full = [float(d.nll.sum() / n.sum() / math.log(2)) for d in (a, b)]
    return PairedPpl(full[0], full[1], full[0] - full[1], float(low), float(high),
                     experiment.verdict(float(low), float(high), higher_is_better=False))


@dataclass(frozen=True)
class PowerLaw:
    """loss = coef * N^(-alpha) fitted on log-log axes, with alpha's 95% bootstrap interval."""

    coef: float
    alpha: float
    alpha_low: float
    alpha_high: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.coef * np.asarray(n, dtype=float) ** -self.alpha


def _slope(n: np.ndarray, loss: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)
    return float(-slope), float(math.exp(intercept))


def fit_power_law(n_params: Sequence[float], losses: Sequence[DocLoss], n_boot: int = 1000,
                  seed: int = 0) -> PowerLaw:
    """Fit loss = coef * N^-alpha to each model's mean held-out loss; the interval comes from
    resampling the held-out documents (the same resample for every size), so it says how much
    alpha depends on which text was held out, not on the training seeds."""
    n = np.asarray(n_params, dtype=float)
    alpha, coef = _slope(n, np.array([d.loss for d in losses]))
    w = _weights(len(losses[0].nll), n_boot, seed)
    boot = np.array([(w @ d.nll) / (w @ d.tokens) for d in losses])  # [sizes, n_boot]
    alphas = [_slope(n, boot[:, b])[0] for b in range(n_boot)]
    low, high = np.quantile(alphas, [0.025, 0.975])
    return PowerLaw(coef, alpha, float(low), float(high))
