import random

import numpy as np
import pytest
import torch

from helpers import env


def _set_available(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"), (True, False, "cuda")],
)
def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _set_available(monkeypatch, cuda, mps)
    assert env.pick_device().type == expected


def test_pick_device_explicit_choice(monkeypatch):
    _set_available(monkeypatch, cuda=False, mps=False)
    assert env.pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match=r"'cuda' is not available.*available: \['cpu'\]"):
        env.pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device kind 'tpu'"):
        env.pick_device("tpu")
    assert env.pick_device(torch.device("cpu")) == torch.device("cpu")  # what notebooks hold
    with pytest.raises(ValueError, match="'cuda' is not available"):
        env.pick_device(torch.device("cuda", 1))
    with pytest.raises(ValueError, match="'cuda' is not available"):
        env.pick_device("cuda:0")
    _set_available(monkeypatch, cuda=True, mps=False)
    assert env.pick_device("cuda:1") == torch.device("cuda", 1)


def _draws():
    return (random.random(), float(np.random.rand()), torch.rand(4).tolist(),
            torch.nn.Linear(3, 2).weight.detach().clone())


def test_seed_everything_reproduces_every_generator_on_cpu():
    env.seed_everything(123)
    a = _draws()
    env.seed_everything(123)
    b = _draws()
    assert a[:3] == b[:3]
    assert torch.equal(a[3], b[3])
    env.seed_everything(124)
    assert _draws()[:3] != a[:3]


def test_seed_everything_sets_the_determinism_switches():
    try:
        env.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        env.seed_everything(0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark
    finally:
        env.seed_everything(0, deterministic=True)


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        env.seed_everything(bad)


def test_in_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert env.in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-x")
    assert env.in_colab() is True


def test_environment_report_on_cpu(monkeypatch):
    _set_available(monkeypatch, cuda=False, mps=False)
    report = env.environment_report("quick")
    assert report["profile"] == "quick"
    assert report["device"] == "cpu" and report["gpu"] == "none"
    assert report["torch"] == torch.__version__
    assert report["cpu count"] >= 1
    with pytest.raises(ValueError, match="unknown profile"):
        env.environment_report("turbo")


def test_environment_report_describes_a_gpu(monkeypatch):
    class Props:
        name, total_memory, major, minor = "NVIDIA H100 80GB HBM3", 80 * 2**30, 9, 0

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: Props())
    report = env.environment_report("full", torch.device("cuda"))
    assert report["gpu"] == "NVIDIA H100 80GB HBM3"
    assert report["gpu memory (GiB)"] == 80.0
    assert report["compute capability"] == "9.0"
    assert env.environment_report("full", torch.device("mps"))["gpu"] == "Apple MPS"
