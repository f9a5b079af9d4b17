"""Ways to save a model, compared; and why a pickle must never be loaded blindly.

Taught in ``notebooks/13_serving.ipynb`` ("Formats, and safe loading"): ``formats_table`` saves
one model as a ``torch.save`` state_dict, safetensors, a ``torch.export`` program and ONNX, and
measures each (size, load time, output difference, what loading needs); ``malicious_checkpoint``
writes a checkpoint whose pickle runs code, which the safe loaders refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import compress, hardware

__all__ = ["formats_table", "malicious_checkpoint"]


def formats_table(model: Any, make_model: Callable[[], Any], args: tuple[Any, ...],
                  input_names: Sequence[str], dynamic: Mapping[str, Mapping[int, str]],
                  folder: str | Path, repeats: int = 3) -> Any:
    """Save ``model`` four ways in ``folder`` and measure each: file size, median load time
    (into a fresh ``make_model()`` for the two weight formats), the largest output difference
    from ``model`` on ``args``, and what loading needs. Formats: ``torch.save`` of the
    state_dict read back with ``torch.load(weights_only=True)``; safetensors; a
    ``torch.export`` program (``.pt2``); ONNX (read by ONNX Runtime)."""
    import pandas as pd
    import safetensors.torch
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with torch.inference_mode():
        reference = model(*args).numpy()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    paths = {"state_dict (.pt)": folder / "model.pt", "safetensors": folder / "model.safetensors",
             "torch.export (.pt2)": folder / "model.pt2", "ONNX": folder / "model.onnx"}
    torch.save(state, paths["state_dict (.pt)"])
    safetensors.torch.save_file(state, paths["safetensors"])
    program = compress.export_program(model, args, input_names, dynamic)
    torch.export.save(program, paths["torch.export (.pt2)"])
    compress.export_onnx(program, args, paths["ONNX"], input_names, ["logits"])

    def weights(loader: Callable[[], dict]) -> Callable[[], Any]:
        def load() -> Any:
            fresh = make_model().eval()
            fresh.load_state_dict(loader())
            return fresh
        return load

    loaders = {
        "state_dict (.pt)": weights(lambda: torch.load(paths["state_dict (.pt)"], weights_only=True)),
        "safetensors": weights(lambda: safetensors.torch.load_file(paths["safetensors"])),
        "torch.export (.pt2)": lambda: torch.export.load(paths["torch.export (.pt2)"]).module(),
        "ONNX": lambda: compress.OrtModel(paths["ONNX"], threads=1),
    }
    needs = {"state_dict (.pt)": "PyTorch and the model's Python class",
             "safetensors": "the model's code, in any language with a safetensors reader",
             "torch.export (.pt2)": "PyTorch only (the graph is in the file)",
             "ONNX": "any ONNX runtime (C, C++, C#, Java, JavaScript, mobile)"}
    rows = []
    for fmt, load in loaders.items():
        loaded = load()
        with torch.inference_mode():
            out = loaded(*args)
        out = out.numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        rows.append({"format": fmt, "size MB": compress.size_mb(paths[fmt]),
                     "load ms": 1000 * hardware.time_op(load, torch.device("cpu"), repeats, warmup=0),
                     "max |diff|": float(np.abs(out - reference).max()),
                     "loading needs": needs[fmt]})
    return pd.DataFrame(rows).set_index("format")


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: harmless, but it proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


def malicious_checkpoint(path: str | Path, marker: str | Path) -> Path:
    """Write a checkpoint that looks ordinary (a dict with a weight tensor) but whose pickle
    also carries a payload: loading it with ``pickle`` or ``torch.load(weights_only=False)``
    would create ``marker``. The safe paths refuse it (the notebook shows this)."""
    import torch

    path = Path(path)
    torch.save({"weight": torch.zeros(2, 2), "extra": _Payload(Path(marker))}, path)
    return path
