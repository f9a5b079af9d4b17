import pytest
import torch

from helpers import hardware

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "bf16", "bandwidth"),
    [("NVIDIA H100 80GB HBM3", 989.4, 3350.0), ("NVIDIA H100 PCIe", 756.0, 2000.0),
     ("NVIDIA A100-SXM4-80GB", 312.0, 2039.0), ("NVIDIA A100-SXM4-40GB", 312.0, 1555.0),
     ("Tesla T4", None, 320.0), ("NVIDIA H200", 989.4, 4800.0)],
)
def test_known_peaks(name, bf16, bandwidth):
    peaks = hardware.nominal_peaks(name)
    assert peaks is not None
    assert peaks.bf16 == bf16 and peaks.bandwidth_gbs == bandwidth


def test_unknown_device_has_no_peaks():
    assert hardware.nominal_peaks("NVIDIA GeForce GTX 1050") is None


def test_time_op_takes_the_median_and_validates():
    calls = []
    seconds = hardware.time_op(lambda: calls.append(1), CPU, repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 0.1
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        hardware.time_op(lambda: None, CPU, repeats=0)


def test_matmul_tflops_is_positive_and_restores_precision():
    before = torch.get_float32_matmul_precision()
    value = hardware.matmul_tflops(CPU, torch.float32, 64, repeats=2, tf32=True)
    assert value > 0
    assert torch.get_float32_matmul_precision() == before
    with pytest.raises(ValueError, match="must be positive"):
        hardware.matmul_tflops(CPU, torch.float32, 0, repeats=1)


def test_copy_bandwidth_is_positive():
    assert hardware.copy_bandwidth_gbs(CPU, mib=1, repeats=2) > 0
    with pytest.raises(ValueError, match="at least 1 MiB"):
        hardware.copy_bandwidth_gbs(CPU, mib=0, repeats=1)


def test_hardware_check_on_cpu_has_measurements_but_no_peaks():
    rows = hardware.hardware_check(CPU, matmul_size=64, matmul_repeats=2, bandwidth_mib=1,
                                   bandwidth_repeats=2)
    assert [r["measurement"] for r in rows] == ["matmul fp32", "copy bandwidth"]
    assert all(r["measured"] > 0 and r["nominal peak"] is None and r["utilization"] is None
               for r in rows)


def test_hardware_check_on_a_known_gpu_reports_utilization(monkeypatch):
    """A stand-in H100: the plan and the utilization arithmetic, without a GPU."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d: (9, 0))
    monkeypatch.setattr(hardware, "matmul_tflops",
                        lambda device, dtype, n, repeats, tf32=False: 700.0 if dtype == torch.bfloat16 else 50.0)
    monkeypatch.setattr(hardware, "copy_bandwidth_gbs", lambda device, mib, repeats: 2680.0)
    rows = {r["measurement"]: r for r in hardware.hardware_check(torch.device("cuda"), 8, 1, 1, 1)}
    assert list(rows) == ["matmul fp32", "matmul tf32", "matmul bf16", "copy bandwidth"]
    assert rows["matmul bf16"]["utilization"] == pytest.approx(700.0 / 989.4)
    assert rows["copy bandwidth"]["utilization"] == pytest.approx(0.8)


def test_cpu_features_read_the_flags_line():
    cpuinfo = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n"
    assert hardware.cpu_features(cpuinfo) == {"AVX2": True, "AVX-512": True, "VNNI": True,
                                              "AVX512-BF16": False, "AMX": False}
    assert not any(hardware.cpu_features("").values())  # macOS, Windows: nothing readable
    assert set(hardware.cpu_features()) == set(hardware.CPU_FEATURES)  # this machine


def test_describe_cpu_names_what_it_has_and_lacks():
    text = hardware.describe_cpu(hardware.cpu_features("flags : avx2 amx_tile\n"))
    assert text.startswith("AVX2 and AMX; no AVX-512, VNNI or AVX512-BF16 (PyTorch's CPU kernels: ")
    none = hardware.describe_cpu(dict.fromkeys(hardware.CPU_FEATURES, False))
    assert none.startswith("none of AVX2, AVX-512, VNNI, AVX512-BF16 or AMX")


@pytest.mark.parametrize(("implementation", "kind"), [
    ("jit_bf16:avx512_core_bf16", "bf16 instructions"), ("brg_matmul:avx512_core_amx", "AMX tiles"),
    ("brg_conv_fwd:avx2_vnni_2", "bf16 instructions"), ("jit_bf16:avx512_core", "emulated"),
    ("x64:gemm:jit", "not named"), ("gemm:jit:bf16", "not named")])
def test_bf16_kernel_kind_reads_the_instruction_set_in_the_name(implementation, kind):
    assert hardware.bf16_kernel_kind(implementation) == kind


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
def test_onednn_kernels_lists_a_convolution_and_prints_nothing(capfd):
    conv, x = torch.nn.Conv2d(3, 16, 3), torch.randn(2, 3, 16, 16)
    conv(x)  # once before, so that the verbose run is not the first
    isa, rows = hardware.onednn_kernels(lambda: conv(x))
    print("after")
    assert capfd.readouterr().out == "after\n"  # oneDNN's lines were read, not shown
    convs = [r for r in rows if r["operation"] == "convolution"]
    assert convs and convs[0]["dtype"] == "f32" and convs[0]["ms"] >= 0
    assert convs[0]["pass"].startswith("forward")
    assert isa  # the instruction-set line, kept from the first verbose run of the process
