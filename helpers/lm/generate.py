"""Decoding: choosing the next token (greedy, temperature, top-k, top-p) and generating with
or without the key-value cache.

Taught in ``notebooks/15a_small_gpt.ipynb`` ("Decoding", "The KV cache"); used again on a
pretrained model in ``notebooks/15b_pretrained_llm.ipynb``.

* ``top_k_filter`` keeps the ``k`` most likely tokens; ``top_p_filter`` keeps the smallest set
  of most likely tokens whose probabilities add up to at least ``p`` (nucleus sampling,
  Holtzman et al. 2020). Both set the others' logits to minus infinity.
* ``next_token``: greedy (``temperature=0``) or a draw from the filtered, tempered
  distribution, from an explicit ``torch.Generator`` so that a seed gives the same text.
* ``generate``: ``use_cache=False`` recomputes the whole sequence for every new token;
  ``use_cache=True`` computes the prompt once, then one token per step from the cache.
* ``distinct_n``: the share of distinct n-grams in generated texts (repetition, measured).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .model import GPT, KVCache

__all__ = ["top_k_filter", "top_p_filter", "next_token", "generate", "Generation", "distinct_n"]


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """``logits`` ``[..., vocab]`` with all but the ``k`` largest set to -inf (ties kept)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """``logits`` with every token outside the nucleus set to -inf: the smallest set of the
    most likely tokens whose probabilities sum to at least ``p`` (the most likely token is
    always kept). ``p >= 1`` keeps everything."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p >= 1:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    # drop a token when the tokens before it already reach p
    drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token ``[batch, 1]`` from the last position's ``logits`` ``[batch, vocab]``:
    the most likely one when ``temperature`` is 0, else a draw from
    softmax(filtered logits / temperature) using ``generator``."""
    if temperature < 0:
        raise ValueError(f"temperature must be 0 (greedy) or more, got {temperature}")
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    filtered = top_p_filter(top_k_filter(logits.float() / temperature, top_k), top_p)
    probs = filtered.softmax(-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device)


@dataclass(frozen=True)
class Generation:
    """Generated token ids ``[batch, new]``, and how long it took."""

    tokens: torch.Tensor
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens.numel() / self.seconds if self.seconds > 0 else float("inf")


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_k: int = 0, top_p: float = 1.0, seed: int | None = None, use_cache: bool = True,
             stop: int | None = None) -> Generation:
    """Continue ``prompt`` ``[batch, tokens]`` by ``max_new_tokens`` tokens (fewer if every row
    produced the ``stop`` token).

    ``use_cache=False`` runs the whole sequence through the model for every new token (the
    context is cut to ``block_size``); ``use_cache=True`` runs the prompt once and then only
    the newest token, reading the earlier keys and values from a ``KVCache``. Under greedy
    decoding both give the same tokens.
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    cache = KVCache() if use_cache else None
    seq, new = prompt, []
    started = time.perf_counter()
    for _ in range(max_new_tokens):
        if cache is None:
            h = model.hidden(seq[:, -model.cfg.block_size:])
        else:
            h = model.hidden(seq if len(cache) == 0 else seq[:, -1:], cache)
        token = next_token(model.logits(h[:, -1]), temperature, top_k, top_p, generator)
        new.append(token)
        seq = torch.cat([seq, token], dim=1)
        if stop is not None and bool((torch.cat(new, 1) == stop).any(1).all()):
            break
    return Generation(torch.cat(new, dim=1), time.perf_counter() - started)


def distinct_n(texts: Sequence[Sequence[int]] | Sequence[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams in ``texts`` (token id lists, or strings split on
    spaces): 1.0 when nothing repeats, near 0 when the same phrase loops."""
    grams, total = set(), 0
    for text in texts:
        units = text.split() if isinstance(text, str) else list(text)
        for i in range(len(units) - n + 1):
            grams.add(tuple(units[i:i + n]))
            total += 1
    return len(grams) / total if total else 0.0
