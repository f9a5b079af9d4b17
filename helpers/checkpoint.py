"""A training run's identity and its checkpoint: run keys, random-number states, atomic saves.

Taught in ``notebooks/03_cnn_training.ipynb`` ("The same, with the course's training loop");
``train.fit`` uses it after every epoch, and chapter 12 resumes a run across world sizes.

* ``run_key(config, code)`` names a run by its whole configuration and the training code, so a
  checkpoint is only ever reused by the run that wrote it; ``fingerprint(data)`` puts data in it.
* ``rng_state``/``set_rng_state``: every generator a run draws from (Python, NumPy, torch, CUDA,
  MPS and the loader's shuffle), as CPU tensors.
* ``save_atomic`` writes a checkpoint so that a reader sees the old file or the new one, never
  half of one; ``load`` reads it to the CPU (``weights_only=True``) and refuses one written by
  another run (``CheckpointMismatchError``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["CHECKPOINT_NAME", "CheckpointMismatchError", "run_key", "code_version", "fingerprint",
           "rng_state", "set_rng_state", "save_atomic", "load", "unwrap", "is_main_process"]

CHECKPOINT_NAME = "last.pt"


class CheckpointMismatchError(RuntimeError):
    """A checkpoint was written by another run (configuration or training code) than this one."""


def _plain(value: Any, where: str = "config") -> Any:
    """``value`` as JSON-ready plain data, so its hash is stable across runs and machines."""
    if isinstance(value, SimpleNamespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, torch.device | torch.dtype | Path):
        return str(value)
    raise TypeError(f"{where} is a {type(value).__name__}; a run configuration holds numbers, "
                    "strings, lists and dicts. For data, put train.fingerprint(data) in it.")


def code_version(*modules: ModuleType) -> str:
    """A short hash of the training code: the training loop and its batches (``helpers.train``,
    ``helpers.batches``), this module, ``modules`` and torch's version."""
    digest = hashlib.sha256(torch.__version__.encode())
    loop = [importlib.util.find_spec(f"helpers.{name}") for name in ("train", "batches")]
    files = [spec.origin if spec and spec.origin else "" for spec in loop] + [__file__]
    files += [inspect.getsourcefile(m) or "" for m in modules]
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()[:12]


def run_key(config: Mapping[str, Any] | SimpleNamespace, code: Sequence[ModuleType] = ()) -> str:
    """A short hash naming one training run: its whole configuration plus the code version.

    Put everything that shapes the result in ``config`` (model, data subset, optimizer,
    schedule, seed, profile); ``code`` lists the modules beyond the training loop that build
    the model (e.g. ``helpers.models``). Use the key as the checkpoint folder's name and pass it
    to ``fit(run_key=...)``: change one hyperparameter, or the code, and the run starts from
    scratch in a new folder instead of silently reusing another run's checkpoint.
    """
    blob = json.dumps({"config": _plain(config), "code": code_version(*code)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprint(*parts: Any) -> str:
    """A short hash of data (tensors, arrays, lists of texts or labels) for a run's config."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().cpu().contiguous().numpy()
        arr = np.asarray(part)
        digest.update(f"{arr.shape}{arr.dtype}".encode())
        if arr.dtype == object:
            digest.update("\x1f".join(map(str, arr.ravel())).encode())
        else:
            digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def rng_state(loader: Any = None) -> dict[str, Any]:
    """Every random-number generator a run draws from; all states are CPU tensors."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    mt = np.random.get_state()
    state["numpy"] = {"keys": torch.from_numpy(mt[1].astype(np.int64)), "pos": int(mt[2]),
                      "has_gauss": int(mt[3]), "gauss": float(mt[4])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if _mps_available():
        state["mps"] = torch.mps.get_rng_state()
    gen = getattr(loader, "generator", None)
    if gen is not None:
        state["loader"] = gen.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader: Any = None) -> None:
    """Restore what ``rng_state`` saved, for the devices this machine has."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    if "mps" in state and _mps_available():
        torch.mps.set_rng_state(state["mps"])
    gen = getattr(loader, "generator", None)
    if gen is not None and "loader" in state:
        gen.set_state(state["loader"])


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename it over ``path``: a reader (or a crash)
    sees the old checkpoint or the new one, never half of one."""
    tmp = Path(path).with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path, key: str | None) -> dict[str, Any]:
    """Read a checkpoint to the CPU and check it belongs to run ``key``.

    Loading to the CPU first matters on a GPU: ``map_location="cuda"`` would move the saved
    RNG states there too, and ``torch.set_rng_state`` accepts CPU tensors only.

    Raises:
        CheckpointMismatchError: the checkpoint names another run.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("run_key") != key:
        raise CheckpointMismatchError(
            f"{path} was written by run {ckpt.get('run_key')!r}, but this is run {key!r}: its "
            "configuration or training code differs, so its weights do not belong to this run. "
            "Give each run its own folder, paths.checkpoint_dir(..., train.run_key(config)), or "
            "delete this one to start over.")
    return ckpt


def unwrap(net: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or compiled) wrapper: checkpoints hold its
    state, so they load at any world size."""
    inner = getattr(net, "module", None)
    return inner if isinstance(inner, nn.Module) else net


def is_main_process() -> bool:
    """True outside distributed training, and on rank 0 inside it (the rank that saves)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
