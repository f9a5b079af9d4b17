"""Measure what this machine can do: dense matmul throughput and memory bandwidth.

Introduced in ``notebooks/00_setup.ipynb`` ("Hardware check").

A dense ``n x n`` matrix product costs ``2 n^3`` floating-point operations, so
``TFLOP/s = 2 n^3 / seconds / 1e12``. A copy of ``B`` bytes reads ``B`` and writes ``B``, so
``GB/s = 2 B / seconds / 1e9``. Each figure is shown beside the device's nominal (datasheet)
peak where it is known, as a utilization ratio. On a CPU no peak is kept; ``cpu_features``
names the vector and matrix instruction sets the CPU reports, which decide its kernels' speed.
"""

from __future__ import annotations

import re
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from . import env

__all__ = [
    "NominalPeaks",
    "KNOWN_PEAKS",
    "nominal_peaks",
    "synchronize",
    "sync",
    "time_op",
    "matmul_tflops",
    "copy_bandwidth_gbs",
    "hardware_check",
    "CPU_FEATURES",
    "cpu_features",
    "describe_cpu",
    "onednn_kernels",
    "bf16_kernel_kind",
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


def synchronize(device: torch.device | None) -> None:
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
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
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


# The instruction sets that decide how fast a CPU multiplies matrices, by the name a learner
# meets in datasheets, with the Linux /proc/cpuinfo flags that report each.
CPU_FEATURES: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AVX512-BF16": ("avx512_bf16",),
    "AMX": ("amx_tile", "amx_int8", "amx_bf16"),
}


def cpu_features(cpuinfo: str | None = None) -> dict[str, bool]:
    """Which of ``CPU_FEATURES`` this CPU reports, read from ``cpuinfo`` (the text of Linux's
    ``/proc/cpuinfo``, read when not given). Where it cannot be read (macOS, Windows, ARM
    without those flags) every feature reads False."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            break
    return {name: bool(flags & set(names)) for name, names in CPU_FEATURES.items()}


def describe_cpu(features: dict[str, bool] | None = None) -> str:
    """The features a CPU has and lacks, in words, with the kernel level PyTorch chose, e.g.
    "AVX2, AVX-512 and VNNI; no AVX512-BF16 or AMX (PyTorch's CPU kernels: AVX512)"."""
    features = cpu_features() if features is None else features

    def words(names: list[str], joiner: str) -> str:
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {joiner} {names[-1]}"

    have = [name for name, ok in features.items() if ok]
    lack = [name for name, ok in features.items() if not ok]
    parts = [words(have, "and")] if have else ["none of " + words(lack, "or")]
    if have and lack:
        parts.append("no " + words(lack, "or"))
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{'; '.join(parts)} (PyTorch's CPU kernels: {capability})"


# --- which oneDNN kernels ran (chapter 12: what bf16 autocast runs on this CPU) ---------------
_ONEDNN_ISA: list[str] = []  # oneDNN prints its instruction-set line once per process: kept here


def _read_c_stdout(fn: Callable[[], object]) -> str:
    """What C code wrote to this process's standard output while ``fn()`` ran. The stream is
    sent to an unnamed temporary file (``tempfile.TemporaryFile``: nothing is left on disk)
    and put back afterwards, error or not."""
    import ctypes
    import os
    import sys
    import tempfile

    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    libc.fflush(None)
    saved = os.dup(1)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            fn()
            libc.fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode("utf-8", errors="replace")


def onednn_kernels(fn: Callable[[], object]) -> tuple[str, list[dict[str, object]]]:
    """Run ``fn()`` once with oneDNN's verbose mode on and return the instruction set oneDNN
    dispatches to, in its own words (e.g. "Intel AVX-512 with Intel DL Boost and bfloat16
    support"; "" when oneDNN never printed it), and every primitive it executed, in order:
    ``operation`` (convolution, matmul, reorder...), ``implementation`` (e.g.
    ``jit_bf16:avx512_core_bf16``), ``pass`` (forward_training, backward_data...), ``dtype``
    of its source and ``ms``. An operation PyTorch computed without oneDNN is not listed."""
    text = _read_c_stdout(lambda: _with_onednn_verbose(fn))
    rows: list[dict[str, object]] = []
    for line in text.splitlines():
        fields = line.split(",")
        if not fields[0].startswith("onednn_verbose"):
            continue
        if "isa:" in line and not _ONEDNN_ISA:
            _ONEDNN_ISA.append(line.split("isa:", 1)[1].strip())
        # "onednn_verbose,v1,primitive,exec,cpu,OPERATION,IMPLEMENTATION,PASS,MEMORY,...,MS"
        # (oneDNN 3); oneDNN 2 wrote "onednn_verbose,exec,cpu,..." (no "v1,primitive")
        if "exec" not in fields[:4] or "graph" in fields[:3]:
            continue
        at = fields.index("exec")
        if len(fields) < at + 7:
            continue
        source = next((m for m in fields[at + 5].split() if m.startswith("src:")), "src:?:")
        rows.append({"operation": fields[at + 2], "implementation": fields[at + 3],
                     "pass": fields[at + 4], "dtype": source.split(":")[1],
                     "ms": float(fields[-1])})
    return (_ONEDNN_ISA[0] if _ONEDNN_ISA else ""), rows


def _with_onednn_verbose(fn: Callable[[], object]) -> None:
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        fn()


def bf16_kernel_kind(implementation: str) -> str:
    """How a oneDNN kernel computes in bf16, read from its implementation name's instruction
    set (the part after the last colon): "AMX tiles" (``..._amx``), "bf16 instructions" (an
    instruction set with bf16 dot products: ``avx512_core_bf16``, ``avx2_vnni_2``,
    ``avx512_core_fp16``, ``avx10...``), "emulated" (bf16 data on an instruction set without
    them, e.g. ``jit_bf16:avx512_core``: each value is widened to fp32 to compute), or "not
    named" (a generic kernel whose name gives no instruction set, e.g. ``x64:gemm:jit``)."""
    isa = implementation.rsplit(":", 1)[-1].lower()
    if not re.match(r"(avx|amx|sse)", isa):
        return "not named"
    if "amx" in isa:
        return "AMX tiles"
    if any(tag in isa for tag in ("bf16", "fp16", "vnni_2", "avx10")):
        return "bf16 instructions"
    return "emulated"


def sync(device: torch.device | None) -> None:
    """Deprecated name of :func:`synchronize` (it read like ``colab.sync``, which means another thing)."""
    warnings.warn("hardware.sync is deprecated: use hardware.synchronize (same argument)",
                  DeprecationWarning, stacklevel=2)
    synchronize(device)
