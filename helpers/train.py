"""One readable training loop for classification, reused by every training chapter.

Introduced in ``notebooks/03_cnn_training.ipynb``; chapter 06 adds early stopping, chapter 12
gradient accumulation, mixed precision and ``torch.compile``.

``fit`` is built from named steps you can read one by one, as the chapters teach them:

1. ``_setup``: device, channels-last, mixed precision (bf16 on CUDA compute capability 8.0+,
   else fp16 with a GradScaler), ``torch.compile`` with a fallback to eager mode;
2. ``_start``: a new run, or one resumed from its checkpoint (``helpers.checkpoint``);
3. ``_train_epoch``: the batches in groups of ``accumulation_steps``, each group an explicit
   loop of micro-steps (forward, loss divided by the group size, backward) followed by one
   optimizer step (clipping, the scaler, a batch-wise scheduler);
4. ``_validate``: the validation loss and accuracy;
5. ``_early_stop`` and ``_save``: keep the best weights, write ``last.pt`` atomically;
6. callbacks; at the end, the best weights are restored when early stopping was on.

A run is named by ``run_key(config, code)`` (``helpers.checkpoint``): a hash of its whole
configuration plus the training code, so a checkpoint is never reused by another
configuration or older code (``CheckpointMismatchError``). A non-finite loss stops training
with ``DivergenceError`` before anything is saved, so the last good checkpoint survives.

A callback is any callable ``callback(epoch, history, net)``; returning ``True`` stops training
after that epoch. ``FIT_HOOKS`` are called once at the start of every ``fit`` with the history
(whose ``status`` says trained, resumed or reused), the checkpoint folder and the run key: the
course's runner uses one to tabulate what each chapter trained. Bad input (an empty loader,
labels out of range, a model whose output does not fit the loss) raises a ``ValueError``
naming the problem before training.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint, env
from .batches import TensorLoader, all_labels, check_batch, first_batch, random_crop_flip, to_device
from .checkpoint import CHECKPOINT_NAME, CheckpointMismatchError, code_version, fingerprint, run_key

__all__ = ["TensorLoader", "random_crop_flip", "fit", "loss_and_accuracy", "evaluate", "predict",
           "check_batch", "amp_dtype", "to_device", "CHECKPOINT_NAME", "History",
           "run_key", "code_version", "fingerprint", "DivergenceError",
           "CheckpointMismatchError", "FIT_HOOKS", "Checkpointed"]

Callback = Callable[[int, list[dict[str, float]], nn.Module], bool | None]


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or weights; nothing from that epoch was saved."""


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


# Called at the start of every fit: hook(history, checkpoint_dir or None, run_key or None).
FIT_HOOKS: list[Callable[[History, Path | None, str | None], None]] = []


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


def loss_and_accuracy(net: nn.Module, loader: Iterable, device: torch.device | str | None = None,
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


def evaluate(net: nn.Module, loader: Iterable, device: torch.device | str | None = None,
             loss_fn: nn.Module | None = None) -> dict[str, float]:
    """Deprecated name of ``loss_and_accuracy`` (it sat beside the module ``helpers.evaluate``)."""
    warnings.warn("train.evaluate is deprecated: use train.loss_and_accuracy (same arguments)",
                  DeprecationWarning, stacklevel=2)
    return loss_and_accuracy(net, loader, device, loss_fn)


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


@dataclass
class _Engine:
    """What every step needs: the model, where and how it runs, and what it optimizes."""

    net: nn.Module
    device: torch.device
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    scheduler: Any
    scheduler_step: str
    grad_clip: float | None
    accumulation_steps: int
    channels_last: bool
    dtype: torch.dtype | None = None
    scaler: Any = None
    step_net: nn.Module | None = None  # the compiled model, or the model itself

    def forward(self, x: Any) -> torch.Tensor:
        """The model's output; a ``torch.compile`` failure at the first call falls back to eager."""
        try:
            return self.step_net(x)
        except Exception as err:  # compiling happens at the first call, and can fail
            if self.step_net is self.net:
                raise
            warnings.warn(f"torch.compile failed ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:200]}); training in eager mode",
                          stacklevel=3)
            self.step_net = self.net
            return self.step_net(x)


@dataclass
class _Run:
    """What a run carries from epoch to epoch (and in its checkpoint)."""

    history: History = field(default_factory=History)
    start_epoch: int = 0
    best_loss: float = math.inf
    best_state: dict[str, Any] | None = None
    bad_epochs: int = 0
    stopped: bool = False
    last_finite: tuple[float, int, int] | None = None  # loss, epoch, step


def _check_arguments(num_epochs: int, scheduler_step: str, resume: bool,
                     checkpoint_dir: str | Path | None, accumulation_steps: int) -> None:
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be an integer of at least 1 (1 = no "
                         f"accumulation), got {accumulation_steps!r}")


def _setup(engine: _Engine, train_loader: Iterable, amp: bool, compile: bool) -> None:
    """Step 1: put the model on its device, check a batch against it, pick the precision."""
    engine.net.to(engine.device)
    if engine.channels_last:
        engine.net.to(memory_format=torch.channels_last)
    x0, y0 = first_batch(train_loader)
    labels = all_labels(train_loader)  # check every label when cheap, else the first batch
    check_batch(engine.net, x0, y0 if labels is None else labels, engine.device)
    engine.dtype = amp_dtype(engine.device) if amp else None
    engine.scaler = torch.amp.GradScaler("cuda", enabled=engine.dtype == torch.float16)
    engine.step_net = torch.compile(engine.net) if compile else engine.net


def _start(engine: _Engine, ckpt_path: Path | None, resume: bool, key: str | None,
           num_epochs: int, train_loader: Any) -> _Run:
    """Step 2: a new run, or the one its checkpoint holds (a finished one is reused)."""
    run = _Run()
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ckpt = checkpoint.load(ckpt_path, key)
        checkpoint.unwrap(engine.net).load_state_dict(ckpt["model"])
        engine.optimizer.load_state_dict(ckpt["optimizer"])
        if engine.scheduler is not None and ckpt.get("scheduler") is not None:
            engine.scheduler.load_state_dict(ckpt["scheduler"])
        if engine.scaler.is_enabled() and ckpt.get("scaler"):  # empty when saved without fp16
            engine.scaler.load_state_dict(ckpt["scaler"])
        checkpoint.set_rng_state(ckpt["rng"], train_loader)
        run = _Run(History(ckpt["history"]), ckpt["epoch"], ckpt["best_loss"],
                   ckpt.get("best_model"), ckpt["bad_epochs"], bool(ckpt.get("stopped")))
        if run.stopped:
            run.start_epoch = num_epochs  # early stopping had ended this run
        run.history.status = "reused" if run.start_epoch >= num_epochs else "resumed"
        run.history.resumed_from = run.start_epoch
    if ckpt_path is not None:
        plan = {"trained": f"no checkpoint yet, training {_epochs(num_epochs)} from scratch",
                "resumed": f"checkpoint found, resuming from epoch {run.start_epoch} of {num_epochs}",
                "reused": f"finished before ({_epochs(len(run.history))} in its checkpoint), "
                          "nothing to train"}
        print(f"run {ckpt_path.parent.name}: {plan[run.history.status]}", flush=True)
    return run


def _groups(batches: Iterable, size: int) -> Iterator[list]:
    """Consecutive batches in lists of ``size`` (the last list may be shorter)."""
    batches = iter(batches)
    while group := list(itertools.islice(batches, size)):
        yield group


def _diverged(loss: float, run: _Run, epoch: int, step: int, steps: int | None,
              saved: bool) -> DivergenceError:
    last = ("no finite loss before it" if run.last_finite is None else
            f"last finite loss {run.last_finite[0]:.4f} (epoch {run.last_finite[1]}, "
            f"step {run.last_finite[2]})")
    kept = f"a checkpoint still holds epoch {epoch}" if epoch and saved else "nothing was saved"
    return DivergenceError(
        f"the loss is {loss} at epoch {epoch + 1}, step {step} of "
        f"{steps if steps is not None else '?'}; {last}. Training stopped and {kept}. Lower the "
        "learning rate, clip gradients (grad_clip=1.0), or look for NaN or inf in the inputs.")


def _optimizer_step(e: _Engine) -> None:
    """After a group's micro-steps: clip, step (through the scaler), a batch-wise schedule."""
    if e.grad_clip is not None:
        e.scaler.unscale_(e.optimizer)
        nn.utils.clip_grad_norm_(e.net.parameters(), e.grad_clip)
    e.scaler.step(e.optimizer)
    e.scaler.update()
    if e.scheduler is not None and e.scheduler_step == "batch":
        e.scheduler.step()


def _train_epoch(e: _Engine, loader: Iterable, run: _Run, epoch: int, progress: bool,
                 saved: bool) -> dict[str, float]:
    """Step 3: one epoch; the batches in groups of ``accumulation_steps`` micro-steps, one
    optimizer step per group. Returns the epoch's training loss, accuracy and speed."""
    try:
        steps = len(loader)  # type: ignore[arg-type]
    except TypeError:
        steps = None
    e.net.train()
    started, seen, correct, loss_sum, step = time.perf_counter(), 0, 0, 0.0, 0
    batches = env.progress(loader, f"epoch {epoch + 1}", progress, leave=False)
    for group in _groups(batches, e.accumulation_steps):
        e.optimizer.zero_grad(set_to_none=True)
        for x, y in group:  # the micro-steps: each adds its share of the group's gradient
            step += 1
            x, y = to_device(x, e.device), y.to(e.device, non_blocking=True)
            if e.channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(e.device.type, e.dtype) if e.dtype else nullcontext():
                out = e.forward(x)
                loss = e.loss_fn(out.float(), y)
            value = float(loss.detach())
            if not math.isfinite(value):  # stop before the step writes NaN weights
                raise _diverged(value, run, epoch, step, steps, saved)
            run.last_finite = (value, epoch + 1, step)
            e.scaler.scale(loss / e.accumulation_steps).backward()
            seen, loss_sum = seen + len(y), loss_sum + value * len(y)
            correct += int((out.detach().argmax(1) == y).sum())
        _optimizer_step(e)
    if e.scheduler is not None and e.scheduler_step == "epoch":
        e.scheduler.step()
    seconds = time.perf_counter() - started
    return {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
            "lr": e.optimizer.param_groups[0]["lr"], "seconds": seconds,
            "samples_per_s": seen / seconds}


def _validate(e: _Engine, val_loader: Iterable | None, row: dict[str, float]) -> None:
    """Step 4: the validation loss and accuracy (when there is a validation loader), and a
    check that no weight and no loss went non-finite."""
    if val_loader is not None:
        val = loss_and_accuracy(e.net, val_loader, e.device, e.loss_fn)
        row.update(val_loss=val["loss"], val_acc=val["acc"])
    bad = [name for name, p in e.net.named_parameters() if not torch.isfinite(p).all()]
    if bad or not math.isfinite(row.get("val_loss", 0.0)):
        what = f"weights {bad[:3]}" if bad else f"validation loss {row['val_loss']}"
        raise DivergenceError(f"training diverged in epoch {row['epoch']}: non-finite {what}. "
                              "Nothing from this epoch was saved. Lower the learning rate or "
                              "clip gradients (grad_clip=1.0).")


def _early_stop(run: _Run, row: dict[str, float], net: nn.Module, patience: int | None) -> bool:
    """Step 5a: keep the best weights so far; True once ``patience`` epochs did not improve."""
    if patience is None or "val_loss" not in row:
        return False
    if row["val_loss"] < run.best_loss:
        run.best_loss, run.bad_epochs = row["val_loss"], 0
        run.best_state = copy.deepcopy(net.state_dict())
        return False
    run.bad_epochs += 1
    return run.bad_epochs >= patience


def _save(e: _Engine, run: _Run, ckpt_path: Path | None, key: str | None, loader: Any) -> None:
    """Step 5b: everything a resumed run needs, written atomically (under DDP, by rank 0)."""
    if ckpt_path is None or not checkpoint.is_main_process():
        return
    checkpoint.save_atomic({
        "model": checkpoint.unwrap(e.net).state_dict(), "optimizer": e.optimizer.state_dict(),
        "scheduler": e.scheduler.state_dict() if e.scheduler is not None else None,
        "scaler": e.scaler.state_dict(), "rng": checkpoint.rng_state(loader),
        "epoch": len(run.history), "history": list(run.history), "best_loss": run.best_loss,
        "bad_epochs": run.bad_epochs, "best_model": run.best_state, "stopped": run.stopped,
        "run_key": key,
    }, ckpt_path)


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
    _check_arguments(num_epochs, scheduler_step, resume, checkpoint_dir, accumulation_steps)
    device = torch.device(device) if device is not None else next(net.parameters()).device
    e = _Engine(net, device, optimizer, loss_fn or nn.CrossEntropyLoss(), scheduler,
                scheduler_step, grad_clip, accumulation_steps, channels_last)
    _setup(e, train_loader, amp, compile)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt_path is not None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    run = _start(e, ckpt_path, resume, run_key, num_epochs, train_loader)
    for hook in FIT_HOOKS:
        hook(run.history, ckpt_path.parent if ckpt_path else None, run_key)
    epochs = env.progress(range(run.start_epoch, num_epochs), "epochs", progress,
                          initial=run.start_epoch, total=num_epochs)
    sampler = getattr(train_loader, "sampler", None)
    for epoch in epochs:
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle every epoch
            sampler.set_epoch(epoch)
        row = _train_epoch(e, train_loader, run, epoch, progress, ckpt_path is not None)
        _validate(e, val_loader, row)
        run.history.append(row)
        epochs.set_postfix({k: round(v, 4) for k, v in row.items() if k.startswith(("train", "val"))})
        run.stopped = _early_stop(run, row, net, early_stopping_patience)
        _save(e, run, ckpt_path, run_key, train_loader)
        stop = run.stopped
        for callback in callbacks:
            stop = bool(callback(epoch + 1, run.history, net)) or stop
        if stop:
            break
    if run.best_state is not None and early_stopping_patience is not None:
        net.load_state_dict(run.best_state)
    return run.history


def __getattr__(name: str) -> Any:
    if name == "FIT_LOG_ENV":  # the course runner's fit log moved out of the training loop
        warnings.warn("train.FIT_LOG_ENV moved to the maintainers' runner (tools.runner); the "
                      "loop reports through train.FIT_HOOKS", DeprecationWarning, stacklevel=2)
        return "DL_HANDBOOK_FIT_LOG"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
