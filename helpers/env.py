"""Device choice, seeding and an environment report.

Introduced in ``notebooks/00_setup.ipynb`` ("Seeds and determinism", "Choosing a device",
"The environment report").
"""

from __future__ import annotations

import os
import platform
import random
import sys
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .profiles import get_profile

__all__ = ["pick_device", "seed_everything", "in_colab", "environment_report", "progress"]

_DEVICE_ORDER = ("cuda", "mps", "cpu")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return kind == "cpu"


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """The best device here: CUDA, then Apple MPS, then the CPU.

    Args:
        prefer: ask for one kind (``"cuda"``, ``"mps"`` or ``"cpu"``, or a ``torch.device``
            such as ``cuda:1``) instead of the best.

    Raises:
        ValueError: ``prefer`` is not a known kind, or that kind is not available here.
    """
    if prefer is None:
        return torch.device(next(k for k in _DEVICE_ORDER if _available(k)))
    if isinstance(prefer, torch.device) or ":" in str(prefer):
        wanted = torch.device(prefer)
        pick_device(wanted.type)  # the same checks, and errors, for its kind
        return wanted
    if prefer not in _DEVICE_ORDER:
        raise ValueError(f"unknown device kind {prefer!r}; choose one of {list(_DEVICE_ORDER)}")
    if not _available(prefer):
        here = [k for k in _DEVICE_ORDER if _available(k)]
        raise ValueError(
            f"device {prefer!r} is not available on this machine (available: {here}); "
            "pass prefer=None to take the best one"
        )
    return torch.device(prefer)


def seed_everything(seed: int = 0, deterministic: bool = True) -> int:
    """Seed Python, NumPy and PyTorch (all devices), and set the determinism switches.

    With ``deterministic=True`` cuDNN autotuning is off, deterministic kernels are
    requested (``warn_only``: ops without one warn instead of failing), and cuBLAS gets the
    workspace setting it needs to be reproducible. Returns ``seed``.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)  # affects subprocesses, e.g. DataLoader workers
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.deterministic = False
        torch.use_deterministic_algorithms(False)
    return seed


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def environment_report(profile: str, device: torch.device | None = None) -> dict[str, Any]:
    """What this run is made of: versions, hardware, profile and where it runs.

    The keys are stable, so a notebook can show them as a table and a test can check them.
    """
    get_profile(profile)  # fail early, with the list of valid profiles
    device = device or pick_device()
    report: dict[str, Any] = {
        "profile": profile,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda (torch build)": torch.version.cuda or "none",
        "device": device.type,
        "gpu": "none",
        "gpu memory (GiB)": None,
        "cpu count": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "platform": platform.platform(terse=True),
        "colab": in_colab(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report["gpu"] = props.name
        report["gpu memory (GiB)"] = round(props.total_memory / 2**30, 1)
        report["compute capability"] = f"{props.major}.{props.minor}"
    elif device.type == "mps":
        report["gpu"] = "Apple MPS"
    return report


def progress(iterable: Any, desc: str, enabled: bool = True, **kwargs: Any) -> Any:
    """``iterable`` wrapped in a progress bar (tqdm's notebook widget in Jupyter) named ``desc``.

    No bar when ``enabled`` is False, or when the environment variable ``TQDM_DISABLE`` is set
    (the course runner sets it when it executes a chapter, so that a saved output never shows a
    bar frozen at "0%"). Other keyword arguments go to ``tqdm``.
    """
    off = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
    return tqdm(iterable, desc=desc, disable=not enabled or off, **kwargs)
