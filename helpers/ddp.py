"""Data-parallel training with ``torchrun``: the course's ``train.fit`` on several processes.

Taught in ``notebooks/12_scaling_out.ipynb``. Run it as a script::

    torchrun --standalone --nproc_per_node=2 -m helpers.ddp --out runs/ddp --global-batch 64

(``python -m helpers.ddp ...`` without torchrun is the same run in one process.) Every rank
holds a copy of chapter 3's ``SmallCNN`` (no BatchNorm: its batch statistics would differ per
rank), wrapped in ``DistributedDataParallel``; a ``DistributedSampler`` gives each rank its
share of every global batch, and ``fit`` calls its ``set_epoch`` so every epoch is shuffled
anew. Gradients are averaged across ranks in ``backward``, so W ranks with batches of G / W
take the same steps as one process with batches of G. Rank 0 alone writes checkpoints, of the
unwrapped model, so a run resumes at any world size; the process group is destroyed on the
way out, error or not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from . import federated
from . import train as train_lib

__all__ = ["world", "check_world", "train_replica", "main"]


def world() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment; ``(0, 1)`` without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def check_world(world_size: int, n_train: int, global_batch: int) -> int:
    """The per-rank batch, or a ``ValueError`` when the world cannot split the data."""
    if world_size > n_train:
        raise ValueError(f"world size {world_size} is larger than the data ({n_train} examples): "
                         "every rank needs examples; use fewer processes or more data")
    if global_batch % world_size:
        raise ValueError(f"the global batch {global_batch} does not split into {world_size} equal "
                         f"per-rank batches: use a multiple of {world_size}")
    if global_batch > n_train:
        raise ValueError(f"the global batch {global_batch} is larger than the data ({n_train})")
    return global_batch // world_size


def train_replica(out: Path, n_train: int = 1024, global_batch: int = 64, epochs: int = 1,
          lr: float = 0.05, seed: int = 0, width: int = 8, resume: bool = False) -> dict:
    """One data-parallel run (this process's part of it). Returns rank 0's summary."""
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


    rank, world_size = world()
    per_rank = check_world(world_size, n_train, global_batch)
    distributed = world_size > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
                              if torch.cuda.is_available() else "cpu")
        d = federated.fashion_tensors(n_train, 500, seed)
        data = TensorDataset(d.x_train, d.y_train)
        sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=seed, drop_last=True)
        loader = DataLoader(data, batch_size=per_rank, sampler=sampler, drop_last=True)
        torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts)
        net = federated.client_model(width).to(device)
        model = DistributedDataParallel(net) if distributed else net
        history = train_lib.fit(
            model, loader, num_epochs=epochs, device=device, progress=False,
            optimizer=torch.optim.SGD(model.parameters(), lr=lr),
            checkpoint_dir=out / "checkpoint", resume=resume,
            # the key names the run, not its length or world size: a run resumes to more
            # epochs, on any number of ranks
            run_key=train_lib.run_key({"n_train": n_train, "global_batch": global_batch,
                                       "lr": lr, "seed": seed, "width": width}))
        summary = {"world_size": world_size, "per_rank_batch": per_rank,
                   "status": history.status, "epochs": len(history),
                   # the training loop's own time on this rank (all-reduce waits included),
                   # without the process start-up, imports and rendezvous around it
                   "fit_seconds": float(sum(row["seconds"] for row in history)),
                   "test_acc": federated.accuracy(net, d.x_test, d.y_test)}
        if rank == 0:
            from safetensors.torch import save_file

            out.mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
                      str(out / "weights.safetensors"))
            (out / "summary.json").write_text(json.dumps(summary))
        if distributed:
            dist.barrier()
        return summary
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchrun ... -m helpers.ddp")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--global-batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    train_replica(args.out, args.n_train, args.global_batch, args.epochs, args.lr, args.seed,
                  args.width, args.resume)
    return 0


def train(*args: Any, **kwargs: Any) -> dict:
    """Deprecated name of :func:`train_replica` (it shadowed the module ``helpers.train``)."""
    warnings.warn("ddp.train is deprecated: use ddp.train_replica (same arguments)",
                  DeprecationWarning, stacklevel=2)
    return train_replica(*args, **kwargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

