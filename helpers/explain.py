"""Explanations with Captum, and tests of whether they can be trusted.

Taught in ``notebooks/09_explainability.ipynb``. Captum computes the attributions; this module
checks the inputs (a target class out of range, a baseline of the wrong shape, a layer name
that does not exist all get errors that say what is valid), draws them, and measures them:

* ``saliency``, ``integrated_gradients`` (optionally smoothed with ``NoiseTunnel``),
  ``grad_cam`` (``LayerGradCam`` upsampled to the input), ``occlusion``: one function per
  image-attribution family, each returning a tensor shaped like the input;
* ``text_integrated_gradients``: ``LayerIntegratedGradients`` on a transformer's embeddings
  with a ``[CLS] [PAD]... [SEP]`` baseline and the relative convergence delta;
* ``overlay`` (a heat map over an image) and ``token_html`` (coloured tokens, plain HTML that
  renders in JupyterLab and in the book);
* ``deletion_curve``: delete the most important pixels first and watch the class probability
  fall; a faithful map makes it fall faster than a random order (lower area);
* ``randomization_check``: Adebayo et al.'s sanity check, re-drawing a map after randomizing the
  model's layers from the top; a map that stays the same explains the image, not the model.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers.text import TensorClassifier

__all__ = ["check_target", "get_layer", "saliency", "integrated_gradients", "grad_cam", "occlusion",
           "text_integrated_gradients", "overlay", "token_html", "deletion_curve",
           "rank_correlation", "randomization_check"]


# --- input checks ---------------------------------------------------------------------------
def check_target(model: nn.Module, inputs: torch.Tensor, target: int | Sequence[int] | torch.Tensor,
                 forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The target class(es) as a tensor, after checking them against the model's outputs."""
    with torch.no_grad():
        n_classes = (forward or model)(inputs[:1]).shape[-1]
    return _targets(target, n_classes, len(inputs))


def _targets(target: Any, n_classes: int, n_inputs: int) -> torch.Tensor:
    t = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    if len(t) not in (1, n_inputs):
        raise ValueError(f"{len(t)} targets for {n_inputs} inputs: give one, or one per input")
    bad = t[(t < 0) | (t >= n_classes)]
    if len(bad):
        raise ValueError(f"target class {bad.tolist()} out of range: the model has {n_classes} "
                         f"classes, 0 to {n_classes - 1}")
    return t.expand(n_inputs) if len(t) == 1 else t


def _check_baseline(inputs: torch.Tensor, baseline: torch.Tensor | float | None) -> torch.Tensor | float:
    if baseline is None:
        return 0.0
    if isinstance(baseline, (int, float)):
        return float(baseline)
    if baseline.shape != inputs.shape and baseline.shape != inputs.shape[1:]:
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not fit inputs of shape "
                         f"{tuple(inputs.shape)}: give one baseline per input, one shaped like a "
                         "single input, or a number")
    return baseline.expand_as(inputs) if baseline.shape != inputs.shape else baseline


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``model.named_modules()``)."""
    layers = dict(model.named_modules())
    if name not in layers or name == "":
        convs = [n for n, m in layers.items() if isinstance(m, (nn.Conv2d, nn.Sequential)) and n]
        shown = ", ".join(convs[-12:]) + (" ..." if len(convs) > 12 else "")
        raise ValueError(f"no layer {name!r} in {type(model).__name__}; valid names include: "
                         f"{shown} (all: [n for n, _ in model.named_modules()])")
    return layers[name]


# --- image attributions ---------------------------------------------------------------------
def saliency(model: nn.Module, inputs: torch.Tensor, target: Any) -> torch.Tensor:
    """Vanilla gradients |d score / d input| (Simonyan et al. 2014)."""
    from captum.attr import Saliency

    model.eval()
    t = check_target(model, inputs, target)
    return Saliency(model).attribute(inputs.detach().clone().requires_grad_(True), target=t, abs=True)


def integrated_gradients(model: nn.Module, inputs: torch.Tensor, target: Any,
                         baseline: torch.Tensor | float | None = None, n_steps: int = 32,
                         smooth_samples: int = 0, noise_std: float = 0.15,
                         internal_batch_size: int | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Integrated Gradients (Sundararajan et al. 2017) from ``baseline`` (default: zeros).
    With ``smooth_samples > 0``, averaged over noisy copies of the input (SmoothGrad through
    ``NoiseTunnel``). Returns the attributions and, unsmoothed, the convergence delta per input
    (completeness: attributions should sum to ``f(x) - f(baseline)``)."""
    from captum.attr import IntegratedGradients, NoiseTunnel

    model.eval()
    t = check_target(model, inputs, target)
    base = _check_baseline(inputs, baseline)
    ig = IntegratedGradients(model)
    if smooth_samples:
        attr = NoiseTunnel(ig).attribute(inputs, nt_type="smoothgrad", nt_samples=smooth_samples,
                                         stdevs=noise_std, target=t, baselines=base, n_steps=n_steps,
                                         internal_batch_size=internal_batch_size)
        return attr, None
    return ig.attribute(inputs, baselines=base, target=t, n_steps=n_steps, return_convergence_delta=True,
                        internal_batch_size=internal_batch_size)


def grad_cam(model: nn.Module, inputs: torch.Tensor, target: Any, layer: str) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) at the layer called ``layer``, ReLU'd and upsampled
    (bilinear) to the input's height and width; one channel, broadcast over the input's."""
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    t = check_target(model, inputs, target)
    cam = LayerGradCam(model, get_layer(model, layer)).attribute(inputs, target=t, relu_attributions=True)
    up = LayerAttribution.interpolate(cam, tuple(inputs.shape[-2:]), interpolate_mode="bilinear")
    return up.expand_as(inputs)


def occlusion(model: nn.Module, inputs: torch.Tensor, target: Any, window: int = 8, stride: int = 4,
              baseline: float = 0.0) -> torch.Tensor:
    """Occlusion (Zeiler and Fergus 2014): the drop in the target's score when a ``window``
    square (all channels) is replaced by ``baseline``, slid by ``stride``."""
    from captum.attr import Occlusion

    model.eval()
    t = check_target(model, inputs, target)
    c = inputs.shape[1]
    return Occlusion(model).attribute(inputs, target=t, sliding_window_shapes=(c, window, window),
                                      strides=(c, stride, stride), baselines=baseline)


# --- text -----------------------------------------------------------------------------------
def text_integrated_gradients(model: nn.Module, tokenizer: Any, text: str, target: int | None = None,
                              n_steps: int = 50, max_length: int = 64
                              ) -> tuple[list[str], np.ndarray, float, int, float]:
    """``LayerIntegratedGradients`` on the embeddings of a Hugging Face classifier (``model``
    returns ``.logits``), from a baseline that keeps ``[CLS]`` and ``[SEP]`` and pads the rest.
    Returns the tokens, one score per token (summed over the embedding), the relative
    convergence delta ``|delta| / |f(x) - f(baseline)|``, the target class (the prediction
    when ``target`` is None) and its probability."""
    from captum.attr import LayerIntegratedGradients

    model.eval()
    enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True),
                           dtype=torch.bool)
    base = torch.where(special, ids[0], torch.tensor(tokenizer.pad_token_id))[None]

    forward = TensorClassifier(model)
    with torch.no_grad():  # the input and its baseline, in one batch
        logits = forward(torch.cat([ids, base]), mask.expand(2, -1))
    probs = logits[0].softmax(-1)
    t = int(probs.argmax()) if target is None else int(_targets(target, logits.shape[-1], 1)[0])
    lig = LayerIntegratedGradients(forward, model.base_model.embeddings)
    attr, delta = lig.attribute(ids, baselines=base, target=t, additional_forward_args=(mask,),
                                n_steps=n_steps, return_convergence_delta=True)
    scores = attr.sum(-1)[0].detach().numpy()
    relative = float(abs(delta.item()) / max(abs((logits[0, t] - logits[1, t]).item()), 1e-12))
    return tokenizer.convert_ids_to_tokens(ids[0]), scores, relative, t, float(probs[t])


def token_html(tokens: Sequence[str], scores: Sequence[float], title: str = "") -> str:
    """Tokens on a red (against the class) to green (for it) background, as an HTML string
    (display it with ``IPython.display.HTML``); the strongest score sets full colour."""
    scores = np.asarray(scores, dtype=float)
    if len(tokens) != len(scores):
        raise ValueError(f"{len(tokens)} tokens but {len(scores)} scores")
    scale = np.abs(scores).max() or 1.0
    spans = []
    for tok, s in zip(tokens, scores, strict=True):
        a = min(abs(s) / scale, 1.0)
        colour = f"rgba(0,150,0,{a:.2f})" if s >= 0 else f"rgba(210,0,0,{a:.2f})"
        spans.append(f'<span style="background:{colour};padding:1px 2px;margin:1px;border-radius:3px" '
                     f'title="{s:+.3f}">{html.escape(tok)}</span>')
    head = f"<b>{html.escape(title)}</b><br>" if title else ""
    return f'<div style="line-height:1.9;font-family:monospace">{head}{" ".join(spans)}</div>'


# --- drawing --------------------------------------------------------------------------------
def overlay(image: np.ndarray | torch.Tensor, attribution: np.ndarray | torch.Tensor, ax: Any = None,
            title: str = "", alpha: float = 0.55, cmap: str = "inferno") -> Any:
    """An attribution map (``[C, H, W]`` or ``[H, W]``; absolute values summed over channels)
    over its image (``[C, H, W]`` or ``[H, W, C]`` in [0, 1], or grey ``[H, W]``)."""
    import matplotlib.pyplot as plt

    img = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    att = attribution.detach().cpu().numpy() if isinstance(attribution, torch.Tensor) else np.asarray(attribution)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img.transpose(1, 2, 0)
    img = img.squeeze()
    heat = np.abs(att).sum(0) if att.ndim == 3 else np.abs(att)
    if heat.shape != img.shape[:2]:
        raise ValueError(f"attribution {heat.shape} and image {img.shape[:2]} differ in size")
    heat = heat / (heat.max() or 1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None)
    ax.imshow(heat, cmap=cmap, alpha=alpha)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return ax


# --- can the map be trusted? ----------------------------------------------------------------
@torch.no_grad()
def deletion_curve(model: nn.Module, image: torch.Tensor, attribution: torch.Tensor | None, target: int,
                   steps: int = 20, fill: float | torch.Tensor = 0.0, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Delete pixels in order of importance (``attribution`` summed over channels; ``None``: a
    random order drawn with ``seed``), ``1/steps`` of them at a time, replacing them with
    ``fill`` (a number, or an image shaped like ``image`` to take each pixel from, e.g. a
    blurred copy); returns the deleted fractions, the target's probability after each step,
    and the area under that curve (trapezoid over [0, 1]). Lower area: the map found the
    pixels the prediction depends on."""
    model.eval()
    if image.dim() != 3:
        raise ValueError(f"one image [C, H, W] at a time, got shape {tuple(image.shape)}")
    check_target(model, image[None], target)
    c, h, w = image.shape
    if attribution is None:
        order = torch.randperm(h * w, generator=torch.Generator().manual_seed(seed))
    else:
        if attribution.shape[-2:] != (h, w):
            raise ValueError(f"attribution {tuple(attribution.shape)} does not fit image {tuple(image.shape)}")
        score = attribution.abs().sum(0) if attribution.dim() == 3 else attribution.abs()
        order = torch.argsort(score.flatten(), descending=True, stable=True)
    if isinstance(fill, torch.Tensor) and fill.shape != image.shape:
        raise ValueError(f"fill {tuple(fill.shape)} is not shaped like the image {tuple(image.shape)}")
    source = fill.reshape(c, h * w) if isinstance(fill, torch.Tensor) else None
    fractions = np.linspace(0, 1, steps + 1)
    batch = image.repeat(steps + 1, 1, 1, 1).reshape(steps + 1, c, h * w)
    for i, f in enumerate(fractions):
        gone = order[: int(round(f * h * w))]
        batch[i, :, gone] = fill if source is None else source[:, gone]
    probs = model(batch.reshape(steps + 1, c, h, w)).softmax(-1)[:, target].numpy()
    return fractions, probs, float(np.trapezoid(probs, fractions))


def rank_correlation(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Spearman rank correlation of two maps' absolute values (summed over channels)."""
    from scipy.stats import spearmanr

    def flat(x: Any) -> np.ndarray:
        x = np.abs(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x))
        return (x.sum(0) if x.ndim == 3 else x).ravel()

    fa, fb = flat(a), flat(b)
    if fa.std() == 0 or fb.std() == 0:
        return 0.0  # a constant map ranks nothing
    return float(spearmanr(fa, fb).statistic)


def randomization_check(model: nn.Module, explain: Callable[[nn.Module], torch.Tensor],
                        layers: Sequence[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Cascading model-parameter randomization (Adebayo et al. 2018): re-initialize the layers
    with parameters from the top (output) down, one more at a time, on a copy of ``model``, and
    compare ``explain(copy)`` with ``explain(model)`` by rank correlation. Rows: ``randomized
    down to`` (a layer name), ``layers randomized``, ``rank correlation``. A map that explains
    the model changes (low correlation) once the weights it depends on are gone."""
    named = [(n, m) for n, m in model.named_modules()
             if n and any(True for _ in m.parameters(recurse=False))]
    if layers is not None:
        known = {n for n, _ in named}
        unknown = [n for n in layers if n not in known]
        if unknown:
            raise ValueError(f"no layer(s) {unknown} with parameters; valid: {[n for n, _ in named]}")
        named = [(n, m) for n, m in named if n in set(layers)]
    if not named:
        raise ValueError(f"{type(model).__name__} has no layer with parameters to randomize")
    reference = explain(model)
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    torch.manual_seed(seed)
    rows = []
    for k, (name, _) in enumerate(reversed(named), start=1):
        layer = modules[name]
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
        else:
            for p in layer.parameters(recurse=False):
                nn.init.normal_(p, std=0.02)
        rows.append({"randomized down to": name, "layers randomized": k,
                     "rank correlation": rank_correlation(reference, explain(randomized))})
    return pd.DataFrame(rows)
