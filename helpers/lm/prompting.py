"""Classifying text with a generative model: a chat prompt, and the next-token probabilities of
the label words.

Taught in ``notebooks/15b_pretrained_llm.ipynb`` ("The team lead's question").

* ``LabelPrompt``: a chat prompt cut around the text to classify: a ``prefix`` shared by every
  text (the instruction, and the demonstrations of few-shot prompting), the text, and a
  ``suffix`` ending where the answer's label word comes ("...This review is"). The shared
  prefix is computed once and its keys and values reused for every text (``KVCache.expand``),
  so a few-shot prompt costs no more per text than a zero-shot one.
* ``label_scores``: the log-probabilities of the label words, renormalized over the labels,
  ``[texts, labels]``; the predicted class is the most probable label word.
* ``label_loss``: the same scores with gradients, for tuning (LoRA) on labelled texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .model import GPT, KVCache

__all__ = ["LabelPrompt", "label_prompt", "label_token_ids", "label_scores", "label_loss"]

SLOT = "\u241f"  # where the text goes in the rendered chat prompt (a character no review contains)


@dataclass(frozen=True)
class LabelPrompt:
    """Token ids of a prompt around a text: ``prefix`` + text + ``suffix``; ``label_ids``:
    the first token of each label word, in class order."""

    prefix: list[int]
    suffix: list[int]
    label_ids: list[int]

    def ids(self, tokenizer: Any, text: str) -> list[int]:
        """The whole prompt for ``text``, as token ids."""
        return self.prefix + _encode(tokenizer, text) + self.suffix


def _encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def label_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """The first token of each label word as it follows the prompt (with a leading space).

    Raises:
        ValueError: two label words start with the same token.
    """
    ids = [_encode(tokenizer, " " + w)[0] for w in words]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the label words {list(words)} share their first token: choose others")
    return ids


def label_prompt(tokenizer: Any, instruction: str, question: str, answer_start: str,
                 words: Sequence[str], demos: Sequence[tuple[str, int]] = ()) -> LabelPrompt:
    """A chat prompt (the tokenizer's chat template) asking ``question`` about a text, with
    ``demos`` (text, class) as earlier turns answered "``answer_start`` word.", and the
    assistant's answer begun with ``answer_start`` so that the next token is the label word."""
    messages = [{"role": "system", "content": instruction}]
    for text, label in demos:
        messages += [{"role": "user", "content": f"{question}\n{text}"},
                     {"role": "assistant", "content": f"{answer_start} {words[label]}."}]
    messages.append({"role": "user", "content": f"{question}\n{SLOT}"})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    before, after = (rendered + answer_start).split(SLOT)
    return LabelPrompt(_encode(tokenizer, before), _encode(tokenizer, after),
                       label_token_ids(tokenizer, words))


def _padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows right-padded into one tensor, and the index of each row's last token. Padding on
    the right is harmless to a causal model: no real token attends to a later position."""
    width = max(len(r) for r in rows)
    x = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return x, torch.tensor([len(r) - 1 for r in rows])


def _scores(model: GPT, prefix: KVCache | None, rows: Sequence[Sequence[int]],
            label_ids: Sequence[int], pad: int) -> torch.Tensor:
    x, last = _padded(rows, pad)
    cache = prefix.expand(len(rows)) if prefix is not None else None
    h = model.hidden(x, cache)[torch.arange(len(rows)), last]  # the position before the label
    return model.logits(h)[:, list(label_ids)].float().log_softmax(-1)


@torch.no_grad()
def label_scores(model: GPT, tokenizer: Any, prompt: LabelPrompt, texts: Sequence[str],
                 batch: int = 16) -> np.ndarray:
    """Log-probabilities of the label words for each text ``[texts, labels]``, renormalized
    over the labels. The prefix runs once; each batch of texts (of similar lengths) continues
    its cache."""
    model.eval()
    prefix = KVCache()
    model.hidden(torch.tensor([prompt.prefix]), prefix)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = [_encode(tokenizer, t) + prompt.suffix for t in texts]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # similar lengths: little padding
    out = torch.empty(len(rows), len(prompt.label_ids))
    for i in range(0, len(rows), batch):
        part = order[i:i + batch]
        out[part] = _scores(model, prefix, [rows[j] for j in part], prompt.label_ids, pad)
    return out.numpy()


def label_loss(model: Any, tokenizer: Any, prompt: LabelPrompt, texts: Sequence[str],
               labels: Sequence[int]) -> torch.Tensor:
    """Cross-entropy of the label words for a batch of labelled texts (whole prompts, no
    cache: the tuned layers change the prefix's keys and values too)."""
    rows = [prompt.ids(tokenizer, t) for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores = _scores(model, None, rows, prompt.label_ids, pad)
    return F.nll_loss(scores, torch.as_tensor(list(labels), dtype=torch.long))
