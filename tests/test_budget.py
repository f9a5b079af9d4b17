"""Chapter 14's planning arithmetic, against answers worked out by hand."""

import math

import pandas as pd
import pytest
import torch
from torch import nn

from helpers import budget


def test_count_flops_of_a_linear_layer_is_2_m_n_k_forward_and_3x_with_backward():
    layer = nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64, requires_grad=False)
    assert budget.count_flops(lambda: layer(x)) == 2 * 8 * 64 * 32
    # backward: the weight's gradient only (the input needs none): one more matmul
    assert budget.count_flops(lambda: layer(x).sum().backward()) == 2 * (2 * 8 * 64 * 32)
    x.requires_grad_(True)
    assert budget.count_flops(lambda: layer(x).sum().backward()) == 3 * (2 * 8 * 64 * 32)


def test_6nd_and_compute_optimal_invert_each_other():
    assert budget.flops_6nd(1e6, 2e7) == 1.2e14
    opt = budget.compute_optimal(1.2e14)
    assert opt["params"] == pytest.approx(1e6) and opt["tokens"] == pytest.approx(2e7)
    # Chinchilla itself: 70B parameters, 1.4T tokens, 5.88e23 FLOPs
    assert budget.compute_optimal(budget.flops_6nd(70e9, 1.4e12))["params"] == pytest.approx(70e9)


def test_training_memory_bytes_per_parameter():
    n = 1_000_000
    fp32 = budget.training_memory(n, "fp32", "adamw")
    assert fp32.total / n == 16  # 4 weights + 4 gradients + 8 moments
    mixed = budget.training_memory(n, "bf16", "adamw")
    assert mixed.total / n == 16  # 2 + 2 + 8 + 4 master
    assert budget.training_memory(n, "fp32", "sgd").total / n == 8
    assert budget.training_memory(n, "fp32", "sgd-momentum").total / n == 12
    lora = budget.training_memory(n, "fp32", "adamw", trainable=10_000, activations=5e6)
    assert lora.total == 4 * n + 16 * 10_000 - 4 * 10_000 + 5e6
    assert set(lora.table()) == {"weights", "gradients", "optimizer", "master_weights",
                                 "activations", "total"}


@pytest.mark.parametrize("kwargs, words", [
    ({"precision": "fp8"}, "unknown precision"),
    ({"optimizer": "lion"}, "unknown optimizer"),
    ({"trainable": 2_000_000}, "cannot exceed"),
    ({"activations": -1}, "activations"),
])
def test_training_memory_refuses_nonsense(kwargs, words):
    with pytest.raises(ValueError, match=words):
        budget.training_memory(1_000_000, **kwargs)


def test_activation_bytes_of_a_relu_mlp():
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(10, 16)
    got = budget.activation_bytes(lambda: net(x).sum())
    # saved: x for the first matmul, the ReLU output (its own input is not kept separately)
    assert got >= 4 * 10 * (16 + 32)


@pytest.mark.parametrize("mfu", [0, -0.1, 1.5, float("nan")])
def test_predict_seconds_refuses_an_mfu_outside_0_1(mfu):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        budget.predict_seconds(1e12, 1e12, mfu)


def test_predict_seconds():
    assert budget.predict_seconds(1e12, 1e12, 0.5) == 2.0
    with pytest.raises(ValueError, match="peak_flops_per_s"):
        budget.predict_seconds(1e12, 0, 0.5)


def test_price_table_examples_are_marked_and_a_missing_column_is_named(tmp_path):
    prices = budget.load_prices()
    assert all("example" in d for d in prices.index)
    assert all(s.startswith("example") for s in prices["source"])
    broken = prices.reset_index().drop(columns=["date"])
    broken.to_csv(tmp_path / "prices.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['date'\]"):
        budget.load_prices(tmp_path / "prices.csv")
    bad = prices.reset_index()
    bad.loc[0, "usd_per_hour"] = -1
    with pytest.raises(ValueError, match="usd_per_hour"):
        budget.load_prices(bad)
    with pytest.raises(FileNotFoundError, match="columns"):
        budget.load_prices(tmp_path / "none.csv")


def test_run_cost():
    prices = budget.load_prices(pd.DataFrame(
        [("gpu", 2.0, 500, 100.0, "2026-11", "a quote")], columns=budget.PRICE_COLUMNS))
    cost = budget.run_cost(3, "gpu", prices, grid_g_co2_per_kwh=200, pue=1.0)
    assert cost == {"hours": 3.0, "usd": 6.0, "kwh": 1.5, "kg_co2": 0.3}
    with pytest.raises(ValueError, match="no price for 'tpu'"):
        budget.run_cost(1, "tpu", prices)
    with pytest.raises(ValueError, match="hours"):
        budget.run_cost(-1, "gpu", prices)


@pytest.mark.parametrize("value", [-1e20, 0, float("inf")])
def test_a_negative_or_empty_budget_is_refused(value):
    with pytest.raises(ValueError, match="budget_flops"):
        budget.compute_optimal(value)
    assert math.isfinite(budget.compute_optimal(1e20)["params"])


def test_activation_bytes_leaves_out_weights_and_the_batch():
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    dataset = torch.randn(1000, 16)
    x = dataset[:10]  # a view: its storage is the whole dataset
    got = budget.activation_bytes(lambda: net(x).sum(), exclude=[*net.parameters(), x])
    assert got == 4 * 10 * 32  # only the ReLU's output, which both ReLU and the second layer keep


def test_peak_memory_holds_weights_and_adam_states_and_names_its_parts():
    net = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = torch.optim.AdamW(net.parameters())
    x, y = torch.randn(64, 256), torch.randint(0, 10, (64,))

    def step():
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    peak = budget.peak_memory(step, "cpu", steps=2)
    weights = 4 * sum(p.numel() for p in net.parameters())
    assert set(peak.parts) >= {"parameters", "optimizer", "activations", "gradients"}
    assert peak.total == pytest.approx(sum(peak.parts.values()))
    assert peak.parts["parameters"] >= weights and peak.total >= 3 * weights  # weights + 2 moments
    with pytest.raises(ValueError, match="steps"):
        budget.peak_memory(step, "cpu", steps=0)


def test_encoder_parameters_of_the_packaged_model_match_a_count():
    from transformers import AutoModel

    from helpers import text

    model = AutoModel.from_pretrained(text.quick_model_path())
    expected = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    assert budget.encoder_parameters("minilm-l6") == expected
    assert 80e6 < budget.encoder_parameters("bert-base-uncased") < 90e6  # 110 M less 24 M embeddings
    with pytest.raises(ValueError, match="minilm-l6"):
        budget.encoder_parameters("gpt-5")


def test_course_workloads_cover_the_toc_and_plan_prices_them():
    from tools import runner

    stems = [p.stem for p in runner.toc_notebooks(runner.REPO_ROOT / "book" / "_toc.yml")]
    workloads = budget.course_workloads("full")
    assert [w.chapter for w in workloads] == stems
    assert all(w.flops >= 0 for w in workloads)
    bert = next(w for w in workloads if w.chapter == "04_bert_finetuning")
    assert bert.flops_per_example == budget.flops_6nd(budget.encoder_parameters("bert-base-uncased"), 128)
    prices = budget.load_prices()
    table = budget.plan(workloads, prices, mfu=0.5)
    assert len(table) == len(workloads) * len(prices)
    row = table[(table.chapter == "04_bert_finetuning") & (table.device == prices.index[0])].iloc[0]
    hours = bert.flops / (prices.iloc[0]["peak_tflops_16bit"] * 1e12 * 0.5) / 3600
    assert row["hours"] == pytest.approx(hours) and row["usd"] == pytest.approx(hours * prices.iloc[0]["usd_per_hour"])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        budget.plan(workloads, prices, mfu=0)
