"""Differential privacy with Opacus, and membership-inference attacks that test it.

Taught in ``notebooks/10_privacy_dp.ipynb``. Opacus does the DP-SGD (per-sample gradients,
clipping, noise, accounting); this module sets it up in one checked call and measures what an
attacker learns:

* ``dp_ready``: ``ModuleValidator.fix`` and no in-place activations;
* ``make_private``: refuses what would silently break the guarantee (a target epsilon <= 0, a
  delta >= 1/n, BatchNorm), then ``make_private_with_epsilon`` with the chosen accountant;
* ``train_private``: epochs under ``BatchMemoryManager`` (large logical batches in small
  physical ones), returning the epsilon spent;
* ``logit_confidence``: the logit-scaled confidence ``log p_y - log(1 - p_y)`` that LiRA models;
* ``loss_threshold_scores`` and ``lira`` (online or offline, per-example or fixed variance;
  ``lira_offline`` is its offline, per-example form): a membership score per example (higher:
  more likely a training member);
* ``attack_metrics`` (ROC, AUC, TPR at 1% and 0.1% FPR, from ``sklearn.metrics.roc_curve``)
  and ``tpr_at_fpr_interval`` (a bootstrap over target points).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["dp_ready", "make_private", "train_private", "logit_confidence", "loss_threshold_scores",
           "lira_offline", "lira", "tpr_at_fpr", "attack_metrics", "tpr_at_fpr_interval"]


def dp_ready(model: nn.Module) -> nn.Module:
    """``opacus.validators.ModuleValidator.fix`` (BatchNorm becomes GroupNorm), then in-place
    activations made out-of-place: Opacus' backward hooks cannot see through an in-place ReLU."""
    from opacus.validators import ModuleValidator

    model = ModuleValidator.fix(model)
    for m in model.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return model


def make_private(model: nn.Module, optimizer: torch.optim.Optimizer, loader: torch.utils.data.DataLoader,
                 target_epsilon: float, target_delta: float, epochs: int, max_grad_norm: float,
                 accountant: str = "prv", seed: int = 0) -> tuple[nn.Module, Any, Any, Any]:
    """Wrap ``model``, ``optimizer`` and ``loader`` for DP-SGD with Opacus'
    ``PrivacyEngine.make_private_with_epsilon``: the noise is chosen so that ``epochs`` epochs
    spend ``target_epsilon`` at ``target_delta`` under ``accountant`` (``"prv"`` or ``"rdp"``).
    Returns the private model, optimizer and (Poisson-sampling) loader, and the engine.

    Raises:
        ValueError: epsilon <= 0; delta outside (0, 1/n) for n training examples; a model
            Opacus cannot train privately (BatchNorm mixes examples in a batch): the message
            says to call ``opacus.validators.ModuleValidator.fix(model)`` first.
    """
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator

    if not target_epsilon > 0:
        raise ValueError(f"target epsilon must be positive, got {target_epsilon}")
    n = len(loader.dataset)
    if not 0 < target_delta < 1 / n:
        raise ValueError(f"delta must be in (0, 1/n) = (0, {1 / n:.2g}) for n = {n} examples, got "
                         f"{target_delta}: a delta of 1/n allows leaking one example outright; "
                         "use about 1/(10 n) or less")
    if epochs < 1 or max_grad_norm <= 0:
        raise ValueError(f"epochs must be >= 1 and max_grad_norm > 0, got {epochs} and {max_grad_norm}")
    problems = ModuleValidator.validate(model, strict=False)
    if problems:
        # each problem's first sentence, whole (Opacus' messages run to a paragraph)
        names = "; ".join(sorted({f"{type(p).__name__}: {str(p).splitlines()[0].split('. ')[0].rstrip('.')}"
                                  for p in problems}))
        raise ValueError(f"{type(model).__name__} cannot be trained with DP-SGD as it is ({names}). "
                         "BatchNorm mixes the examples of a batch, so one example's gradient is no "
                         "longer its own: run model = opacus.validators.ModuleValidator.fix(model) "
                         "(it swaps BatchNorm for GroupNorm) before building the optimizer")
    engine = PrivacyEngine(accountant=accountant, secure_mode=False)
    generator = torch.Generator().manual_seed(seed)
    private_model, private_opt, private_loader = engine.make_private_with_epsilon(
        module=model, optimizer=optimizer, data_loader=loader, target_epsilon=target_epsilon,
        target_delta=target_delta, epochs=epochs, max_grad_norm=max_grad_norm, noise_generator=generator)
    return private_model, private_opt, private_loader, engine


def train_private(model: nn.Module, optimizer: Any, loader: Any, engine: Any, epochs: int, delta: float,
                  max_physical_batch_size: int = 128, loss_fn: nn.Module | None = None) -> float:
    """Train for ``epochs`` with ``BatchMemoryManager`` (logical batches split into physical
    ones of at most ``max_physical_batch_size``) and return the epsilon spent at ``delta``."""
    from opacus.utils.batch_memory_manager import BatchMemoryManager

    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        with BatchMemoryManager(data_loader=loader, max_physical_batch_size=max_physical_batch_size,
                                optimizer=optimizer) as batches:
            for x, y in batches:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                optimizer.step()
    return float(engine.get_epsilon(delta))


def logit_confidence(logits: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> np.ndarray:
    """``log p_y - log(1 - p_y)`` for the true class ``y``, computed stably from logits:
    ``z_y - logsumexp(z_others)``. Roughly Gaussian across models, which LiRA relies on."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    if z.dim() != 2 or len(z) != len(y):
        raise ValueError(f"logits {tuple(z.shape)} and labels {tuple(y.shape)}: need [n, classes] and [n]")
    true = z.gather(1, y[:, None])[:, 0]
    others = z.scatter(1, y[:, None], float("-inf")).logsumexp(1)
    return (true - others).numpy()


def loss_threshold_scores(logits: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> np.ndarray:
    """The loss-threshold attack (Yeom et al. 2018): members tend to have lower loss, so the
    membership score is minus the cross-entropy of each example."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    return (-nn.functional.cross_entropy(z, y, reduction="none")).numpy()


def lira_offline(target_confidence: np.ndarray, shadow_confidence: np.ndarray, shadow_in: np.ndarray,
                 min_std: float = 1e-3) -> np.ndarray:
    """Offline LiRA (Carlini et al. 2022) with a per-example variance: ``lira(...,
    online=False, fixed_variance=False)``; kept under this name for code written against it."""
    return lira(target_confidence, shadow_confidence, shadow_in, online=False,
                fixed_variance=False, min_std=min_std)


def _gaussian(conf: np.ndarray, mask: np.ndarray, fixed_variance: bool, min_std: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-example mean and standard deviation of ``conf`` over the shadows where ``mask`` is
    True; examples with fewer than 2 such shadows get the pooled ones. ``fixed_variance``: one
    standard deviation for all examples (the residuals about each example's mean, pooled)."""
    values = np.where(mask, conf, np.nan)
    few = mask.sum(0) < 2
    with warnings.catch_warnings():  # columns with fewer than 2 shadows: replaced just below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0, ddof=1)
    mean[few], std[few] = np.nanmean(values), np.nanstd(values)
    if fixed_variance:
        residuals = (values - mean)[:, ~few]
        std = np.full(conf.shape[1], np.sqrt(np.nanmean(residuals ** 2)))
    return mean, np.maximum(std, min_std)


def lira(target_confidence: np.ndarray, shadow_confidence: np.ndarray, shadow_in: np.ndarray,
         online: bool = True, fixed_variance: bool = True, min_std: float = 1e-3) -> np.ndarray:
    """LiRA (Carlini et al. 2022): a likelihood-ratio membership score per example, from the
    example's logit-scaled confidence in shadow models that did (``in``) and did not (``out``)
    train on it. Higher means more likely a member.

    * offline (``online=False``): how far into the upper tail of the example's ``out``
      Gaussian the target's confidence lies, ``-log P(Z > s)``;
    * online: ``log N(s; in) - log N(s; out)``, the log-likelihood ratio of the two Gaussians;
    * ``fixed_variance``: one variance per Gaussian for all examples, which the paper
      recommends with few shadow models (a per-example variance from a handful is noisy).

    ``shadow_confidence`` and ``shadow_in`` are ``[shadows, examples]``; ``shadow_in`` is True
    where that shadow trained on that example. An example with fewer than 2 shadows on a side
    gets that side's pooled Gaussian instead.

    Raises:
        ValueError: fewer than 2 shadow models, or shapes that disagree.
    """
    from scipy.stats import norm

    conf = np.asarray(shadow_confidence, dtype=float)
    inside = np.asarray(shadow_in, dtype=bool)
    target = np.asarray(target_confidence, dtype=float)
    if conf.ndim != 2 or conf.shape[0] < 2:
        raise ValueError(f"LiRA needs at least 2 shadow models, got {conf.shape[0] if conf.ndim == 2 else 0} "
                         "(shadow_confidence is [shadows, examples])")
    if inside.shape != conf.shape or target.shape != conf.shape[1:]:
        raise ValueError(f"shapes disagree: shadow confidences {conf.shape}, in-mask {inside.shape}, "
                         f"target {target.shape}")
    mean_out, std_out = _gaussian(conf, ~inside, fixed_variance, min_std)
    if not online:
        return -norm.logsf(target, loc=mean_out, scale=std_out)
    mean_in, std_in = _gaussian(conf, inside, fixed_variance, min_std)
    return norm.logpdf(target, mean_in, std_in) - norm.logpdf(target, mean_out, std_out)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, at: float) -> float:
    """The highest true-positive rate whose false-positive rate is at most ``at``."""
    ok = fpr <= at
    return float(tpr[ok].max()) if ok.any() else 0.0


def attack_metrics(is_member: Sequence[bool] | np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """ROC (``fpr``, ``tpr``), AUC and TPR at 1% and 0.1% FPR of a membership score."""
    from sklearn.metrics import auc, roc_curve

    y = np.asarray(is_member, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if len(y) != len(s) or y.all() or not y.any():
        raise ValueError(f"need members and non-members with one score each; got {y.sum()} members, "
                         f"{(~y).sum()} non-members and {len(s)} scores")
    fpr, tpr, _ = roc_curve(y, s)
    return {"fpr": fpr, "tpr": tpr, "auc": float(auc(fpr, tpr)),  # the curve's area: no second sort
            "tpr@1%": tpr_at_fpr(fpr, tpr, 0.01), "tpr@0.1%": tpr_at_fpr(fpr, tpr, 0.001)}


def tpr_at_fpr_interval(is_member: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray | None = None,
                        at: float = 0.01, metric: str = "tpr", n_boot: int = 1000, seed: int = 0,
                        confidence: float = 0.95) -> dict[str, float]:
    """Bootstrap over target points (members and non-members resampled separately) of attack
    A's TPR at ``at`` FPR (``metric="auc"``: its AUC), or, given ``scores_b``, of the paired
    difference A - B on the same points. Returns ``estimate``, ``ci_low``, ``ci_high``."""
    y = np.asarray(is_member, dtype=bool)
    rng = np.random.default_rng(seed)
    members, others = np.flatnonzero(y), np.flatnonzero(~y)

    def value(idx: np.ndarray, s: np.ndarray) -> float:
        m = attack_metrics(y[idx], s[idx])
        return m["auc"] if metric == "auc" else tpr_at_fpr(m["fpr"], m["tpr"], at)

    def stat(idx: np.ndarray) -> float:
        a = value(idx, np.asarray(scores_a))
        return a if scores_b is None else a - value(idx, np.asarray(scores_b))

    full = np.arange(len(y))
    draws = [stat(np.concatenate([rng.choice(members, len(members)), rng.choice(others, len(others))]))
             for _ in range(n_boot)]
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"estimate": stat(full), "ci_low": float(low), "ci_high": float(high)}
