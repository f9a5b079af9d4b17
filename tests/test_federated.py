import json

import numpy as np
import pytest
import torch
from torch import nn

from helpers import federated, flower_app


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan")])
def test_an_alpha_that_is_not_positive_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        federated.dirichlet_split(np.zeros(10, int), 2, alpha)


def test_a_dirichlet_split_deals_every_example_once_and_small_alpha_concentrates_labels():
    labels = np.repeat(np.arange(10), 100)
    for alpha in (0.1, 100.0):
        parts = federated.dirichlet_split(labels, 5, alpha, seed=0)
        assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    counts = {a: federated.label_counts(labels, federated.dirichlet_split(labels, 5, a, seed=0))
              for a in (0.1, 100.0)}
    top_share = {a: (c.max(1) / c.sum(1)).mean() for a, c in counts.items()}
    assert top_share[0.1] > 0.4 > 0.2 > top_share[100.0]  # 0.1 = chance for 10 classes


def test_a_split_that_cannot_give_every_client_data_is_an_error():
    with pytest.raises(ValueError, match="raise alpha or use fewer clients"):
        federated.dirichlet_split(np.arange(2).repeat(3), 6, 0.01, seed=0, max_tries=5)
    with pytest.raises(ValueError, match="cannot give 5 clients"):
        federated.dirichlet_split(np.zeros(3, int), 5, 1.0)


def test_a_client_with_no_data_is_an_error_naming_the_client():
    net = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="client 3 has 0 examples"):
        federated.local_train(net, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 1, 0.1,
                              client=3)
    parts = [np.arange(4), np.array([], dtype=int)]
    with pytest.raises(ValueError, match="client 1 has no data"):
        federated.fedavg(lambda: nn.Linear(4, 2), torch.randn(4, 4), torch.zeros(4, dtype=torch.long),
                         parts, 1, 1, 0.1)


def test_average_states_weights_by_examples():
    a, b = {"w": torch.tensor([0.0, 4.0])}, {"w": torch.tensor([4.0, 0.0])}
    assert torch.allclose(federated.average_states([a, b], [3, 1])["w"], torch.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match="one weight per state"):
        federated.average_states([a, b], [1])


def test_clipping_bounds_the_update_norm():
    update = {"a": torch.full((3,), 10.0), "b": torch.full((2, 2), -10.0)}
    clipped = federated.clip_update(update, clip=1.0)
    norm = torch.sqrt(sum((v ** 2).sum() for v in clipped.values()))
    assert norm == pytest.approx(1.0, rel=1e-5)


def test_fedavg_with_one_client_is_local_training_round_after_round():
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    make = lambda: nn.Linear(4, 2)  # noqa: E731
    net, history = federated.fedavg(make, x, y, [np.arange(40)], rounds=2, local_epochs=1, lr=0.1,
                                    seed=3)
    torch.manual_seed(3)
    ref = make()
    for r in (1, 2):
        federated.local_train(ref, x, y, 1, 0.1, seed=3 * 10_000 + r * 100)
    assert all(torch.allclose(p, q) for p, q in zip(net.parameters(), ref.parameters(), strict=True))
    assert [h["round"] for h in history] == [1, 2]


def test_the_flower_app_refuses_unknown_config_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown run-config keys"):
        flower_app.write_app(tmp_path / "app", rounds=3)


def test_the_server_waits_for_its_nodes_and_saves_whole_files(tmp_path):
    class Grid:  # a node connects at each look
        def __init__(self):
            self.looks = 0

        def get_node_ids(self):
            self.looks += 1
            return range(self.looks)

    assert flower_app._wait_for_nodes(Grid(), 3) >= 3
    with pytest.raises(RuntimeError, match="fewer than 5 SuperNodes after 0.1 s"):
        flower_app._wait_for_nodes(type("Empty", (), {"get_node_ids": lambda self: []})(), 5, limit_s=0.1)
    out = tmp_path / "result.json"
    flower_app._save_state({"done": True, "rounds": [{"round": 0}]}, out)
    assert json.loads(out.read_text()) == {"done": True, "rounds": [{"round": 0}]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no temporary file left


def test_a_flower_federation_runs_its_rounds_and_leaves_no_process_behind(tmp_path):
    app = flower_app.write_app(tmp_path / "app")
    with federated.Federation(tmp_path / "fed", num_nodes=2) as fed:
        tag = fed.tag
        assert len(federated.tagged_processes(tag)) >= 3  # SuperLink, 2 SuperNodes (+ children)
        result = fed.run(app, {"num-server-rounds": 1, "n-train": 200, "n-test": 100,
                               "min-nodes": 2, "result-path": str(tmp_path / "result.json")},
                         tmp_path / "result.json", timeout=240)
    assert result["done"] and [r["round"] for r in result["rounds"]] == [0, 1]
    assert result["rounds"][1]["replies"] == 2 and result["rounds"][1]["failures"] == 0
    assert federated.tagged_processes(tag) == []


def test_fashion_tensors_are_normalized_and_validation_is_disjoint():
    d = federated.fashion_tensors(500, 100, seed=1, n_val=200)
    assert d.x_train.shape == (500, 1, 28, 28) and len(d.x_val) == 200 and len(d.y_test) == 100
    assert abs(d.x_train.mean().item()) < 1e-4 and abs(d.x_train.std().item() - 1) < 1e-3
    assert not any(torch.equal(d.x_train[0], v) for v in d.x_val)
    with pytest.raises(ValueError, match="must be in"):
        federated.fashion_tensors(60_000, 10, n_val=1)


def test_dp_fedavg_clips_adds_noise_and_reports_each_round():
    torch.manual_seed(0)
    x, y = torch.randn(60, 4), torch.randint(0, 2, (60,))
    parts = federated.split(y, 3, None, seed=0)
    runs = [federated.fedavg(lambda: nn.Linear(4, 2), x, y, parts, 2, 1, 0.5, seed=0, dp_clip=0.01,
                             noise_multiplier=z, evaluate=lambda n: federated.accuracy(n, x, y))
            for z in (0.0, 10.0)]
    torch.manual_seed(0)
    start = nn.Linear(4, 2).state_dict()
    moved = torch.sqrt(sum(((runs[0][0].state_dict()[k] - start[k]) ** 2).sum() for k in start))
    assert moved <= 2 * 0.01 + 1e-6  # two rounds, each an average of updates clipped to 0.01
    assert not torch.allclose(runs[0][0].weight, runs[1][0].weight)  # the noise arrived
    assert [set(h) for h in runs[1][1]] == [{"round", "train_loss", "accuracy"}] * 2
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        federated.fedavg(lambda: nn.Linear(4, 2), x, y, parts, 0, 1, 0.1)


def test_a_federation_refuses_nonsense_and_a_node_cannot_stop_twice(tmp_path):
    with pytest.raises(ValueError, match="num_nodes must be at least 1"):
        federated.Federation(tmp_path, num_nodes=0)
    fed = federated.Federation(tmp_path, num_nodes=1)
    fed.nodes = [None]
    with pytest.raises(ValueError, match="SuperNode 0 is not running"):
        fed.stop_node(0)


def test_clip_and_noise_is_deprecated_but_still_clips_then_adds_noise():
    update = {"w": torch.full((4,), 3.0)}  # norm 6
    with pytest.warns(DeprecationWarning, match="clip_update"):
        out = federated.clip_and_noise(update, clip=1.0, noise_std=0.0)
    assert torch.allclose(out["w"], federated.clip_update(update, 1.0)["w"])
