"""Text to tokens and back: a byte-level BPE tokenizer, trained on the chapter's corpus, and the
corpus cut into documents for training and evaluation.

Taught in ``notebooks/15a_small_gpt.ipynb`` ("The tokenizer").

* ``train_bpe``: byte-level byte-pair encoding (Hugging Face ``tokenizers``): start from the 256
  byte values, merge the most frequent adjacent pair into a new token, repeat until the
  vocabulary is full. Any text round-trips, since every byte is a token.
* ``bytes_per_token``: the compression it reached (UTF-8 bytes per token).
* ``split_documents``: documents (here, one critic sentence each) shuffled by a seed into
  training, validation and test sets, so that held-out text is whole documents never seen.
* ``token_stream``: the training documents joined by the end-of-text token, as one tensor from
  which training windows are cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["EOT", "train_bpe", "load_bpe", "encode_documents", "bytes_per_token", "token_bytes",
           "split_documents", "token_stream"]

EOT = "<|endoftext|>"  # separates documents; also the first token of every evaluated document


def train_bpe(texts: Sequence[str], vocab_size: int, min_frequency: int = 2) -> Any:
    """A byte-level BPE tokenizer (``tokenizers.Tokenizer``) trained on ``texts``, with the
    special token ``EOT`` at id 0.

    Raises:
        ValueError: ``vocab_size`` too small to hold the 256 bytes and the special token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size <= 257:
        raise ValueError(f"vocab_size {vocab_size} cannot hold the 256 byte tokens and {EOT}")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def load_bpe(path: str | Path) -> Any:
    """A tokenizer saved with ``tokenizer.save(path)`` (one JSON file)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def encode_documents(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Each text's token ids (no special tokens added)."""
    return [enc.ids for enc in tokenizer.encode_batch(list(texts))]


def bytes_per_token(texts: Sequence[str], ids: Sequence[Sequence[int]]) -> float:
    """UTF-8 bytes of ``texts`` per token of their encoding ``ids``."""
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_tokens = sum(len(d) for d in ids)
    return n_bytes / n_tokens


def token_bytes(tokenizer: Any, docs: Sequence[Sequence[int]], block: int) -> int:
    """UTF-8 bytes of the first ``block`` tokens of each document: in byte-level BPE each
    character of a token's string stands for one byte."""
    return sum(len(tokenizer.id_to_token(t)) for doc in docs for t in doc[:block])


def split_documents(texts: Sequence[str], seed: int, n_val: int, n_test: int
                    ) -> tuple[list[str], list[str], list[str]]:
    """``texts`` shuffled by ``seed`` and cut into training, validation (``n_val``) and test
    (``n_test``) documents.

    Raises:
        ValueError: fewer documents than ``n_val + n_test`` plus one for training.
    """
    if n_val + n_test >= len(texts):
        raise ValueError(f"{len(texts)} documents cannot give {n_val} validation and {n_test} "
                         "test documents and still leave some for training")
    order = np.random.default_rng(seed).permutation(len(texts))
    shuffled = [texts[i] for i in order]
    return (shuffled[n_val + n_test:], shuffled[:n_val], shuffled[n_val:n_val + n_test])


def token_stream(docs: Sequence[Sequence[int]], eot_id: int) -> torch.Tensor:
    """The documents' tokens joined into one stream, each document followed by ``eot_id``."""
    flat = [t for doc in docs for t in (*doc, eot_id)]
    return torch.tensor(flat, dtype=torch.long)
