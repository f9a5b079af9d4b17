import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from helpers import compress, experiment, hardware, models


def _cnn(seed=0):
    torch.manual_seed(seed)
    return models.SmallCNN(width=4).eval()


def test_size_counts_the_saved_weights_and_the_masks(tmp_path):
    net = nn.Linear(100, 100)  # 10,100 float32 values: 40,400 bytes plus torch.save's framing
    assert 0.0404 < compress.size_mb(net) < 0.0404 + 0.01
    masked = compress.prune_global(nn.Sequential(nn.Linear(100, 100)), 0.5)
    # weight_orig and weight_mask are both saved: pruning with masks makes the file larger
    assert compress.size_mb(masked) > 1.8 * compress.size_mb(net)
    compress.remove_masks(masked)
    assert compress.size_mb(masked) == pytest.approx(compress.size_mb(nn.Sequential(net)), rel=0.01)
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 2_500_000)
    assert compress.size_mb(path) == 2.5
    with pytest.raises(FileNotFoundError, match="no file"):
        compress.size_mb(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="nn.Module or a file path"):
        compress.size_mb(3)


def test_latency_harness_reports_percentiles_throughput_and_restores_threads():
    net = _cnn()
    before = torch.get_num_threads()
    lat = compress.measure_latency(net, (torch.zeros(1, 1, 28, 28),), (torch.zeros(8, 1, 28, 28),),
                                   repeats=5, threads=1, min_run_s=0.05)
    assert torch.get_num_threads() == before
    assert 0 < lat.p50_ms <= lat.p95_ms and lat.batch == 8 and lat.threads == 1 and lat.calls >= 1
    assert lat.throughput == pytest.approx(8 / (lat.batch_ms / 1e3))
    with pytest.raises(ValueError, match="repeats"):
        compress.measure_latency(net, (torch.zeros(1, 1, 28, 28),), (torch.zeros(2, 1, 28, 28),), repeats=0)
    with pytest.raises(ValueError, match="inputs as a tuple"):
        compress.measure_latency(net, (torch.zeros(1, 1, 28, 28),), ())


def test_a_slow_variant_is_timed_without_stalling():
    calls = []

    def slow(x):
        calls.append(len(x))
        time.sleep(0.03)

    lat = compress.measure_latency(slow, ([0],), ([0] * 8,), repeats=30, min_run_s=0.01)
    assert lat.calls == 1 and lat.batch_ms >= 30 and lat.batch == 8
    assert calls.count(8) == 1 and calls.count(1) == 5  # no warm-up, repeats // 6 single calls


def test_latency_rounds_are_paired_for_experiment_compare():
    small, big = nn.Linear(8, 8), nn.Linear(512, 512)
    runs = compress.latency_rounds({"small": (small, (torch.zeros(4, 8),)),
                                    "big": (lambda x: big(x) @ big.weight, (torch.zeros(256, 512),))},
                                   rounds=3, min_run_s=0.02, threads=1)
    assert len(runs) == 6 and set(runs["seed"]) == {0, 1, 2} and (runs["ms"] > 0).all()
    c = experiment.compare(runs, "ms", "small", "big", higher_is_better=False)
    assert c.verdict == "better"  # a 512x512 product and a 512^3 one against an 8x8 layer
    with pytest.raises(ValueError, match="at least 2 rounds"):
        compress.latency_rounds({"small": (small, (torch.zeros(4, 8),))}, rounds=1)


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, math.nan, "0.5"])
def test_a_sparsity_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        compress.prune_global(_cnn(), bad)


def test_global_pruning_removes_exactly_the_asked_share_and_the_table_counts_it():
    net = _cnn()
    compress.prune_global(net, 0.8)
    table = compress.sparsity_table(net)
    assert table.loc["total", "sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert table.loc["total", "weights"] == sum(m.weight.numel() for m in compress.prunable(net).values())
    # global: the layers keep different shares (small weights are not spread evenly)
    assert table["sparsity"].iloc[:-1].std() > 0
    compress.remove_masks(net)
    assert not any(name.endswith("_mask") for name, _ in net.named_buffers())
    assert compress.sparsity_table(net).loc["total", "sparsity"] == pytest.approx(0.8, abs=1e-3)
    with pytest.raises(ValueError, match="no prunable layer"):
        compress.prune_global(_cnn(), 0.5, ["features.9"])
    with pytest.raises(ValueError, match="no Conv or Linear"):
        compress.sparsity_table(nn.ReLU())


def test_sensitivity_scan_prunes_copies_one_layer_at_a_time():
    net = _cnn()
    x = torch.randn(64, 1, 28, 28)
    reference = net(x).detach()

    def score(m):  # agreement with the unpruned net's predictions
        return float((m(x).argmax(1) == reference.argmax(1)).float().mean())

    scan = compress.sensitivity_scan(net, score, [0.5, 0.99])
    assert len(scan) == 3 * 3 and (scan[scan["amount"] == 0]["score"] == 1.0).all()
    assert torch.equal(net(x), reference)  # the net itself is untouched
    assert scan[scan["amount"] == 0.99]["score"].min() < 1.0


def test_distillation_loss_matches_its_definition():
    torch.manual_seed(0)
    s, t, y = torch.randn(16, 5), torch.randn(16, 5), torch.randint(0, 5, (16,))
    ce = nn.functional.cross_entropy(s, y)
    assert torch.allclose(compress.distillation_loss(s, t, y, alpha=0.0), ce)
    temp = 3.0
    p_t = torch.softmax(t / temp, -1)
    kl = (p_t * (p_t.log() - torch.log_softmax(s / temp, -1))).sum(-1).mean()
    expected = 0.7 * temp**2 * kl + 0.3 * ce
    assert torch.allclose(compress.distillation_loss(s, t, y, temperature=temp, alpha=0.7), expected)
    # a student that already matches the teacher pays only the hard term
    assert torch.allclose(compress.distillation_loss(t, t, y, alpha=0.5), 0.5 * nn.functional.cross_entropy(t, y))
    # the teacher gets no gradient
    t.requires_grad_(True)
    s.requires_grad_(True)
    compress.distillation_loss(s, t, y).backward()
    assert t.grad is None and s.grad is not None
    with pytest.raises(ValueError, match="temperature"):
        compress.distillation_loss(s, t, y, temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        compress.distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match="same batch, same classes"):
        compress.distillation_loss(s, t[:, :3], y)


def test_onnx_export_with_a_dynamic_batch_matches_pytorch_at_another_batch(tmp_path):
    net = _cnn()
    path = compress.export_onnx(net, (torch.randn(4, 1, 28, 28),), tmp_path / "cnn.onnx", ["images"],
                                dynamic={"images": {0: "batch"}})
    ort_net = compress.OrtModel(path, threads=1)
    x = torch.randn(7, 1, 28, 28)
    assert np.abs(ort_net(x) - net(x).detach().numpy()).max() < 1e-4
    assert ort_net.size_mb == compress.size_mb(path)
    with pytest.raises(ValueError, match="takes 1 inputs"):
        ort_net(x, x)
    with pytest.raises(FileNotFoundError, match="export_onnx first"):
        compress.OrtModel(tmp_path / "none.onnx")
    with pytest.raises(ValueError, match="unknown input"):
        compress.export_onnx(net, (x,), tmp_path / "b.onnx", ["images"], dynamic={"pixels": {0: "b"}})


@torch.library.custom_op("handbook_test::clip_sum", mutates_args=())
def _clip_sum(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).sum(-1, keepdim=True)


@_clip_sum.register_fake
def _(x):
    return x.new_empty(*x.shape[:-1], 1)


class _CustomOp(nn.Module):
    def forward(self, x):
        return _clip_sum(x) * 2


class _DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # a branch on the data: torch.export cannot trace it
            return x
        return -x


def test_a_model_that_fails_to_export_names_the_op_or_line_and_the_fallback(tmp_path):
    x = torch.randn(3, 4)
    with pytest.raises(compress.ExportError, match=r"no ONNX translation for the op handbook_test\.clip_sum"
                       r"\.default.*Fallbacks: keep the PyTorch model"):
        compress.export_onnx(_CustomOp(), (x,), tmp_path / "c.onnx", ["x"])
    with pytest.raises(compress.ExportError, match=r"could not trace _DataDependent.*if x\.sum\(\) > 0"
                       r".*Fallbacks"):
        compress.export_program(_DataDependent(), (x,), ["x"])


def test_static_quantization_checks_the_calibration_shape(tmp_path):
    net = _cnn()
    path = compress.export_onnx(net, (torch.randn(2, 1, 28, 28),), tmp_path / "cnn.onnx", ["images"],
                                dynamic={"images": {0: "batch"}})
    with pytest.raises(ValueError, match=r"calibration data of shape \(16, 3, 28, 28\) does not fit"):
        compress.quantize_static_onnx(path, tmp_path / "q.onnx", torch.randn(16, 3, 28, 28))
    with pytest.raises(ValueError, match="does not fit"):
        compress.quantize_static_onnx(path, tmp_path / "q.onnx", np.zeros((0, 1, 28, 28)))
    with pytest.raises(ValueError, match="does not fit"):
        compress.quantize_static_onnx(path, tmp_path / "q.onnx", np.zeros((16, 28, 28)))
    x = torch.randn(64, 1, 28, 28)
    q = compress.quantize_static_onnx(path, tmp_path / "q.onnx", x)
    assert compress.size_mb(q) < compress.size_mb(path)
    agree = (compress.OrtModel(q)(x).argmax(1) == net(x).argmax(1).numpy()).mean()
    assert agree > 0.8  # int8 keeps most of an untrained net's decisions on its own calibration data


def test_cpu_features_are_booleans():
    feats = compress.cpu_features()
    assert set(feats) == {"avx2", "avx512f", "vnni", "avx512_bf16", "amx"}
    assert all(isinstance(v, bool) for v in feats.values())


def test_cpu_features_rename_hardwares_reading(monkeypatch):
    fake = hardware.cpu_features("flags : avx2 avx512f avx512_bf16 amx_tile\n")
    monkeypatch.setattr(hardware, "cpu_features", lambda: fake)  # one parser: hardware's
    assert compress.cpu_features() == {"avx2": True, "avx512f": True, "vnni": False,
                                       "avx512_bf16": True, "amx": True}


def test_measure_variant_scores_with_intervals_or_only_times_a_slow_variant():
    net = _cnn()
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)).numpy()

    def score(fn):
        with torch.inference_mode():
            return fn(x).softmax(1).numpy()

    base = score(net)
    row, probs = compress.measure_variant(net, (x[:1],), (x[:8],), 0.1, score, y, base, n_boot=50, threads=1)
    assert row["size MB"] == 0.1 and row["batch"] == 8 and np.allclose(probs, base)
    assert row["acc low"] <= row["accuracy"] <= row["acc high"] and row["drop"] == 0.0
    timed_only, none = compress.measure_variant(net, (x[:1],), (x[:8],), 0.1, score, y, max_eval_s=0.0,
                                                threads=1)
    assert none is None and "accuracy" not in timed_only and timed_only["p50_ms"] > 0


def test_a_failed_trace_keeps_torchs_dump_off_the_screen(capfd):
    with pytest.raises(compress.ExportError) as err:
        compress.export_program(_DataDependent(), (torch.randn(3, 4),), ["x"])
    assert 'File "test_compress.py"' in str(err.value)  # the file's name, not this machine's path
    assert "def forward" in err.value.torch_output
    assert "def forward" not in capfd.readouterr().err
