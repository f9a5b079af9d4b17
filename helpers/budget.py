"""Compute and cost planning: FLOPs, memory, time, money and energy, predicted before a run.

Taught in ``notebooks/14_compute_and_cost.ipynb``.

* ``count_flops``: FLOPs of any call, counted by ``torch.utils.flop_counter.FlopCounterMode``;
  ``flops_6nd``: the transformer rule, about ``6 N D`` for training on ``D`` tokens (Kaplan et
  al. 2020; EleutherAI, "Transformer Math 101").
* ``training_memory``: bytes per parameter for weights, gradients and optimizer states, by
  precision and optimizer, plus activations (``activation_bytes``, measured by autograd's
  saved-tensor hooks, chapter 12).
* ``predict_seconds``: FLOPs over (the measured matmul throughput of chapter 00 x an assumed
  model FLOPs utilization, MFU).
* ``PriceTable`` (``load_prices``), ``run_cost``: GPU-hours x an hourly price the user edits,
  kWh from the device's power, CO2 from a grid intensity the user sets.
* ``compute_optimal``: the Chinchilla split of a compute budget (about 20 tokens per parameter).
* ``peak_tflops``, ``peak_memory``: the two measurements a prediction is checked against (the
  matmul rate of chapter 00; PyTorch's memory timeline, by category).
* ``course_workloads``, ``plan``: the course's headline training runs in FLOPs, and their
  hours, cost and energy on each device of a price table.

Every function refuses nonsense (a negative budget, an MFU outside (0, 1], a price table with
a missing column) with a message naming the value and the fix.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import chapters, hardware, models, profiles, text, train
from .chapters import Workload

__all__ = ["count_flops", "flops_6nd", "BYTES_PER_VALUE", "OPTIMIZER_STATES", "MemoryEstimate",
           "training_memory", "activation_bytes", "predict_seconds", "PRICE_COLUMNS",
           "EXAMPLE_PRICES", "load_prices", "run_cost", "compute_optimal", "check_positive",
           "peak_tflops", "MemoryPeak", "peak_memory", "Workload", "encoder_parameters",
           "course_workloads", "plan"]

BYTES_PER_VALUE: Mapping[str, float] = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "int8": 1,
                                        "int4": 0.5}
# Values of optimizer state kept per trainable parameter (each in fp32).
OPTIMIZER_STATES: Mapping[str, int] = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}


def check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    """``value`` as a float, or a ValueError naming ``name`` when it is negative (or zero),
    NaN or infinite."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        need = "zero or more" if allow_zero else "more than zero"
        raise ValueError(f"{name} must be finite and {need}, got {value!r}")
    return x


# --- FLOPs --------------------------------------------------------------------------------------
def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of ``fn()`` (a forward, or a forward and backward), counted
    by PyTorch's ``FlopCounterMode`` from the matmuls and convolutions it dispatches (a
    multiply-add counts 2; element-wise operations are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def flops_6nd(n_params: int, tokens: int) -> float:
    """Training FLOPs by the rule ``6 N D``: 2 per parameter per token forward, 4 backward
    (Kaplan et al. 2020). It leaves out attention's sequence-length term and embeddings'
    lookups, so it fits large models on short sequences best."""
    return 6.0 * check_positive("n_params", n_params) * check_positive("tokens", tokens)


# --- memory -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of a training step, by what holds them."""

    weights: float
    gradients: float
    optimizer: float
    master_weights: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.master_weights + self.activations

    def table(self) -> dict[str, float]:
        """Megabytes by part, and the total."""
        return {k: v / 2**20 for k, v in {**asdict(self), "total": self.total}.items()}


def training_memory(n_params: int, precision: str = "fp32", optimizer: str = "adamw",
                    trainable: int | None = None, activations: float = 0.0) -> MemoryEstimate:
    """Memory of training ``n_params`` parameters of which ``trainable`` (all by default) get
    gradients and optimizer states. ``precision`` is the weights' and gradients' format;
    with ``bf16``/``fp16`` mixed precision an fp32 master copy of the trainable weights is kept
    too, so AdamW costs 2 + 2 + 8 + 4 = 16 bytes per parameter (fp32: 4 + 4 + 8 = 16, the
    EleutherAI figure before activations). ``activations``: bytes, measured or estimated.

    Raises:
        ValueError: an unknown precision or optimizer (the valid ones are listed), or
            trainable outside [0, n_params].
    """
    if precision not in BYTES_PER_VALUE:
        raise ValueError(f"unknown precision {precision!r}; valid: {sorted(BYTES_PER_VALUE)}")
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {sorted(OPTIMIZER_STATES)}")
    n = check_positive("n_params", n_params)
    t = n if trainable is None else check_positive("trainable", trainable, allow_zero=True)
    if t > n:
        raise ValueError(f"trainable ({trainable}) cannot exceed n_params ({n_params})")
    width = BYTES_PER_VALUE[precision]
    mixed = precision in ("bf16", "fp16")
    return MemoryEstimate(weights=n * width, gradients=t * width,
                          optimizer=t * 4 * OPTIMIZER_STATES[optimizer],
                          master_weights=t * 4 if mixed else 0.0,
                          activations=check_positive("activations", activations, allow_zero=True))


def activation_bytes(forward: Callable[[], Any], exclude: Iterable[Any] = ()) -> int:
    """Bytes autograd keeps for backward while ``forward()`` runs: the activations term of
    ``training_memory``, measured with saved-tensor hooks as ``scale.saved_activation_bytes``
    does (chapter 12), each storage once. Tensors sharing storage with ``exclude`` (pass the
    model's parameters and the input batch) are not counted: they exist before the forward
    pass and are counted as weights or data, and a batch sliced from a dataset would otherwise
    count the whole dataset's storage."""
    import torch

    skip = {t.untyped_storage().data_ptr() for t in exclude if isinstance(t, torch.Tensor)}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return sum(seen.values())


# --- time ---------------------------------------------------------------------------------------
def predict_seconds(flops: float, peak_flops_per_s: float, mfu: float) -> float:
    """Seconds for ``flops`` at ``mfu`` (model FLOPs utilization, in (0, 1]) of a measured or
    datasheet peak. Large-model training reaches about 0.3-0.5 on GPUs; small models and
    CPUs are often far lower: measure it once (chapter 14) and reuse it.

    Raises:
        ValueError: mfu outside (0, 1], or a non-positive peak.
    """
    mfu = float(mfu)
    if not (0.0 < mfu <= 1.0) or math.isnan(mfu):
        raise ValueError(f"mfu is the share of the peak a run achieves: it must be in (0, 1], "
                         f"got {mfu!r}")
    return check_positive("flops", flops, allow_zero=True) / (
        check_positive("peak_flops_per_s", peak_flops_per_s) * mfu)


# --- money and energy ---------------------------------------------------------------------------
PRICE_COLUMNS = ("device", "usd_per_hour", "watts", "peak_tflops_16bit", "date", "source")
# EXAMPLES ONLY, to be replaced by the user's own quotes: on-demand list prices seen on public
# cloud pages at the date given; TDPs and dense bf16 peaks from the NVIDIA datasheets.
EXAMPLE_PRICES = (
    ("T4 (example)", 0.35, 70, 65.0, "2026-11", "example: typical on-demand list price"),
    ("L4 (example)", 0.80, 72, 121.0, "2026-11", "example: typical on-demand list price"),
    ("A100 80GB (example)", 1.80, 400, 312.0, "2026-11", "example: typical on-demand list price"),
    ("H100 SXM (example)", 3.00, 700, 989.4, "2026-11", "example: typical on-demand list price"),
)


def load_prices(source: str | Path | Any | None = None) -> Any:
    """A price table as a DataFrame indexed by device, from a CSV path, a DataFrame, or the
    shipped ``EXAMPLE_PRICES`` (``None``), with columns ``PRICE_COLUMNS``: hourly price in USD,
    board power in watts, dense 16-bit (bf16, or fp16 on a T4) tensor-core TFLOP/s, the date of the quote and where it came from.

    Raises:
        ValueError: a missing column (named, with the full list), a negative or missing price
            or power, or a duplicate device.
    """
    import pandas as pd

    if source is None:
        table = pd.DataFrame(EXAMPLE_PRICES, columns=PRICE_COLUMNS)
    elif isinstance(source, pd.DataFrame):
        table = source.copy()
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no price table at {path}: write a CSV with the columns "
                                    f"{', '.join(PRICE_COLUMNS)}")
        table = pd.read_csv(path)
    if table.index.name == "device":
        table = table.reset_index()
    missing = [c for c in PRICE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the price table lacks the column(s) {missing}; it needs "
                         f"{list(PRICE_COLUMNS)} (date and source say where each price came from)")
    for column in ("usd_per_hour", "watts", "peak_tflops_16bit"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table.loc[values.isna() | (values < 0), "device"].tolist()
        if bad:
            raise ValueError(f"column {column!r} needs a number of zero or more for every "
                             f"device; check {bad}")
        table[column] = values.astype(float)
    if table["device"].duplicated().any():
        raise ValueError(f"devices listed twice: {table.loc[table['device'].duplicated(), 'device'].tolist()}")
    return table.set_index("device")


def run_cost(hours: float, device: str, prices: Any, grid_g_co2_per_kwh: float = 400.0,
             pue: float = 1.2) -> dict[str, float]:
    """What ``hours`` on ``device`` cost: USD from the table's hourly price; kWh from its
    board power x ``pue`` (the data centre's overhead for cooling and power delivery); kg of
    CO2 from the grid intensity, which the user sets for their region (g CO2 per kWh).

    Raises:
        ValueError: negative hours, a device not in the table (the table's are listed).
    """
    hours = check_positive("hours", hours, allow_zero=True)
    if device not in prices.index:
        raise ValueError(f"no price for {device!r}; the table has {list(prices.index)}")
    row = prices.loc[device]
    kwh = hours * row["watts"] / 1000 * check_positive("pue", pue)
    return {"hours": hours, "usd": hours * row["usd_per_hour"], "kwh": kwh,
            "kg_co2": kwh * check_positive("grid_g_co2_per_kwh", grid_g_co2_per_kwh,
                                           allow_zero=True) / 1000}


# --- compute-optimal size -----------------------------------------------------------------------
def compute_optimal(budget_flops: float, tokens_per_param: float = 20.0) -> dict[str, float]:
    """The Chinchilla split (Hoffmann et al. 2022) of a training budget ``C = 6 N D`` with
    ``D = tokens_per_param x N``: ``N = sqrt(C / (6 x tokens_per_param))``. Assumptions: a
    dense decoder-style transformer, one pass over fresh data, the 6ND cost rule, and the
    paper's fit; models meant to serve many requests are often trained far longer than
    this (smaller N, more D), because inference then costs less.

    Raises:
        ValueError: a budget or ratio that is not positive.
    """
    c = check_positive("budget_flops", budget_flops)
    k = check_positive("tokens_per_param", tokens_per_param)
    n = math.sqrt(c / (6.0 * k))
    return {"params": n, "tokens": k * n, "flops": c}


# --- the measurements a prediction is checked against -------------------------------------------
def peak_tflops(device: Any, n: int, repeats: int) -> float:
    """The machine's measured matmul rate (TFLOP/s) in the precision the course trains in there:
    ``fit``'s autocast dtype on a CUDA GPU (bf16, or fp16 before Ampere: ``train.amp_dtype``),
    fp32 elsewhere. Chapter 00's measurement, repeated (``hardware.matmul_tflops``): the
    "peak" that an MFU is a share of."""
    import torch

    device = torch.device(device)
    dtype = train.amp_dtype(device) or torch.float32
    return hardware.matmul_tflops(device, dtype, int(check_positive("n", n)),
                                  int(check_positive("repeats", repeats)))


# The memory timeline's categories, in the order torch.profiler writes them.
_TIMELINE_CATEGORIES = ("parameters", "optimizer", "inputs", "temporary", "activations",
                        "gradients", "autograd", "other")


@dataclass(frozen=True)
class MemoryPeak:
    """The most tensor memory a run held at once, and what held it at that moment (bytes)."""

    total: float
    parts: Mapping[str, float]

    def table(self) -> dict[str, float]:
        """Megabytes by part at the peak, and the total."""
        return {**{k: v / 2**20 for k, v in self.parts.items()}, "total": self.total / 2**20}


@contextlib.contextmanager
def _quiet_fd2() -> Any:
    """Silence file descriptor 2 for a moment: the profiler's C++ library (Kineto) writes
    start/stop lines, and on a machine without a GPU a harmless "gpuGetDeviceCount failed",
    straight to it. Python's own warnings go through sys.stderr and still show."""
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (some embedded interpreters)
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_memory(step: Callable[[], Any], device: Any, steps: int = 2) -> MemoryPeak:
    """Run ``step()`` ``steps`` times under ``torch.profiler`` and return the peak of the tensor
    memory it held, split into parameters, optimizer state, activations, gradients and the rest,
    from PyTorch's memory timeline (``export_memory_timeline``). Works on CPU and CUDA alike
    (on CUDA, ``torch.cuda.max_memory_allocated`` gives the same total without the split).
    Two steps: the first creates the optimizer's state, the second runs with it in place.

    Raises:
        ValueError: steps below 1.
    """
    import json
    import tempfile

    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, profile

    if int(steps) < 1:
        raise ValueError(f"steps must be 1 or more, got {steps!r}")
    device = torch.device(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with _quiet_fd2(), profile(activities=activities, profile_memory=True, record_shapes=True,
                               with_stack=True) as prof:
        for _ in range(int(steps)):
            step()
    where = f"cuda:{device.index or 0}" if device.type == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # Deprecated in favour of CUDA-only memory snapshots; on a CPU it is the only timeline.
        warnings.filterwarnings("ignore", message=".*export_memory_timeline", category=FutureWarning)
        path = Path(folder) / "timeline.json"
        prof.export_memory_timeline(str(path), device=where)
        _, sizes = json.loads(path.read_text())
    sizes = np.asarray(sizes, dtype=float)[:, 1:]  # column 0 is unused
    at = int(sizes.sum(axis=1).argmax())
    return MemoryPeak(total=float(sizes[at].sum()),
                      parts=dict(zip(_TIMELINE_CATEGORIES, map(float, sizes[at]), strict=True)))


# --- budgeting the course -----------------------------------------------------------------------
def _training_flops(net: Any, shape: tuple[int, ...]) -> float:
    """Forward-and-backward FLOPs of one example, counted on the meta device (no memory, no
    time: only shapes)."""
    import torch

    net = net.to("meta")
    x = torch.zeros((1, *shape), device="meta")
    return float(count_flops(lambda: net(x).sum().backward()))


def encoder_parameters(model: str) -> int:
    """Non-embedding parameters of a course text model (``"minilm-l6"``, the packaged
    all-MiniLM-L6-v2, or ``"bert-base-uncased"``), built from its configuration on the meta
    device: the N of 6 N D (Kaplan et al. count no embeddings)."""
    import torch
    from transformers import AutoConfig, AutoModel, BertConfig

    if model == "minilm-l6":
        config = AutoConfig.from_pretrained(text.quick_model_path())
    elif model == "bert-base-uncased":
        config = BertConfig()  # its defaults are bert-base-uncased's
    else:
        raise ValueError(f"unknown text model {model!r}; valid: 'minilm-l6', 'bert-base-uncased'")
    with torch.device("meta"):
        net = AutoModel.from_config(config)
    return sum(p.numel() for name, p in net.named_parameters() if "embeddings" not in name)


class ModelFlops:
    """Training FLOPs per example of the course's models, each counted once: CNNs on the meta
    device (``count_flops``), text models by 6 N D at their maximum length (an upper bound)."""

    def __init__(self) -> None:
        self._seen: dict[tuple, float] = {}

    def cnn(self, model: str, dataset: str) -> float:
        """``"small-cnn"`` or ``"resnet9"`` on ``"fashion-mnist"`` or ``"cifar-10"`` images."""
        if (model, dataset) not in self._seen:
            image = (3, 32, 32) if dataset == "cifar-10" else (1, 28, 28)
            net = models.ResNet9() if model == "resnet9" else models.SmallCNN(
                in_channels=image[0], image_size=image[-1])
            self._seen[model, dataset] = _training_flops(net, image)
        return self._seen[model, dataset]

    def text(self, model: str, max_length: int) -> float:
        """6 N D with N the encoder's non-embedding parameters and D ``max_length`` tokens."""
        if (model, max_length) not in self._seen:
            self._seen[model, max_length] = flops_6nd(encoder_parameters(model), max_length)
        return self._seen[model, max_length]


def course_workloads(profile: str = "full") -> list[Workload]:
    """The headline training run of every chapter under ``profile``, as each chapter declares
    it (``helpers/chapters``): what it trains, how many examples pass through it, and the FLOPs
    of each. Data loading, evaluation, per-example gradient overhead (DP-SGD) and CPU work are
    left out: hours from these are floors. Chapters without a GPU training run have 0 FLOPs."""
    flops = ModelFlops()

    def cfg(section: str) -> Any:
        return profiles.chapter_config(profile, section)

    return [c.workload(cfg, flops) if c.workload else Workload(c.stem, "no training", 0, 0.0)
            for c in chapters.REGISTRY.values()]


def plan(workloads: list[Workload], prices: Any, mfu: float, grid_g_co2_per_kwh: float = 400.0,
         pue: float = 1.2) -> Any:
    """Hours, USD, kWh and kg CO2 of every workload on every device of ``prices``
    (``load_prices``), at ``mfu`` of each device's dense 16-bit peak. A long table: one row per
    (chapter, device).

    Raises:
        ValueError: an MFU outside (0, 1], or a bad price table.
    """
    import pandas as pd

    rows = []
    for device, row in prices.iterrows():
        for w in workloads:
            seconds = predict_seconds(w.flops, row["peak_tflops_16bit"] * 1e12, mfu)
            rows.append({"chapter": w.chapter, "device": device, "what": w.what,
                         "pflops": w.flops / 1e15,
                         **run_cost(seconds / 3600, device, prices, grid_g_co2_per_kwh, pue)})
    return pd.DataFrame(rows)
