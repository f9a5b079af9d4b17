"""The golden training test: ``train.fit`` gives the same history and checkpoint it always gave.

``tests/golden/fit.json`` was written by ``fit`` before its body was split into named steps
(issue 30); a refactor of the loop must reproduce it exactly: every history value bit for bit,
and the checkpoint's tensors (model, optimizer, best weights) hashed, with its epoch counters.
The run exercises validation, a batch-wise one-cycle schedule, gradient clipping, gradient
accumulation with an uneven last group, early stopping and the checkpoint.

To be exact on any CPU, the run uses only code every x86 CPU runs alike: PyTorch's default
(non-vectorized) capability on one thread, and glibc's baseline maths functions (its FMA and AVX2
variants masked through ``GLIBC_TUNABLES``). The layers multiply and sum through ATen rather than
call a BLAS: MKL's ``sgemm``, even with ``MKL_CBWR=COMPATIBLE``, gave other last bits on a CI
machine than on AMD EPYC, and the golden file was written again, by the pre-refactor ``fit`` (the
tree of commit 1d3e454), when the model changed. Run keys are not compared: they hash the
training code, which the refactor changed once (the README says so).

``python tests/test_fit_golden.py --write [ROOT]`` rewrites the golden file from the ``helpers/``
in ROOT (only ever from the code before a refactor, never to make this test pass).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]
GOLDEN = Path(__file__).with_name("golden") / "fit.json"
REPRODUCIBLE = {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1",
                "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4,-AVX512F"}

SCRIPT = r"""
import contextlib, hashlib, io, json, sys, tempfile
from pathlib import Path
import torch
from torch import nn
from helpers import train

torch.set_num_threads(1)
torch.manual_seed(0)
x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
xv, yv = torch.randn(32, 6), torch.randint(0, 3, (32,))
class Dense(nn.Linear):  # nn.Linear's weights and initialisation, summed by ATen, not a BLAS
    def forward(self, x):
        return (x.unsqueeze(-2) * self.weight).sum(-1) + self.bias

net = nn.Sequential(Dense(6, 8), nn.ReLU(), Dense(8, 3))
optimizer = torch.optim.AdamW(net.parameters(), lr=3e-2, weight_decay=1e-2)
loader = train.TensorLoader(x, y, 8, shuffle=True, seed=1)  # 8 batches: groups of 3, 3 and 2
steps = 3 * ((len(loader) + 2) // 3)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 5e-2, total_steps=steps)
with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
    history = train.fit(net, loader, train.TensorLoader(xv, yv, 16), num_epochs=6,
                        optimizer=optimizer, scheduler=scheduler, scheduler_step="batch",
                        grad_clip=1.0, accumulation_steps=3, early_stopping_patience=2,
                        checkpoint_dir=folder, run_key="golden", progress=False)
    ckpt = torch.load(Path(folder) / train.CHECKPOINT_NAME, weights_only=True)

def tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from tensors(obj[key], f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from tensors(item, f"{prefix}/{i}")

def digest(obj):
    h = hashlib.sha256()
    for name, t in tensors(obj):
        h.update(name.encode()); h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()

timing = ("seconds", "samples_per_s")
print(json.dumps({
    "history": [{k: float(v).hex() for k, v in row.items() if k not in timing} for row in history],
    "final_weights": digest(net.state_dict()),
    "checkpoint": {"model": digest(ckpt["model"]), "optimizer": digest(ckpt["optimizer"]),
                   "scheduler_last_lr": [float(v).hex() for v in ckpt["scheduler"]["_last_lr"]],
                   "best_model": digest(ckpt["best_model"]), "epoch": ckpt["epoch"],
                   "bad_epochs": ckpt["bad_epochs"], "stopped": ckpt["stopped"],
                   "best_loss": float(ckpt["best_loss"]).hex()},
}, indent=1, sort_keys=True))
"""


def run_golden(root: Path = REPO) -> dict:
    """Run SCRIPT with the ``helpers`` of ``root`` (a checkout; this one by default)."""
    env = {**os.environ, **REPRODUCIBLE}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300, cwd=root, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_fit_reproduces_its_golden_history_and_checkpoint():
    golden = json.loads(GOLDEN.read_text())
    now = run_golden()
    assert now["history"] == golden["history"], "the history differs from tests/golden/fit.json"
    assert now["checkpoint"] == golden["checkpoint"], "the checkpoint differs from the golden one"
    assert now["final_weights"] == golden["final_weights"]
    assert len(golden["history"]) < 6  # early stopping did stop the run


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:  # --write [ROOT]: ROOT holds the pre-refactor helpers/
        GOLDEN.parent.mkdir(exist_ok=True)
        root = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO
        GOLDEN.write_text(json.dumps(run_golden(root), indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN}")
