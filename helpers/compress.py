"""Measuring compression: size, latency, sparsity, distillation and export.

Taught in ``notebooks/08_compression.ipynb``, which prunes, quantizes, distills and exports
chapter 03's CNN and chapter 04's fine-tuned text model, and measures every variant side by
side in one run. The algorithms come from the libraries (``torch.nn.utils.prune``,
``torch-pruning``, ``torchao``, ONNX Runtime); this module is the glue that measures them:

* ``size_mb``: bytes on disk of a model's saved weights (or of any file);
* ``measure_latency``: warm-up, fixed threads, p50/p95 at batch 1 and throughput at a larger
  batch (``torch.utils.benchmark``); ``latency_rounds`` for variants timed in turn;
  ``measure_variant`` for a table row with accuracy and its paired drop;
* ``sparsity_table``, ``prune_global``, ``prune_layer``, ``remove_masks``, ``sensitivity_scan``:
  magnitude pruning and its accounting;
* ``distillation_loss``: Hinton et al.'s loss, softened by a temperature;
* ``export_program``, ``export_onnx``, ``OrtModel``, ``quantize_static_onnx``: ``torch.export``,
  ONNX export and ONNX Runtime, with errors that name the unsupported op and the fallback.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune

from . import evaluate, hardware

__all__ = ["size_mb", "Latency", "measure_latency", "latency_rounds", "measure_variant", "cpu_features",
           "check_amount", "prunable", "sparsity_table", "smallest_mask",
           "prune_global", "prune_layer", "remove_masks", "sensitivity_scan", "distillation_loss",
           "ExportError", "export_program", "export_onnx", "OrtModel", "quantize_static_onnx"]

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)


# --- size ---------------------------------------------------------------------------------
def size_mb(obj: nn.Module | str | Path) -> float:
    """Megabytes (10^6 bytes) on disk: a file's size, or a module's ``state_dict`` as
    ``torch.save`` writes it (weights and buffers, so pruning masks count too)."""
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"no file at {path}: export or save the model first")
        return path.stat().st_size / 1e6
    if not isinstance(obj, nn.Module):
        raise TypeError(f"size_mb takes an nn.Module or a file path, got {type(obj).__name__}")
    buffer = io.BytesIO()
    torch.save(obj.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


# --- latency ------------------------------------------------------------------------------
@dataclass
class Latency:
    """One variant's timing: per-call p50/p95 at batch 1 (ms) and throughput at ``batch``."""

    p50_ms: float
    p95_ms: float
    batch: int
    batch_ms: float
    throughput: float  # items per second at ``batch``
    threads: int
    calls: int  # timed calls at the larger batch

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@contextlib.contextmanager
def _timing(threads: int | None) -> Iterator[int]:
    """Inference mode with PyTorch's intra-op threads fixed at ``threads`` (default: as they
    are); the previous setting comes back afterwards. Yields the thread count."""
    previous = torch.get_num_threads()
    threads = threads or previous
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            yield threads
    finally:
        torch.set_num_threads(previous)


def _once(fn: Callable[..., Any], inputs: Sequence[Any], device: torch.device | None) -> float:
    """Seconds for one call of ``fn(*inputs)``, timed by ``hardware.time_op`` (no warm-up)."""
    return hardware.time_op(functools.partial(fn, *inputs), device, repeats=1, warmup=0)


def _mean_ms(fn: Callable[..., Any], inputs: Sequence[Any], threads: int, calls: int) -> float:
    """Mean milliseconds per call over ``calls`` calls (``torch.utils.benchmark.Timer``)."""
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="fn(*x)", globals={"fn": fn, "x": inputs}, num_threads=threads)
    return timer.timeit(calls).mean * 1e3


def measure_latency(fn: Callable[..., Any], single: Sequence[Any], batch: Sequence[Any], *,
                    warmup: int = 3, repeats: int = 30, threads: int | None = None,
                    device: torch.device | None = None, min_run_s: float = 0.5) -> Latency:
    """Time ``fn(*single)`` (batch 1) and ``fn(*batch)`` (a full batch) under inference mode.

    ``warmup`` untimed calls of each come first (allocation, kernel choice, lazy
    initialization), after one timed call at the full batch; ``threads`` fixes PyTorch's
    intra-op threads for the measurement (ONNX Runtime sets its own when the session is made:
    ``OrtModel(threads=...)``). Batch 1 gives p50 and p95 over ``repeats`` calls, each
    synchronized on a GPU; the full batch gives the mean time per call from
    ``torch.utils.benchmark.Timer`` over about ``min_run_s`` seconds, and items per second.
    A variant whose first full-batch call already exceeds ``min_run_s`` is not warmed up
    further: that call is its batch figure (``calls`` = 1) and batch 1 gets ``repeats // 6``
    calls (at least 3), so one slow kernel cannot stall a notebook.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    n = _batch_size(batch)
    with _timing(threads) as threads:
        first = _once(fn, batch, device)  # the first warm-up call, timed to size the rest
        slow = first > min_run_s  # e.g. an int8 kernel emulated on a CPU without VNNI
        for _ in range(0 if slow else warmup):
            fn(*batch)
            fn(*single)
        times = [_once(fn, single, device) for _ in range(max(3, repeats // 6) if slow else repeats)]
        if slow:  # one call already takes longer than the whole budget: it is the measurement
            calls, batch_ms = 1, first * 1e3
        else:
            calls = max(1, int(min_run_s / max(first, 1e-9)))
            batch_ms = _mean_ms(fn, batch, threads, calls)
    p50, p95 = np.percentile(times, [50, 95]) * 1e3
    return Latency(float(p50), float(p95), n, batch_ms, n / (batch_ms / 1e3), threads, calls)


def latency_rounds(variants: Mapping[str, tuple[Callable[..., Any], Sequence[Any]]], rounds: int = 5,
                   min_run_s: float = 0.2, threads: int | None = None,
                   device: torch.device | None = None) -> pd.DataFrame:
    """Side-by-side timing: in each of ``rounds`` rounds, every variant ``name -> (fn, inputs)``
    runs for about ``min_run_s`` (``torch.utils.benchmark``), in turn, so that a slow spell of
    the machine hits all variants alike. Rows ``config`` (the name), ``seed`` (the round) and
    ``ms`` (mean per call): ready for ``experiment.compare(..., "ms", higher_is_better=False)``."""
    if rounds < 2:
        raise ValueError(f"a paired comparison needs at least 2 rounds, got {rounds}")
    with _timing(threads) as threads:
        calls = {}
        for name, (fn, inputs) in variants.items():
            fn(*inputs)  # warm-up; the second call, timed, sizes the rounds
            calls[name] = max(1, int(min_run_s / max(_once(fn, inputs, device), 1e-9)))
        rows = [{"config": name, "seed": r, "ms": _mean_ms(fn, inputs, threads, calls[name])}
                for r in range(rounds) for name, (fn, inputs) in variants.items()]
    return pd.DataFrame(rows)


def measure_variant(fn: Callable[..., Any], single: Sequence[Any], batch: Sequence[Any], size: float,
                    score: Callable[[Callable[..., Any]], np.ndarray], y: np.ndarray,
                    base: np.ndarray | None = None, max_eval_s: float = float("inf"),
                    n_boot: int = 1000, seed: int = 0, threads: int | None = None,
                    device: torch.device | None = None) -> tuple[dict[str, float], np.ndarray | None]:
    """One row of a compression table: ``measure_latency``, then test accuracy with a 95%
    bootstrap interval (``score(fn)`` gives class probabilities for the labels ``y``) and, given
    ``base`` (the reference model's probabilities on the same rows), the paired accuracy drop
    ``base - this`` with its interval. A variant whose scoring would take longer than
    ``max_eval_s`` seconds at its measured speed is timed only (no accuracy columns).
    Returns the row and the probabilities (``None`` when not scored)."""
    lat = measure_latency(fn, single, batch, warmup=2, repeats=20, min_run_s=0.3, threads=threads,
                          device=device)
    row: dict[str, float] = {"size MB": size, **lat.as_dict()}
    if lat.batch_ms / 1e3 * len(y) / lat.batch > max_eval_s:
        return row, None
    probs = score(fn)
    acc = evaluate.bootstrap_metrics(y, probs, ["accuracy"], n_boot=n_boot, seed=seed).loc["accuracy"]
    row |= {"accuracy": acc["estimate"], "acc low": acc["ci_low"], "acc high": acc["ci_high"]}
    if base is not None:
        drop = evaluate.paired_bootstrap(y, base, probs, "accuracy", n_boot=n_boot, seed=seed)
        row |= {"drop": drop.diff, "drop low": drop.ci_low, "drop high": drop.ci_high}
    return row, probs


# chapter 08's names for the features ``hardware.cpu_features`` reads (one parser, in hardware)
_CPU_KEYS = {"avx2": "AVX2", "avx512f": "AVX-512", "vnni": "VNNI", "avx512_bf16": "AVX512-BF16", "amx": "AMX"}


def cpu_features() -> dict[str, bool]:
    """Which int8 and bf16 instruction sets this CPU reports, under chapter 08's key names
    (``hardware.cpu_features`` reads them; systems without ``/proc/cpuinfo`` report none):
    int8 matrix kernels are fast only with VNNI or AMX."""
    found = hardware.cpu_features()
    return {key: found[name] for key, name in _CPU_KEYS.items()}


def _batch_size(inputs: Sequence[Any]) -> int:
    if not inputs:
        raise ValueError("give the model's inputs as a tuple, e.g. (images,) or (ids, mask)")
    first = inputs[0]
    return int(first.shape[0]) if hasattr(first, "shape") else len(first)


# --- pruning ------------------------------------------------------------------------------
def check_amount(amount: float) -> float:
    """A sparsity must lie in [0, 1): the share of weights to remove."""
    if not isinstance(amount, (int, float)) or not np.isfinite(amount) or not 0 <= amount < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {amount!r}: 0.9 removes 90% of the "
                         "weights; 1 would remove all of them")
    return float(amount)


def prunable(net: nn.Module) -> dict[str, nn.Module]:
    """The layers magnitude pruning works on: convolutions and linear layers, by name."""
    return {name: m for name, m in net.named_modules() if isinstance(m, PRUNABLE)}


def sparsity_table(net: nn.Module) -> pd.DataFrame:
    """Per prunable layer: weights, zeros among them, sparsity, and ``masked``: the weights a
    pruning mask removes (0 without a mask); a last ``total`` row. ``zeros`` reads
    ``module.weight``, which is the masked weight while a mask is attached."""
    rows = []
    for name, m in prunable(net).items():
        w = m.weight.detach()
        mask = getattr(m, "weight_mask", None)
        rows.append({"layer": name, "kind": type(m).__name__, "weights": w.numel(),
                     "zeros": int((w == 0).sum()),
                     "masked": int((mask == 0).sum()) if mask is not None else 0})
    if not rows:
        raise ValueError(f"{type(net).__name__} has no Conv or Linear layer to prune")
    table = pd.DataFrame(rows)
    total = {"layer": "total", "kind": ""} | {c: table[c].sum() for c in ("weights", "zeros", "masked")}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["sparsity"] = table["zeros"] / table["weights"]
    return table.set_index("layer")


def smallest_mask(scores: torch.Tensor, n: int) -> torch.Tensor:
    """A 0/1 mask shaped like ``scores`` with 0 at its ``n`` smallest entries: rank by score,
    ties broken by position (a stable sort), so exactly ``n`` entries are masked whatever the
    values, and the same ones on any machine for the same scores."""
    if not 0 <= n <= scores.numel():
        raise ValueError(f"cannot mask {n} of {scores.numel()} entries")
    mask = torch.ones(scores.numel(), dtype=scores.dtype, device=scores.device)
    mask[torch.argsort(scores.flatten(), stable=True)[:n]] = 0
    return mask.view_as(scores)


def prune_global(net: nn.Module, amount: float, layers: Sequence[str] | None = None) -> nn.Module:
    """Zero the ``amount`` smallest-magnitude weights across ``layers`` (default: every
    prunable layer), ranked together as ``prune.global_unstructured`` does: exactly
    ``round(amount * total)`` weights, ties broken by position (``smallest_mask``). Masks stay
    attached (``weight_orig`` and ``weight_mask``, ``prune.custom_from_mask``) until
    ``remove_masks``."""
    check_amount(amount)
    modules = prunable(net)
    names = list(modules) if layers is None else list(layers)
    unknown = sorted(set(names) - set(modules))
    if unknown:
        raise ValueError(f"no prunable layer(s) {unknown}; prunable: {sorted(modules)}")
    weights = [modules[n].weight.detach() for n in names]
    scores = torch.cat([w.abs().flatten() for w in weights])
    mask = smallest_mask(scores, round(amount * scores.numel()))
    for name, piece in zip(names, mask.split([w.numel() for w in weights]), strict=True):
        prune.custom_from_mask(modules[name], "weight", piece.view_as(modules[name].weight))
    return net


def prune_layer(net: nn.Module, layer: str, amount: float) -> nn.Module:
    """Zero exactly ``round(amount * n)`` of one layer's ``n`` weights, the smallest in
    magnitude, ties broken by position (the count ``prune.l1_unstructured`` removes)."""
    return prune_global(net, amount, [layer])


def remove_masks(net: nn.Module) -> nn.Module:
    """Make pruning permanent: fold each mask into its weight and drop the mask buffers."""
    for m in prunable(net).values():
        if prune.is_pruned(m) and hasattr(m, "weight_mask"):
            prune.remove(m, "weight")
    return net


def sensitivity_scan(net: nn.Module, score: Callable[[nn.Module], float], amounts: Sequence[float],
                     layers: Sequence[str] | None = None) -> pd.DataFrame:
    """Prune one layer at a time, at each amount, on a copy of ``net``, and ``score`` it
    (validation accuracy, say). Rows: layer, amount, score; amount 0 is the unpruned net."""
    for a in amounts:
        check_amount(a)
    names = list(prunable(net)) if layers is None else list(layers)
    base = score(net)
    rows = [{"layer": n, "amount": 0.0, "score": base} for n in names]
    for n in names:
        for a in amounts:
            if a == 0:
                continue
            rows.append({"layer": n, "amount": float(a), "score": score(prune_layer(copy.deepcopy(net), n, a))})
    return pd.DataFrame(rows)


# --- distillation -------------------------------------------------------------------------
def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, temperature: float = 4.0, alpha: float = 0.9
                      ) -> torch.Tensor:
    """Knowledge distillation (Hinton, Vinyals and Dean, 2015):
    ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``, where
    ``_T`` is a softmax at temperature ``T``. The ``T^2`` keeps the soft term's gradients on
    the scale of the hard one. ``alpha=0`` is plain cross-entropy: the student alone."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha weighs the teacher's term and must be in [0, 1], got {alpha}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: same batch, same classes")
    hard = nn.functional.cross_entropy(student_logits, labels)
    if alpha == 0:
        return hard
    t = float(temperature)
    soft = nn.functional.kl_div(nn.functional.log_softmax(student_logits / t, dim=-1),
                                nn.functional.log_softmax(teacher_logits.detach() / t, dim=-1),
                                reduction="batchmean", log_target=True) * t * t
    return alpha * soft + (1 - alpha) * hard


# --- export -------------------------------------------------------------------------------
class ExportError(RuntimeError):
    """A model could not be exported; the message names the op or line and the fallback.
    ``torch_output`` keeps what torch printed while it failed (its partial graph), if anything."""

    torch_output: str = ""


_FALLBACK = ("Fallbacks: keep the PyTorch model (eager, or the torch.export program if that step "
             "worked: torch.export.save) for serving; rewrite the part in supported ops; or give "
             "torch.onnx.export a custom_translation_table for the op.")


def _dynamic_shapes(args: Sequence[Any], names: Sequence[str],
                    dynamic: Mapping[str, Mapping[int, str]] | None) -> Any:
    if not dynamic:
        return None
    unknown = sorted(set(dynamic) - set(names))
    if unknown:
        raise ValueError(f"dynamic axes for unknown input(s) {unknown}; inputs: {list(names)}")
    dims: dict[str, torch.export.Dim] = {}
    return tuple({axis: dims.setdefault(label, torch.export.Dim.DYNAMIC)
                  for axis, label in dynamic.get(name, {}).items()} or None
                 for name in names)


def export_program(model: nn.Module, args: tuple[Any, ...], input_names: Sequence[str],
                   dynamic: Mapping[str, Mapping[int, str]] | None = None
                   ) -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``model`` in eval mode on example ``args``. ``dynamic`` maps
    an input name to its dynamic axes, e.g. ``{"input_ids": {0: "batch", 1: "length"}}``.

    Raises:
        ExportError: naming the line that could not be traced (data-dependent control flow,
            an unsupported Python construct) and the fallback.
    """
    if len(args) != len(input_names):
        raise ValueError(f"{len(args)} example inputs but {len(input_names)} input names")
    shapes = _dynamic_shapes(args, input_names, dynamic)
    model.eval()
    # On failure torch prints the partial graph to stderr and logs a symbolic-shapes warning,
    # both naming local paths; the ExportError below says what they say, once.
    dump, quiet = io.StringIO(), logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(dump):
            return torch.export.export(model, tuple(args), dynamic_shapes=shapes)
    except Exception as err:  # torch raises many types here; name the cause, keep the chain
        where = re.search(r'The following call raised this error:\s*\n\s*File "([^"]+)"(.*\n.*)', str(err))
        detail = (f'File "{Path(where.group(1)).name}"{where.group(2)}'.strip().replace("\n", ": ")
                  if where else str(err).splitlines()[0])
        error = ExportError(f"torch.export could not trace {type(model).__name__} "
                            f"({type(err).__name__}): {detail}. {_FALLBACK}")
        error.torch_output = dump.getvalue()  # torch's partial graph, for debugging
        raise error from err
    finally:
        quiet.setLevel(level)


def _unsupported_op(message: str) -> str | None:
    found = re.search(r"op='([^']+)', overload='([^']+)'", message)
    if found:
        return f"{found.group(1)}.{found.group(2)}"
    found = re.search(r"target=torch\.ops\.([\w.]+)", message)
    return found.group(1) if found else None


def export_onnx(model: nn.Module | torch.export.ExportedProgram, args: tuple[Any, ...],
                path: str | Path, input_names: Sequence[str], output_names: Sequence[str] = ("logits",),
                dynamic: Mapping[str, Mapping[int, str]] | None = None) -> Path:
    """Export to ONNX with the dynamo exporter (``torch.onnx.export(dynamo=True)``) and save
    to ``path``. Give a module (it goes through ``export_program`` first) or a program.

    Raises:
        ExportError: naming the op with no ONNX translation (or the line torch.export could
            not trace) and the fallback.
    """
    program = model if isinstance(model, torch.export.ExportedProgram) else \
        export_program(model, args, input_names, dynamic)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        onnx_program = torch.onnx.export(program, tuple(args), input_names=list(input_names),
                                         output_names=list(output_names), dynamo=True, verbose=False)
    except Exception as err:
        op = _unsupported_op(str(err))
        what = f"no ONNX translation for the op {op}" if op else str(err).splitlines()[0]
        raise ExportError(f"ONNX export failed: {what}. {_FALLBACK}") from err
    onnx_program.save(str(path))
    return path


class OrtModel:
    """An ONNX Runtime inference session with fixed threads: ``model(*inputs)`` returns the
    first output as a NumPy array; torch tensors are converted. ``size_mb`` is the file's."""

    def __init__(self, path: str | Path, threads: int | None = None,
                 providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX model at {self.path}: run export_onnx first")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        available = ort.get_available_providers()
        providers = list(providers) if providers else [p for p in (
            "CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        self.inputs = [(i.name, i.shape) for i in self.session.get_inputs()]
        self.input_names = [name for name, _ in self.inputs]

    def __call__(self, *inputs: Any) -> np.ndarray:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.path.name} takes {len(self.input_names)} inputs "
                             f"{self.input_names}, got {len(inputs)}")
        feed = {name: (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x))
                for name, x in zip(self.input_names, inputs, strict=True)}
        return self.session.run(None, feed)[0]

    @property
    def size_mb(self) -> float:
        return size_mb(self.path)


def quantize_static_onnx(src: str | Path, dst: str | Path, calibration: np.ndarray | torch.Tensor,
                         batch_size: int = 64, per_channel: bool = True) -> Path:
    """Static int8 quantization of a one-input ONNX model (ONNX Runtime, QDQ format): the
    activations' ranges come from running ``calibration`` (inputs shaped like the model's)
    through it. Returns ``dst``.

    Raises:
        ValueError: calibration data whose shape does not fit the model's input, or none.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = OrtModel(src, threads=1)
    if len(model.inputs) != 1:
        raise ValueError(f"quantize_static_onnx handles one-input models; {Path(src).name} has "
                         f"{model.input_names}")
    name, shape = model.inputs[0]
    data = calibration.detach().cpu().numpy() if isinstance(calibration, torch.Tensor) else np.asarray(calibration)
    fixed = [(i, d) for i, d in enumerate(shape) if isinstance(d, int)]
    if len(data) == 0 or data.ndim != len(shape) or any(data.shape[i] != d for i, d in fixed):
        raise ValueError(f"calibration data of shape {data.shape} does not fit the input {name!r} of "
                         f"shape {shape} (strings are dynamic axes): give a non-empty batch of "
                         "inputs prepared exactly as for inference")
    data = data.astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(data[i:i + batch_size] for i in range(0, len(data), batch_size))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    dst = Path(dst)
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=per_channel)
    return dst
