"""The chapters' checked outputs do not depend on the CPU's instruction set.

CI and learners run on whatever CPU they get (AVX2-only EPYC, AVX-512/VNNI/AMX Xeon). A cell
that nbval checks must print the same thing on all of them, so it may show only what is exact by
construction. Each such quantity is computed here in two processes: one with the machine's own
kernels, one narrowed to PyTorch's default (non-vectorized) CPU capability and oneDNN's SSE4.1
path (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``), as another CPU would run them. Training
steps run in both, so the weights differ in their last bits; the checked quantities must not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

NARROW = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}

# Each key mirrors a `# NBVAL_CHECK_OUTPUT` cell whose value passes through float arithmetic.
SCRIPT = r"""
import copy, json
import torch
from torch.nn.utils import prune
from torch.utils.flop_counter import FlopCounterMode
from helpers import compress, models

out = {"capability": torch.backends.cpu.get_cpu_capability()}
torch.manual_seed(0)
out["rand"] = [round(v, 4) for v in torch.rand(3).tolist()]  # 00: seeded draws

# a few real training steps, so the weights carry this ISA's rounding
torch.manual_seed(0)
net = models.SmallCNN(num_classes=10, in_channels=1)
x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
for i in range(0, 256, 32):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x[i:i + 32]), y[i:i + 32]).backward()
    opt.step()
net.eval()
out["logit_sum"] = float(net(x[:8]).sum())  # NOT checked anywhere: it shows the ISAs differ

# 03: a restored state_dict predicts the same classes as the model it came from
restored = models.SmallCNN(num_classes=10, in_channels=1)
restored.load_state_dict(copy.deepcopy(net.state_dict()))
with torch.no_grad():
    out["restored_same"] = torch.equal(restored.eval()(x).argmax(1), net(x).argmax(1))

# 08: pruning counts by rank, whatever the weights
conv = copy.deepcopy(net).features[1][0]
prune.l1_unstructured(conv, name="weight", amount=0.7)
out["l1_masked"] = int((conv.weight_mask == 0).sum())
pruned = compress.prune_global(copy.deepcopy(net), 0.5)
out["global_masked"] = int(compress.sparsity_table(pruned).loc["total", "masked"])
out["ties"] = compress.smallest_mask(torch.tensor([0.5, 0.1, 0.3, 0.1, 0.2]), 2).tolist()

# 14: counted FLOPs, and LoRA's zero-initialized update leaves the base layer's output as it was
layer = torch.nn.Linear(512, 256, bias=False)
inp = torch.randn(64, 512, requires_grad=True)
with FlopCounterMode(display=False) as counter:
    layer(inp).sum().backward()
out["flops"] = counter.get_total_flops()
base = torch.nn.Linear(384, 384)
A, B = torch.randn(8, 384) / 8, torch.zeros(384, 8)
v = torch.randn(4, 384)
out["lora_equal"] = torch.equal(base(v) + 2.0 * (v @ A.T @ B.T), base(v))
print(json.dumps(out))
"""


def _run(extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in NARROW} | extra
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def both() -> tuple[dict, dict]:
    return _run({}), _run(NARROW)


def test_the_narrowed_run_really_uses_other_kernels(both):
    own, narrow = both
    assert narrow["capability"] == "DEFAULT"
    if own["capability"] == "DEFAULT":
        pytest.skip("this CPU has no vectorized capability to narrow from")


def test_checked_quantities_are_identical_under_both_instruction_sets(both):
    own, narrow = both
    checked = {k: v for k, v in own.items() if k not in ("capability", "logit_sum")}
    assert checked == {k: narrow[k] for k in checked}
    assert own["l1_masked"] == round(0.7 * 4608) and own["global_masked"] == round(0.5 * 20432)
    assert own["ties"] == [1.0, 0.0, 1.0, 0.0, 1.0]  # ties broken by position
    assert own["flops"] == 6 * 64 * 512 * 256
    assert own["restored_same"] and own["lora_equal"]
