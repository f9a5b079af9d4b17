"""Training a small GPT: random windows of the token stream, AdamW, warm-up then cosine decay,
gradient clipping; and the chapter's run, checkpointed under its run key.

Taught in ``notebooks/15a_small_gpt.ipynb`` ("Training"); ``notebooks/15b_pretrained_llm.ipynb``
gets the same model back with ``small_gpt`` (the finished run is reused, not trained again).

* ``lr_at``: the learning rate at a step: linear warm-up to ``peak``, then a cosine down to
  ``min_ratio x peak`` at the last step.
* ``windows``: ``batch`` random windows of ``block + 1`` tokens; the input is a window's first
  ``block`` tokens, the target the same shifted by one.
* ``train_lm``: the loop, short enough to read in one screen.
* ``small_gpt``: one training run of the chapter (a ``GPTConfig`` at a token budget), saved in
  a folder named by ``train.run_key``; run again, it loads instead of training.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict

import torch
import torch.nn.functional as F

from helpers import env, paths, train

from .model import GPT, GPTConfig

__all__ = ["lr_at", "windows", "train_lm", "small_gpt"]


def lr_at(step: int, total: int, peak: float, warmup: int, min_ratio: float = 0.1) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio * peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def windows(stream: torch.Tensor, batch: int, block: int, generator: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random windows of the stream: inputs ``[batch, block]`` and targets, the same
    tokens shifted one to the left."""
    starts = torch.randint(0, len(stream) - block - 1, (batch,), generator=generator)
    rows = torch.stack([stream[s:s + block + 1] for s in starts.tolist()])
    return rows[:, :-1], rows[:, 1:]


def _optimizer(model: GPT, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with decay on the weight matrices only (not on norms, biases... ), betas as GPT-3."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))


def train_lm(model: GPT, stream: torch.Tensor, steps: int, batch_size: int, lr: float,
             warmup: int, seed: int, grad_clip: float = 1.0, weight_decay: float = 0.1,
             log_every: int = 50) -> list[dict[str, float]]:
    """Train ``model`` for ``steps`` steps on random windows of ``stream``; returns one row per
    ``log_every`` steps (step, learning rate, mean training loss since the last row, seconds)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = _optimizer(model, lr, weight_decay)
    block, device = model.cfg.block_size, next(model.parameters()).device
    history, losses, started = [], [], time.perf_counter()
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        x, y = (t.to(device) for t in windows(stream, batch_size, block, generator))
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history.append({"step": step + 1, "lr": optimizer.param_groups[0]["lr"],
                            "train_loss": sum(losses) / len(losses),
                            "seconds": time.perf_counter() - started})
            losses = []
    model.eval()
    return history


def small_gpt(cfg: GPTConfig, stream: torch.Tensor, tokens: int, batch_size: int, lr: float,
              seed: int, warmup_fraction: float = 0.1, device: str | torch.device = "cpu"
              ) -> tuple[GPT, list[dict[str, float]]]:
    """The chapter's training run: a ``GPT(cfg)`` trained on ``tokens`` tokens of ``stream``
    (``tokens // (batch_size x block_size)`` steps), checkpointed in a folder named by its run
    key (configuration, data, seed and code). A finished run is loaded, not trained again."""
    steps = max(1, tokens // (batch_size * cfg.block_size))
    run = {"model": asdict(cfg), "tokens": tokens, "batch_size": batch_size, "lr": lr,
           "seed": seed, "warmup_fraction": warmup_fraction, "steps": steps,
           "data": train.fingerprint(stream)}
    key = train.run_key(run, code=[sys.modules[GPT.__module__], sys.modules[__name__]])
    path = paths.checkpoint_dir("lm", key) / "model.pt"
    env.seed_everything(seed)
    model = GPT(cfg).to(device)
    if path.is_file():
        saved = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        model.eval()
        return model, saved["history"]
    history = train_lm(model, stream, steps, batch_size, lr, max(1, int(warmup_fraction * steps)), seed)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "history": history, "run_key": key}, tmp)
    os.replace(tmp, path)  # a reader sees no file or the whole file, never half of one
    return model, history
