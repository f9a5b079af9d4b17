"""Training and inference throughput of the chapter-03 models on this device.

A benchmark, not a test: it prints images/s for the quick model (SmallCNN, 28x28 grey) and
the full model (ResNet-9, 32x32 colour), measured side by side in one run, so their ratio
is meaningful even where the absolute numbers depend on the machine.

    python benchmarks/cnn_throughput.py [--seconds 2] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
from torch import nn

from helpers import env, models, train


def throughput(net: nn.Module, shape: tuple[int, ...], batch_size: int, seconds: float,
               device: torch.device, training: bool) -> float:
    """Images per second for repeated forward (and, if ``training``, backward+step) passes."""
    x = torch.randn(batch_size, *shape, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    dtype = train.amp_dtype(device)
    net.train(training)

    def step() -> None:
        with torch.autocast(device.type, dtype) if dtype else nullcontext():
            out = net(x)
        if training:
            loss = nn.functional.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    with nullcontext() if training else torch.no_grad():
        for _ in range(3):  # warm-up
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            step()
            n += batch_size
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    env.seed_everything(0, deterministic=False)
    device = env.pick_device()
    cases = [("quick: SmallCNN", models.SmallCNN(), (1, 28, 28)),
             ("full: ResNet-9", models.ResNet9(), (3, 32, 32))]
    print(f"device: {device.type}, batch size {args.batch_size}, {args.seconds} s per figure")
    print(f"{'model':<18} {'params':>10} {'train img/s':>12} {'infer img/s':>12} {'infer/train':>12}")
    for name, net, shape in cases:
        net.to(device)
        tr = throughput(net, shape, args.batch_size, args.seconds, device, training=True)
        inf = throughput(net, shape, args.batch_size, args.seconds, device, training=False)
        print(f"{name:<18} {models.count_parameters(net):>10,} {tr:>12,.0f} {inf:>12,.0f} "
              f"{inf / tr:>12.1f}")


if __name__ == "__main__":
    main()
