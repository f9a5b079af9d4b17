"""The course's Flower App: a ServerApp running FedAvg and a ClientApp training chapter 11a's
model on its own part of Fashion-MNIST, with the same code as the plain-PyTorch FedAvg in
:mod:`helpers.federated` (no fork: the same data draw, split, model, local training and seeds).

Taught in ``notebooks/11a_federated_learning.ipynb``. :func:`write_app` writes the small Flower
App directory (``pyproject.toml`` naming these two objects) that ``flwr run`` bundles and sends
to the SuperLink; the processes that run them are started by :class:`helpers.federated.Federation`.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from . import federated

__all__ = ["client", "server", "write_app", "RUN_CONFIG"]

# The run configuration and its defaults (``flwr run --run-config`` overrides any of them).
RUN_CONFIG: dict[str, Any] = {
    "num-server-rounds": 3, "local-epochs": 1, "lr": 0.05, "batch-size": 32, "seed": 0,
    "n-train": 3000, "n-test": 2000, "width": 8, "partitioning": "iid", "alpha": 1.0,
    "round-timeout": 60.0, "min-nodes": 1, "result-path": "",
}


def _client_part(cfg: Any, partition: int, num_partitions: int) -> tuple[Any, Any]:
    d = federated.fashion_tensors(int(cfg["n-train"]), int(cfg["n-test"]), int(cfg["seed"]))
    alpha = None if cfg["partitioning"] == "iid" else float(cfg["alpha"])
    part = federated.split(d.y_train, num_partitions, alpha, int(cfg["seed"]))[partition]
    return d.x_train[part], d.y_train[part]


def _make_client() -> Any:
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        cfg = context.run_config
        k = int(context.node_config["partition-id"])
        x, y = _client_part(cfg, k, int(context.node_config["num-partitions"]))
        torch.set_num_threads(1)
        net = federated.client_model(int(cfg["width"]))
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        r = int(msg.content["config"]["server-round"])
        loss = federated.local_train(net, x, y, int(cfg["local-epochs"]), float(cfg["lr"]),
                                     int(cfg["batch-size"]),
                                     seed=int(cfg["seed"]) * 10_000 + r * 100 + k, client=k)
        return Message(RecordDict({"arrays": ArrayRecord(net.state_dict()),
                                   "metrics": MetricRecord({"train_loss": loss,
                                                            "num-examples": len(x)})}),
                       reply_to=msg)

    return app


def _counting_fedavg(**kwargs: Any) -> Any:
    """Flower's FedAvg strategy, noting for each round how many clients replied and how many
    failed (``strategy.replies[round] = (ok, failed)``); ``kwargs`` go to ``FedAvg``."""
    from flwr.serverapp.strategy import FedAvg

    class CountingFedAvg(FedAvg):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.replies: dict[int, tuple[int, int]] = {}

        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            replies = list(replies)
            ok = sum(not m.has_error() for m in replies)
            self.replies[server_round] = (ok, len(replies) - ok)
            return super().aggregate_train(server_round, replies)

    return CountingFedAvg(**kwargs)


def _save_state(state: dict[str, Any], out: Path) -> None:
    """Write ``state`` as JSON to ``out`` through a temporary file, so that a reader polling
    ``out`` (the notebook) never sees half a file."""
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(out)


def _wait_for_nodes(grid: Any, min_nodes: int, limit_s: float = 60.0) -> int:
    """Wait until at least ``min_nodes`` SuperNodes are connected; return how many are.

    Raises:
        RuntimeError: fewer than ``min_nodes`` after ``limit_s`` seconds.
    """
    start = time.monotonic()
    while len(list(grid.get_node_ids())) < min_nodes:
        if time.monotonic() - start > limit_s:
            raise RuntimeError(f"fewer than {min_nodes} SuperNodes after {limit_s:g} s")
        time.sleep(0.2)
    return len(list(grid.get_node_ids()))


def _run_fedavg(grid: Any, cfg: Any, state: dict[str, Any], out: Path) -> None:
    """FedAvg for ``num-server-rounds`` rounds from the seeded initial model; after each round
    the global model's test accuracy and the round's replies and failures are appended to
    ``state["rounds"]`` and saved to ``out``."""
    from flwr.app import ArrayRecord, ConfigRecord, MetricRecord

    d = federated.fashion_tensors(int(cfg["n-train"]), int(cfg["n-test"]), int(cfg["seed"]))
    torch.manual_seed(int(cfg["seed"]))
    net = federated.client_model(int(cfg["width"]))
    strategy = _counting_fedavg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=1,
                                min_available_nodes=1)
    t0 = time.monotonic()

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        net.load_state_dict(arrays.to_torch_state_dict())
        acc = federated.accuracy(net, d.x_test, d.y_test)
        ok, failed = strategy.replies.get(server_round, (0, 0))
        state["rounds"].append({"round": server_round, "accuracy": acc, "replies": ok,
                                "failures": failed, "seconds": round(time.monotonic() - t0, 2)})
        _save_state(state, out)
        return MetricRecord({"accuracy": acc})

    strategy.start(grid=grid, initial_arrays=ArrayRecord(net.state_dict()),
                   num_rounds=int(cfg["num-server-rounds"]), timeout=float(cfg["round-timeout"]),
                   train_config=ConfigRecord(), evaluate_fn=evaluate)


def _make_server() -> Any:
    """The ServerApp: wait for the SuperNodes, run FedAvg (:func:`_run_fedavg`), and leave the
    result, or the error, in the run config's ``result-path`` as JSON."""
    from flwr.app import Context
    from flwr.serverapp import Grid, ServerApp

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = context.run_config
        out = Path(str(cfg["result-path"]))
        state: dict[str, Any] = {"done": False, "rounds": [], "config": dict(cfg)}
        try:
            state["nodes_at_start"] = _wait_for_nodes(grid, int(cfg["min-nodes"]))
            _run_fedavg(grid, cfg, state, out)
            state["done"] = True
        except Exception:  # the notebook reads the failure instead of waiting for it
            state["error"] = traceback.format_exc(limit=5)
        _save_state(state, out)

    return app


client = _make_client()
server = _make_server()

_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "handbook-fedavg"
version = "1.0.0"
description = "The deep-learning handbook's FedAvg on Fashion-MNIST (chapter 11a)"
license = "Apache-2.0"
dependencies = []  # the course's environment already has them (dl-handbook[course])

[tool.flwr.app]
publisher = "dl-handbook"

[tool.flwr.app.components]
serverapp = "handbook_fedavg:server"
clientapp = "handbook_fedavg:client"

[tool.flwr.app.config]
{config}
"""


def write_app(folder: str | Path, **config: Any) -> Path:
    """Write the Flower App directory: ``pyproject.toml`` (its run config from
    :data:`RUN_CONFIG`, updated with ``config``) and ``handbook_fedavg.py``, which only imports
    :data:`client` and :data:`server` from this module. Returns the folder."""
    unknown = sorted(set(config) - set(RUN_CONFIG))
    if unknown:
        raise ValueError(f"unknown run-config keys {unknown}; known: {sorted(RUN_CONFIG)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values = {**RUN_CONFIG, **config}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    (folder / "pyproject.toml").write_text(_PYPROJECT.format(config=lines))
    (folder / "handbook_fedavg.py").write_text(
        '"""The Flower App\'s two components, from the course\'s helpers (no copy)."""\n'
        "from helpers import flower_app\n\nclient = flower_app.client\nserver = flower_app.server\n")
    return folder
