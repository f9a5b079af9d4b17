"""Measure what this machine can do: dense matmul throughput and memory bandwidth.

Introduced in ``notebooks/00_setup.ipynb`` ("Hardware check").

A dense ``n x n`` matrix product costs ``2 n^3`` floating-point operations, so
``TFLOP/s = 2 n^3 / seconds / 1e12``. A copy of ``B`` bytes reads ``B`` and writes ``B``, so
``GB/s = 2 B / seconds / 1e9``. Each figure is shown beside the device's nominal (datasheet)
peak where it is known, as a utilization ratio.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import env

__all__ = [
    "NominalPeaks",
    "KNOWN_PEAKS",
    "nominal_peaks",
    "sync",
    "time_op",
    "matmul_tflops",
    "copy_bandwidth_gbs",
    "hardware_check",
]


@dataclass(frozen=True)
class NominalPeaks:
    """Datasheet figures: dense (not 2:4-sparse) TFLOP/s and memory bandwidth in GB/s.

    ``None`` means the device has no such unit (e.g. no TF32 before Ampere).
    """

    fp32: float | None
    tf32: float | None
    bf16: float | None
    bandwidth_gbs: float | None


# NVIDIA datasheets, dense tensor-core figures (the datasheets print 2:4-sparse ones too,
# at twice these). Patterns are matched against torch.cuda.get_device_name().
KNOWN_PEAKS: dict[str, NominalPeaks] = {
    r"H200": NominalPeaks(fp32=67.0, tf32=494.7, bf16=989.4, bandwidth_gbs=4800.0),
    r"H100.*(PCIe)": NominalPeaks(fp32=51.2, tf32=378.0, bf16=756.0, bandwidth_gbs=2000.0),
    r"H100.*(SXM|HBM3)": NominalPeaks(fp32=67.0, tf32=494.7, bf16=989.4, bandwidth_gbs=3350.0),
    r"A100.*80GB": NominalPeaks(fp32=19.5, tf32=156.0, bf16=312.0, bandwidth_gbs=2039.0),
    r"A100": NominalPeaks(fp32=19.5, tf32=156.0, bf16=312.0, bandwidth_gbs=1555.0),
    r"\bL4\b": NominalPeaks(fp32=30.3, tf32=60.0, bf16=121.0, bandwidth_gbs=300.0),
    r"\bT4\b": NominalPeaks(fp32=8.1, tf32=None, bf16=None, bandwidth_gbs=320.0),
    r"V100": NominalPeaks(fp32=15.7, tf32=None, bf16=None, bandwidth_gbs=900.0),
}


def nominal_peaks(device_name: str) -> NominalPeaks | None:
    """The datasheet peaks for a device name, or ``None`` when it is not in the table."""
    for pattern, peaks in KNOWN_PEAKS.items():
        if re.search(pattern, device_name):
            return peaks
    return None


def sync(device: torch.device | None) -> None:
    """Wait for queued CUDA or MPS work, so that a timer reads its end; no-op on a CPU."""
    if device is None:
        return
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_op(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds, synchronizing the device around each call.

    The median ignores the odd slow call (another process, a clock change); the warm-up
    calls pay one-off costs (kernel selection, memory allocation) before timing starts.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_tflops(
    device: torch.device, dtype: torch.dtype, n: int, repeats: int, tf32: bool = False
) -> float:
    """Measured dense matmul throughput of ``n x n`` products, in TFLOP/s.

    ``tf32=True`` lets float32 products use TF32 tensor cores (``"high"`` precision);
    the previous setting is restored afterwards.
    """
    if n < 1:
        raise ValueError(f"matrix size n must be positive, got {n}")
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        seconds = time_op(lambda: torch.matmul(a, b, out=out), device, repeats)
    finally:
        torch.set_float32_matmul_precision(previous)
    return 2 * n**3 / seconds / 1e12


def copy_bandwidth_gbs(device: torch.device, mib: int, repeats: int) -> float:
    """Measured memory bandwidth of a device-to-device copy of ``mib`` MiB, in GB/s."""
    if mib < 1:
        raise ValueError(f"buffer size must be at least 1 MiB, got {mib}")
    nbytes = mib * 2**20
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    seconds = time_op(lambda: dst.copy_(src), device, repeats)
    return 2 * nbytes / seconds / 1e9  # one read plus one write per byte


def hardware_check(
    device: torch.device,
    matmul_size: int,
    matmul_repeats: int,
    bandwidth_mib: int,
    bandwidth_repeats: int,
) -> list[dict[str, object]]:
    """Measure fp32 matmul (plus TF32 and bf16 on a capable GPU) and copy bandwidth.

    Returns one row per measurement with the measured value, the nominal peak (``None`` if
    unknown) and the utilization ``measured / peak`` (``None`` if the peak is unknown).
    """
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    peaks = nominal_peaks(name) if device.type == "cuda" else None
    plan: list[tuple[str, str, Callable[[], float], float | None]] = [
        ("matmul fp32", "TFLOP/s",
         lambda: matmul_tflops(device, torch.float32, matmul_size, matmul_repeats),
         peaks.fp32 if peaks else None),
    ]
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        if major >= 8:  # TF32 and bf16 tensor cores arrived with Ampere (sm_80)
            plan.append(("matmul tf32", "TFLOP/s",
                         lambda: matmul_tflops(device, torch.float32, matmul_size,
                                               matmul_repeats, tf32=True),
                         peaks.tf32 if peaks else None))
            plan.append(("matmul bf16", "TFLOP/s",
                         lambda: matmul_tflops(device, torch.bfloat16, matmul_size,
                                               matmul_repeats),
                         peaks.bf16 if peaks else None))
    plan.append(("copy bandwidth", "GB/s",
                 lambda: copy_bandwidth_gbs(device, bandwidth_mib, bandwidth_repeats),
                 peaks.bandwidth_gbs if peaks else None))

    rows: list[dict[str, object]] = []
    for label, unit, measure, peak in env.progress(plan, "hardware check", leave=False):
        value = measure()
        rows.append({
            "measurement": label,
            "unit": unit,
            "measured": value,
            "nominal peak": peak,
            "utilization": value / peak if peak else None,
        })
    return rows
