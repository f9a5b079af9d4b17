"""Chapter 12's techniques on this device: step time and memory, side by side in one run.

A benchmark, not a test. For chapter 3's SmallCNN (width ``--width``) at batch ``--batch`` it
times one training step in fp32, with autocast (bf16, or fp16 with a GradScaler on GPUs
without bf16), with ``--accum`` accumulation steps of batch/accum, with activation
checkpointing of the feature blocks, and compiled with ``torch.compile`` (skipped, with the
reason, when compiling fails). Memory: the bytes autograd keeps for backward
(``scale.saved_activation_bytes``, any device) and, on CUDA, ``torch.cuda.max_memory_allocated``.
Ratios between rows are meaningful; absolute figures are this machine's.

    python benchmarks/scaling.py [--batch 256] [--width 32] [--repeats 10]
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch
from torch import nn

from helpers import env, hardware, models, scale, train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--accum", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = env.pick_device()
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    half = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16

    def make(checkpointed: bool = False) -> nn.Module:
        torch.manual_seed(0)
        net = models.SmallCNN(width=args.width, batch_norm=False).to(device)
        if checkpointed:
            net.features = train.Checkpointed(net.features)
        return net

    def stepper(net: nn.Module, dtype: torch.dtype | None = None, accum: int = 1):
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            for xb, yb in zip(x.chunk(accum), y.chunk(accum), strict=True):
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    loss = nn.functional.cross_entropy(net(xb).float(), yb) / accum
                scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return step

    variants = {"fp32": (make(), None, 1), f"autocast {str(half).split('.')[-1]}": (make(), half, 1),
                f"accumulate x{args.accum}": (make(), None, args.accum),
                "activation checkpointing": (make(True), None, 1)}
    rows = []
    for name, (net, dtype, accum) in variants.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = hardware.time_op(stepper(net, dtype, accum), device, repeats=args.repeats)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            saved = scale.saved_activation_bytes(
                lambda net=net, accum=accum: nn.functional.cross_entropy(
                    net(x.chunk(accum)[0]).float(), y.chunk(accum)[0]))
        rows.append({"variant": name, "ms per step": 1000 * seconds,
                     "MiB kept for backward": saved / 2**20,
                     "CUDA peak MiB": torch.cuda.max_memory_allocated() / 2**20
                     if device.type == "cuda" else float("nan")})
    try:
        compiled = torch.compile(make())
        rows.append({"variant": "torch.compile",
                     "ms per step": 1000 * hardware.time_op(stepper(compiled), device,
                                                         repeats=args.repeats),
                     "MiB kept for backward": float("nan"), "CUDA peak MiB": float("nan")})
    except Exception as err:  # noqa: BLE001 (a benchmark reports, it does not stop)
        print(f"torch.compile skipped: {type(err).__name__}: {err}")
    table = pd.DataFrame(rows).set_index("variant")
    table["time vs fp32"] = table["ms per step"] / table.loc["fp32", "ms per step"]
    print(f"device {device}, SmallCNN width {args.width}, batch {args.batch}")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
