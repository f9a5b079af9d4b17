"""Batches for the training loop: tensors in memory cut into batches, checked before training.

Taught in ``notebooks/03_cnn_training.ipynb`` ("The data"), with ``train.fit``, which takes any
iterable of ``(inputs, labels)`` batches (a ``TensorLoader``, a ``DataLoader``):

* ``TensorLoader``: batches from tensors already in memory (or on the GPU), shuffled by a
  generator whose state a checkpoint saves, with an optional whole-batch ``transform``;
* ``random_crop_flip``: crop-and-flip augmentation of a whole batch in one gather;
* ``to_device``: a tensor, or a tokenized text batch (a dict of tensors), on a device;
* ``check_batch``: fail early, naming the reason, when a model and a batch do not fit a
  classification loss (labels out of range, a wrong output shape).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["TensorLoader", "random_crop_flip", "to_device", "check_batch", "first_batch",
           "all_labels"]


class TensorLoader:
    """Batches from tensors already in memory (or on the GPU): no workers, no per-item copies.

    Much faster than a ``DataLoader`` over a ``TensorDataset`` for small images, and safe in
    notebooks on every OS (no worker processes). ``transform`` runs on each whole batch (e.g.
    ``random_crop_flip``). The shuffle order comes from ``generator``, whose state the
    training loop saves in checkpoints, so a resumed run sees the same batches.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                 seed: int = 0, drop_last: bool = False) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.shuffle, self.transform, self.drop_last = shuffle, transform, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.x) // self.batch_size if self.drop_last else math.ceil(len(self.x) / self.batch_size)
        return n

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.x.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xb = self.x[idx]
            if self.transform is not None:
                xb = self.transform(xb, self.generator)
            yield xb, self.y[idx]


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Batch augmentation on the device: random crop after reflect-padding, random h-flip.

    One gather for the whole batch (no Python loop over images), so it is cheap on a GPU.
    """
    n, c, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = dy + torch.arange(h, device=x.device)  # [n, h]
    cols = dx + torch.arange(w, device=x.device)  # [n, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


def to_device(x: Any, device: torch.device) -> Any:
    """Move a tensor, or a dict of tensors (a tokenized text batch), to ``device``."""
    if isinstance(x, Mapping):
        return {k: v.to(device, non_blocking=True) for k, v in x.items()}
    return x.to(device, non_blocking=True)


def _head(x: Any, n: int) -> Any:
    return {k: v[:n] for k, v in x.items()} if isinstance(x, Mapping) else x[:n]


def _batch_len(x: Any) -> int:
    return len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)


def first_batch(loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        length = len(loader)  # type: ignore[arg-type]
    except TypeError:
        length = None
    if length == 0:
        raise ValueError("the training loader is empty: check the dataset, its filter, and "
                         "batch_size/drop_last")
    for batch in loader:
        if not (isinstance(batch, Sequence) and len(batch) == 2):
            raise ValueError("each batch must be a pair (inputs, labels)")
        return batch[0], batch[1]
    raise ValueError("the training loader is empty: check the dataset, its filter, and "
                     "batch_size/drop_last")


def all_labels(loader: Any) -> torch.Tensor | None:
    """Every label of a loader when that is cheap to get (without iterating it), else None."""
    if isinstance(loader, TensorLoader):
        return loader.y
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "tensors"):  # TensorDataset
        return dataset.tensors[-1]
    targets = getattr(dataset, "targets", None)  # torchvision datasets
    return torch.as_tensor(targets) if targets is not None else None


def check_batch(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> int:
    """Fail early, with the reason, if ``net`` and a batch do not fit a classification loss.

    Returns the number of classes the model predicts.
    """
    if y.dtype not in (torch.int64, torch.int32, torch.uint8, torch.int16):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    was_training = net.training
    net.eval()
    with torch.no_grad():
        out = net(to_device(_head(x, 2), device))
    net.train(was_training)
    n = min(2, _batch_len(x))
    if out.ndim != 2 or out.shape[0] != n:
        raise ValueError(f"the model returns shape {tuple(out.shape)} for a batch of "
                         f"{n}; a classifier must return [batch, num_classes]")
    num_classes = out.shape[1]
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"labels range over [{low}, {high}] but the model predicts "
                         f"{num_classes} classes (valid labels: 0..{num_classes - 1})")
    return num_classes
