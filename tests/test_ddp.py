import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ddp

BIN = Path(sys.executable).parent


def _run(out, nproc, *args, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if nproc == 1:
        cmd = [sys.executable, "-m", "helpers.ddp"]
    else:
        # --log-dir: torchrun's per-rank logs beside the run, not in the system's temporary folder
        cmd = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}",
               "--log-dir", str(Path(out) / "torchrun-logs"), "-m", "helpers.ddp"]
    result = subprocess.run([*cmd, "--out", str(out), "--n-train", "256", "--global-batch", "32", *args],
                            capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def _weights(out):
    from safetensors.torch import load_file

    return load_file(str(out / "weights.safetensors"))


def _max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("world, n, batch, message", [
    (4, 3, 2, "world size 4 is larger than the data"),
    (2, 100, 33, "does not split into 2 equal"),
    (1, 10, 20, "larger than the data"),
])
def test_a_world_that_cannot_split_the_data_is_refused(world, n, batch, message):
    with pytest.raises(ValueError, match=message):
        ddp.check_world(world, n, batch)


def test_two_gloo_ranks_end_with_the_weights_of_one_process(tmp_path):
    _run(tmp_path / "one", 1)
    _run(tmp_path / "two", 2)
    assert _max_diff(_weights(tmp_path / "one"), _weights(tmp_path / "two")) <= 1e-5
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["per_rank_batch"] == 16
    assert 0 < summary["fit_seconds"] < 300  # the loop's own time, start-up excluded


def test_a_run_resumes_on_another_world_size(tmp_path):
    _run(tmp_path / "r", 2, "--epochs", "1")
    _run(tmp_path / "r", 1, "--epochs", "2", "--resume")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "resumed"
    _run(tmp_path / "straight", 1, "--epochs", "2")
    assert _max_diff(_weights(tmp_path / "r"), _weights(tmp_path / "straight")) <= 1e-5


def test_a_failing_rank_stops_the_job_with_its_error(tmp_path):
    start = time.monotonic()
    result = _run(tmp_path / "bad", 2, "--n-train", "1", check=False)
    assert result.returncode != 0 and "larger than the data" in result.stderr
    assert time.monotonic() - start < 120
