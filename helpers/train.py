"""One readable fit/evaluate loop for classification, reused by every training chapter.

Introduced in ``notebooks/03_cnn_training.ipynb``.

``fit`` handles device placement, mixed precision on CUDA (bf16 on compute capability 8.0+,
else fp16 with a GradScaler), optional channels_last and ``torch.compile``, gradient clipping,
LR schedulers stepped per batch or per epoch, metric history (loss, accuracy, samples/s),
early stopping, tqdm progress and minimal callbacks. It writes a checkpoint atomically
after every epoch (model, optimizer, scheduler, scaler, RNG states, epoch, history, run key),
and ``resume=True`` continues from the last one, on any device: checkpoints are loaded to the
CPU first (with ``weights_only=True``), then the model and optimizer state go to the device.

A run is named by ``run_key(config, code)``: a hash of its whole configuration plus the
training code, so a checkpoint is never reused by another configuration or older code
(``CheckpointMismatchError``). A non-finite loss stops training with ``DivergenceError``
before anything is saved, so the last good checkpoint survives.

A callback is any callable ``callback(epoch, history, net)``; returning ``True`` stops
training after that epoch. Bad input (an empty loader, labels out of range, a model whose
output does not fit the loss) raises a ``ValueError`` naming the problem before training.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from . import env

__all__ = ["TensorLoader", "random_crop_flip", "fit", "evaluate", "predict",
           "check_batch", "amp_dtype", "to_device", "CHECKPOINT_NAME", "History",
           "run_key", "code_version", "fingerprint", "DivergenceError",
           "CheckpointMismatchError", "FIT_LOG_ENV", "Checkpointed"]

CHECKPOINT_NAME = "last.pt"
# When set, every ``fit`` call appends one JSON line here: trained, resumed or reused.
# ``tools.runner`` sets it for each notebook it executes, for its time table.
FIT_LOG_ENV = "DL_HANDBOOK_FIT_LOG"
Callback = Callable[[int, list[dict[str, float]], nn.Module], bool | None]


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weights; nothing from that epoch was saved."""


class CheckpointMismatchError(RuntimeError):
    """A checkpoint was written by another run (configuration or training code) than this one."""


class History(list):
    """What ``fit`` returns: one dict per epoch (a plain list), plus how this call got them.

    ``status`` is ``"trained"`` (from scratch), ``"resumed"`` (from a checkpoint that held
    ``resumed_from`` epochs) or ``"reused"`` (a finished checkpoint: nothing was trained).
    """

    def __init__(self, rows: Iterable[dict[str, float]] = (), status: str = "trained",
                 resumed_from: int = 0) -> None:
        super().__init__(rows)
        self.status, self.resumed_from = status, resumed_from

    def summary(self) -> str:
        """One line for a notebook: what this call trained."""
        if self.status == "reused":
            return f"reused a finished checkpoint ({_epochs(len(self))}): nothing was trained"
        if self.status == "resumed":
            return (f"resumed from epoch {self.resumed_from}: trained epochs "
                    f"{self.resumed_from + 1}-{len(self)}")
        return f"trained from scratch: {_epochs(len(self))}"


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


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
    """A short hash of the training code: this module, ``modules`` and torch's version."""
    digest = hashlib.sha256(torch.__version__.encode())
    for module in (sys.modules[__name__], *modules):
        digest.update(Path(inspect.getsourcefile(module) or "").read_bytes())
    return digest.hexdigest()[:12]


def run_key(config: Mapping[str, Any] | SimpleNamespace, code: Sequence[ModuleType] = ()) -> str:
    """A short hash naming one training run: its whole configuration plus the code version.

    Put everything that shapes the result in ``config`` (model, data subset, optimizer,
    schedule, seed, profile); ``code`` lists the modules beyond this one that build the
    model (e.g. ``helpers.models``). Use the key as the checkpoint folder's name and pass
    it to ``fit(run_key=...)``: change one hyperparameter, or the code, and the run starts
    from scratch in a new folder instead of silently reusing another run's checkpoint.
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


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``device``: on CUDA, bf16 from compute capability 8.0 (Ampere)
    on, else fp16 (with a GradScaler in ``fit``); elsewhere none.

    ``torch.cuda.is_bf16_supported()`` is True on a T4 (7.5, Colab's free GPU) because bf16
    is *emulated* there, slowly; its tensor cores run fp16, so that is what it gets.
    """
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def _first_batch(loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
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


def _all_labels(loader: Any) -> torch.Tensor | None:
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


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _rng_state(loader: Any) -> dict[str, Any]:
    """Every random-number generator a run draws from; all states are CPU ByteTensors."""
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


def _set_rng_state(state: dict[str, Any], loader: Any) -> None:
    """Restore what ``_rng_state`` saved, for the devices this machine has."""
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


def _restore(ckpt_path: Path, run_key: str | None, net: nn.Module,
             optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler,
             loader: Any) -> dict[str, Any]:
    """Load a checkpoint to the CPU, check its run key, and restore it into the live objects.

    Loading to the CPU first matters on a GPU: ``map_location="cuda"`` would move the saved
    RNG states there too, and ``torch.set_rng_state`` accepts CPU tensors only. The model's
    and optimizer's ``load_state_dict`` copy their tensors to the parameters' device.
    """
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if ckpt.get("run_key") != run_key:
        raise CheckpointMismatchError(
            f"{ckpt_path} was written by run {ckpt.get('run_key')!r}, but this is run "
            f"{run_key!r}: its configuration or training code differs, so its weights do not "
            "belong to this run. Give each run its own folder, "
            "paths.checkpoint_dir(..., train.run_key(config)), or delete this one to start over.")
    _unwrap(net).load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if scaler.is_enabled() and ckpt.get("scaler"):  # empty when saved without fp16
        scaler.load_state_dict(ckpt["scaler"])
    _set_rng_state(ckpt["rng"], loader)
    return ckpt


def _unwrap(net: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or compiled) wrapper: checkpoints hold its
    state, so they load at any world size."""
    inner = getattr(net, "module", None)
    return inner if isinstance(inner, nn.Module) else net


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _log_fit(history: History, checkpoint_dir: Path | None, key: str | None) -> None:
    log = os.environ.get(FIT_LOG_ENV)
    if not log:
        return
    record = {"status": history.status, "resumed_from": history.resumed_from,
              "run_key": key, "checkpoint": checkpoint_dir.name if checkpoint_dir else None}
    with open(log, "a", encoding="utf-8") as handle:  # one short line: appends do not interleave
        handle.write(json.dumps(record) + "\n")


def _check_finite(net: nn.Module, row: dict[str, float], epoch: int) -> None:
    bad = [name for name, p in net.named_parameters() if not torch.isfinite(p).all()]
    if bad or not math.isfinite(row.get("val_loss", 0.0)):
        what = f"weights {bad[:3]}" if bad else f"validation loss {row['val_loss']}"
        raise DivergenceError(f"training diverged in epoch {epoch}: non-finite {what}. Nothing "
                              "from this epoch was saved. Lower the learning rate or clip "
                              "gradients (grad_clip=1.0).")


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def evaluate(net: nn.Module, loader: Iterable, device: torch.device | str | None = None,
             loss_fn: nn.Module | None = None) -> dict[str, float]:
    """Mean loss and accuracy of ``net`` over ``loader`` (no gradients, eval mode)."""
    device = torch.device(device) if device is not None else next(net.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    dtype = amp_dtype(device)
    net.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = to_device(x, device), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype) if dtype else nullcontext():
                out = net(x)
            loss_sum += float(loss_fn(out.float(), y)) * len(y)
            correct += int((out.argmax(1) == y).sum())
            total += len(y)
    if total == 0:
        raise ValueError("the evaluation loader is empty")
    return {"loss": loss_sum / total, "acc": correct / total}


def predict(net: nn.Module, loader: Iterable, device: torch.device | str | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels for every batch of ``loader``, on the CPU."""
    device = torch.device(device) if device is not None else next(net.parameters()).device
    dtype = amp_dtype(device)
    net.eval()
    logits, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            with torch.autocast(device.type, dtype) if dtype else nullcontext():
                logits.append(net(to_device(x, device)).float().cpu())
            labels.append(y.cpu())
    return torch.cat(logits), torch.cat(labels)


def _optimizer_step(net: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any,
                    grad_clip: float | None, scheduler: Any, scheduler_step: str) -> None:
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    if scheduler is not None and scheduler_step == "batch":
        scheduler.step()


class Checkpointed(nn.Module):
    """``module`` with activation checkpointing: its inner activations are not kept for the
    backward pass but recomputed then (``torch.utils.checkpoint``), trading compute for memory.
    Gradients are unchanged. Taught in chapter 12; a Hugging Face transformer does the same
    per layer with ``model.activation_checkpointing_enable()`` (transformers 5)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any) -> Any:
        from torch.utils.checkpoint import checkpoint

        if not torch.is_grad_enabled():
            return self.module(*args)
        return checkpoint(self.module, *args, use_reentrant=False)


def fit(
    net: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    num_epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module | None = None,
    scheduler: Any = None,
    scheduler_step: str = "epoch",
    device: torch.device | str | None = None,
    amp: bool = True,
    channels_last: bool = False,
    compile: bool = False,
    grad_clip: float | None = None,
    accumulation_steps: int = 1,
    early_stopping_patience: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    run_key: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> History:
    """Train ``net`` for ``num_epochs``; return the history, one dict per epoch.

    Each history row holds ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc`` (when ``val_loader`` is given), ``lr``, ``seconds`` and ``samples_per_s``.

    Args:
        scheduler_step: ``"batch"`` (e.g. OneCycleLR) or ``"epoch"`` (e.g. StepLR).
        amp: autocast on CUDA (bf16 on compute capability 8.0+, else fp16 with a
            GradScaler); ignored on the CPU.
        compile: run the steps through ``torch.compile``; if compiling fails (no C++
            compiler, an unsupported op) fit warns and trains in eager mode instead.
        accumulation_steps: sum the gradients of this many batches before each optimizer
            step (each batch's loss divided by it): the step of a batch this many times
            larger, in the memory of one (taught in chapter 12). A batch-wise scheduler steps
            once per optimizer step; an epoch's last, incomplete group still steps.
        early_stopping_patience: stop when ``val_loss`` has not improved for this many
            epochs; the best weights are then restored.
        checkpoint_dir: where ``last.pt`` is written after every epoch.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists (a finished run
            returns its history without training again).
        run_key: the run's name, ``run_key(config, code)``; saved in every checkpoint, and
            a checkpoint with another key raises ``CheckpointMismatchError`` on resume.

    The returned ``History`` says whether this call trained, resumed or reused a finished
    run; with a ``checkpoint_dir`` it is also printed.

    Raises:
        DivergenceError: a non-finite loss (named with its epoch and step, and the last
            finite loss) or non-finite weights. That epoch is not saved.
        CheckpointMismatchError: see ``run_key``.
    """
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be an integer of at least 1 (1 = no "
                         f"accumulation), got {accumulation_steps!r}")
    device = torch.device(device) if device is not None else next(net.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    net.to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    x0, y0 = _first_batch(train_loader)
    labels = _all_labels(train_loader)  # check every label when cheap, else the first batch
    check_batch(net, x0, y0 if labels is None else labels, device)

    dtype = amp_dtype(device) if amp else None
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    step_net = torch.compile(net) if compile else net

    history = History()
    start_epoch, best_loss, best_state, bad_epochs = 0, math.inf, None, 0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt_path is not None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ckpt = _restore(ckpt_path, run_key, net, optimizer, scheduler, scaler, train_loader)
        start_epoch, history = ckpt["epoch"], History(ckpt["history"])
        best_loss, bad_epochs = ckpt["best_loss"], ckpt["bad_epochs"]
        best_state = ckpt.get("best_model")
        if ckpt.get("stopped"):
            start_epoch = num_epochs  # early stopping had ended this run
        history.status = "reused" if start_epoch >= num_epochs else "resumed"
        history.resumed_from = start_epoch
    if ckpt_path is not None:
        plan = {"trained": f"no checkpoint yet, training {_epochs(num_epochs)} from scratch",
                "resumed": f"checkpoint found, resuming from epoch {start_epoch} of {num_epochs}",
                "reused": f"finished before ({_epochs(len(history))} in its checkpoint), "
                          "nothing to train"}
        print(f"run {ckpt_path.parent.name}: {plan[history.status]}", flush=True)
    _log_fit(history, ckpt_path.parent if ckpt_path else None, run_key)
    try:
        steps = len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        steps = None
    last_finite: tuple[float, int, int] | None = None

    epochs = env.progress(range(start_epoch, num_epochs), "epochs", progress,
                          initial=start_epoch, total=num_epochs)
    sampler = getattr(train_loader, "sampler", None)
    for epoch in epochs:
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle every epoch
            sampler.set_epoch(epoch)
        net.train()
        started, seen, correct, loss_sum, pending = time.perf_counter(), 0, 0, 0.0, False
        for step, (x, y) in enumerate(env.progress(train_loader, f"epoch {epoch + 1}", progress,
                                                   leave=False)):
            x, y = to_device(x, device), y.to(device, non_blocking=True)
            if channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype) if dtype else nullcontext():
                try:
                    out = step_net(x)
                except Exception as err:  # compiling happens at the first call, and can fail
                    if step_net is net:
                        raise
                    warnings.warn(f"torch.compile failed ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0][:200]}); training in eager mode",
                                  stacklevel=2)
                    step_net = net
                    out = step_net(x)
                loss = loss_fn(out.float(), y)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):  # stop before the step writes NaN weights
                last = ("no finite loss before it" if last_finite is None else
                        f"last finite loss {last_finite[0]:.4f} (epoch {last_finite[1]}, "
                        f"step {last_finite[2]})")
                kept = (f"a checkpoint still holds epoch {epoch}" if epoch and ckpt_path
                        else "nothing was saved")
                raise DivergenceError(
                    f"the loss is {loss_value} at epoch {epoch + 1}, step {step + 1} of "
                    f"{steps if steps is not None else '?'}; {last}. Training stopped and "
                    f"{kept}. Lower the learning rate, clip gradients (grad_clip=1.0), or "
                    "look for NaN or inf in the inputs.")
            last_finite = (loss_value, epoch + 1, step + 1)
            if step % accumulation_steps == 0:
                optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss / accumulation_steps).backward()
            pending = True
            if (step + 1) % accumulation_steps == 0 or (steps is not None and step + 1 == steps):
                _optimizer_step(net, optimizer, scaler, grad_clip, scheduler, scheduler_step)
                pending = False
            seen += len(y)
            loss_sum += loss_value * len(y)
            correct += int((out.detach().argmax(1) == y).sum())
        if pending:  # a loader without a length ended inside a group
            _optimizer_step(net, optimizer, scaler, grad_clip, scheduler, scheduler_step)
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        seconds = time.perf_counter() - started
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
               "lr": optimizer.param_groups[0]["lr"], "seconds": seconds,
               "samples_per_s": seen / seconds}
        if val_loader is not None:
            val = evaluate(net, val_loader, device, loss_fn)
            row.update(val_loss=val["loss"], val_acc=val["acc"])
        _check_finite(net, row, epoch + 1)
        history.append(row)
        epochs.set_postfix({k: round(v, 4) for k, v in row.items() if k.startswith(("train", "val"))})

        stop = False
        if early_stopping_patience is not None and val_loader is not None:
            if row["val_loss"] < best_loss:
                best_loss, bad_epochs = row["val_loss"], 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                bad_epochs += 1
                stop = bad_epochs >= early_stopping_patience
        if ckpt_path is not None and _is_main_process():  # under DDP, rank 0 writes
            _save_atomic({
                "model": _unwrap(net).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict(), "rng": _rng_state(train_loader),
                "epoch": epoch + 1, "history": list(history), "best_loss": best_loss,
                "bad_epochs": bad_epochs, "best_model": best_state, "stopped": stop,
                "run_key": run_key,
            }, ckpt_path)
        for callback in callbacks:
            stop = bool(callback(epoch + 1, history, net)) or stop
        if stop:
            break
    if best_state is not None and early_stopping_patience is not None:
        net.load_state_dict(best_state)
    return history
