"""Federated learning: client splits, FedAvg in plain PyTorch, and a real Flower federation.

Taught in ``notebooks/11a_federated_learning.ipynb``. The notebook writes FedAvg by hand with
these pieces, then runs the same model, data and local training on Flower: a SuperLink and
SuperNodes started as local processes on 127.0.0.1 by :class:`Federation` (the ClientApp and
ServerApp are in :mod:`helpers.flower_app`).

* :func:`dirichlet_split` gives each client a label mix drawn from Dirichlet(alpha): small
  ``alpha`` means each client sees few classes (non-IID), large ``alpha`` approaches IID.
* :func:`local_train` is one client's work; :func:`average_states` is the server's.
* :func:`fedavg` runs rounds of both; :func:`train_central` is the same training on pooled data.
* :class:`Federation` starts and stops the Flower processes; nothing it started outlives it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from . import data, env, process, train
from .batches import TensorLoader
from .models import SmallCNN

__all__ = ["fashion_tensors", "client_model", "iid_split", "dirichlet_split", "split",
           "label_counts", "local_train", "average_states", "clip_update", "fedavg",
           "train_central", "accuracy", "Federation", "FederationError", "tagged_processes",
           "free_port"]


# --- data and model, shared by the notebook and the Flower apps ---------------------------------

def fashion_tensors(n_train: int, n_test: int, seed: int = 0, profile: str = "quick",
                    n_val: int = 0) -> SimpleNamespace:
    """Fashion-MNIST as normalized float tensors ``[N, 1, 28, 28]``: ``n_train`` training images
    drawn with ``seed``, ``n_val`` more from the same draw for validation (``x_val``, ``y_val``)
    and the first ``n_test`` test images; mean and std from the training draw. Every client and the server call this with the same arguments, so they agree on the
    data without sending it anywhere (each client then keeps only its own part)."""

    (x_tr, y_tr), (x_te, y_te) = (data.load_fashion_mnist(s, profile=profile)
                                  for s in ("train", "test"))
    if not 0 < n_train + n_val <= len(x_tr) or n_val < 0 or not 0 < n_test <= len(x_te):
        raise ValueError(f"n_train={n_train} + n_val={n_val} and n_test={n_test} must be in "
                         f"1..{len(x_tr)} and 1..{len(x_te)}")
    order = np.random.default_rng(seed).permutation(len(x_tr))
    pick, val = order[:n_train], order[n_train: n_train + n_val]
    x_train = torch.tensor(x_tr[pick], dtype=torch.float32)[:, None] / 255
    x_test = torch.tensor(x_te[:n_test], dtype=torch.float32)[:, None] / 255
    x_val = torch.tensor(x_tr[val], dtype=torch.float32)[:, None] / 255
    mean, std = x_train.mean(), x_train.std()
    return SimpleNamespace(x_train=(x_train - mean) / std, y_train=torch.tensor(y_tr[pick]),
                           x_val=(x_val - mean) / std, y_val=torch.tensor(y_tr[val]),
                           x_test=(x_test - mean) / std, y_test=torch.tensor(y_te[:n_test]))


def client_model(width: int = 8) -> nn.Module:
    """The course's ``SmallCNN`` (chapter 03) without BatchNorm: averaging BatchNorm's running
    statistics across clients with different label mixes is its own problem (FedBN)."""

    return SmallCNN(num_classes=10, in_channels=1, width=width, batch_norm=False)


# --- who holds what -----------------------------------------------------------------------------

def iid_split(n: int, num_clients: int, seed: int = 0) -> list[np.ndarray]:
    """Indices ``0..n-1`` shuffled and dealt into ``num_clients`` near-equal parts."""
    if num_clients < 1 or n < num_clients:
        raise ValueError(f"cannot deal {n} examples to {num_clients} clients: need "
                         f"1 <= num_clients <= n")
    return [np.sort(p) for p in np.array_split(np.random.default_rng(seed).permutation(n),
                                               num_clients)]


def dirichlet_split(labels: Sequence[int] | np.ndarray | torch.Tensor, num_clients: int,
                    alpha: float, seed: int = 0, min_size: int = 1, max_tries: int = 100
                    ) -> list[np.ndarray]:
    """Non-IID client indices: for each class, the shares of its examples going to each client
    are drawn from Dirichlet(``alpha``, ..., ``alpha``). Every example goes to exactly one
    client. Draws in which a client gets fewer than ``min_size`` examples are redrawn (up to
    ``max_tries`` times); a split that cannot give everyone data is an error, not an empty
    client."""
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha}: small alpha (0.1) gives "
                         "each client few classes, large alpha (100) is close to IID")
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if num_clients < 1 or len(y) < num_clients * min_size:
        raise ValueError(f"cannot give {num_clients} clients at least {min_size} of {len(y)} "
                         "examples each")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise ValueError(f"after {max_tries} draws some client still had fewer than {min_size} "
                     f"examples (alpha={alpha}, {num_clients} clients): raise alpha or use fewer "
                     "clients")


def split(labels: Sequence[int] | np.ndarray | torch.Tensor, num_clients: int,
          alpha: float | None, seed: int = 0) -> list[np.ndarray]:
    """:func:`iid_split` when ``alpha`` is ``None`` (or infinite), else :func:`dirichlet_split`."""
    if alpha is None or alpha == float("inf"):
        return iid_split(len(labels), num_clients, seed)
    return dirichlet_split(labels, num_clients, alpha, seed)


def label_counts(labels: Sequence[int] | np.ndarray | torch.Tensor, parts: Sequence[np.ndarray],
                 num_classes: int = 10) -> np.ndarray:
    """``[clients, classes]`` counts: what each client holds (plot it as stacked bars)."""
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    return np.stack([np.bincount(y[p], minlength=num_classes) for p in parts])


# --- one client, one server ---------------------------------------------------------------------

def local_train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
                batch_size: int = 32, seed: int = 0, momentum: float = 0.9,
                client: int | str = "") -> float:
    """A client's update: ``epochs`` passes of SGD with momentum over its own ``x, y`` (a fresh
    optimizer each round, as in FedAvg). Returns the mean training loss of the last epoch."""
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"client {client!s} has {len(x)} examples and {len(y)} labels: every "
                         "client needs data (redraw the split with a larger alpha or fewer "
                         "clients, or leave this client out)")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    device = next(net.parameters()).device
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total, seen = 0.0, 0
        for start in range(0, len(x), batch_size):
            batch = order[start: start + batch_size]
            xb, yb = x[batch].to(device), y[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(net(xb), yb)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(batch), seen + len(batch)
    return total / seen


def average_states(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]
                   ) -> dict[str, torch.Tensor]:
    """FedAvg's server step: the average of the clients' weights, each client weighted by its
    number of examples (``weights``)."""
    if not states or len(states) != len(weights):
        raise ValueError(f"need one weight per state, got {len(states)} states and "
                         f"{len(weights)} weights")
    w = torch.tensor(weights, dtype=torch.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    w = w / w.sum()
    return {k: sum(wi * s[k].double() for wi, s in zip(w, states, strict=True)).to(states[0][k].dtype)
            for k in states[0]}


def clip_update(update: dict[str, torch.Tensor], clip: float) -> dict[str, torch.Tensor]:
    """DP-FedAvg's client-side step on one update (new weights minus global weights): scaled
    to L2 norm at most ``clip``, so no client can move the average by more than ``clip / n``.
    The Gaussian noise is added once, to the average (:func:`fedavg`)."""
    if clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")
    norm = torch.sqrt(sum((v.double() ** 2).sum() for v in update.values()))
    scale = min(1.0, clip / (float(norm) + 1e-12))
    return {k: v * scale for k, v in update.items()}


def clip_and_noise(update: dict[str, torch.Tensor], clip: float, noise_std: float,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Deprecated since the review of chapter 11a: use :func:`clip_update`, and add the noise
    once to the average as :func:`fedavg` does. Kept, with its old behaviour (clip, then
    Gaussian noise of ``noise_std`` on every coordinate), so code written against it runs."""
    warnings.warn("federated.clip_and_noise is deprecated: call federated.clip_update(update, "
                  "clip) and add the Gaussian noise once, to the average (see fedavg)",
                  DeprecationWarning, stacklevel=2)
    return {k: v + noise_std * torch.randn(v.shape, generator=generator, dtype=v.dtype)
            for k, v in clip_update(update, clip).items()}


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``x`` classified as ``y``: ``train.loss_and_accuracy`` over tensors in memory."""
    device = next(net.parameters()).device
    return train.loss_and_accuracy(net, TensorLoader(x, y, batch_size), device)["acc"]


def fedavg(model_fn: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor,
           parts: Sequence[np.ndarray], rounds: int, local_epochs: int, lr: float,
           batch_size: int = 32, seed: int = 0, dp_clip: float | None = None,
           noise_multiplier: float = 0.0,
           evaluate: Callable[[nn.Module], float] | None = None, progress: bool = False
           ) -> tuple[nn.Module, list[dict[str, float]]]:
    """FedAvg (McMahan et al. 2017) with every client taking part in every round: each client
    starts from the global weights, trains ``local_epochs`` on its part, and the server averages
    the results weighted by examples. With ``dp_clip`` each client's update is clipped and the
    average gets Gaussian noise (DP-FedAvg, McMahan et al. 2018). Returns the global model and
    one row per round (``round``, ``train_loss``, and ``accuracy`` when ``evaluate`` is given)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    for k, p in enumerate(parts):
        if len(p) == 0:
            raise ValueError(f"client {k} has no data: redraw the split with a larger alpha or "
                             "fewer clients, or leave this client out")
    torch.manual_seed(seed)
    net = model_fn()
    generator = torch.Generator().manual_seed(seed + 1)
    history = []
    for r in env.progress(range(1, rounds + 1), "FedAvg rounds", progress, leave=False):
        global_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        states, sizes, losses = [], [], []
        for k, p in enumerate(parts):
            net.load_state_dict(global_state)
            losses.append(local_train(net, x[p], y[p], local_epochs, lr, batch_size,
                                      seed=seed * 10_000 + r * 100 + k, client=k))
            state = {n: v.detach().clone() for n, v in net.state_dict().items()}
            if dp_clip is not None:
                update = {n: state[n] - global_state[n] for n in state}
                update = clip_update(update, dp_clip)
                state = {n: global_state[n] + update[n] for n in state}
            states.append(state)
            sizes.append(len(p))
        if dp_clip is not None:  # equal weights, noise once on the average (central DP)
            new = average_states(states, [1.0] * len(states))
            noise_std = noise_multiplier * dp_clip / len(states)
            new = {n: v + noise_std * torch.randn(v.shape, generator=generator, dtype=v.dtype)
                   for n, v in new.items()}
        else:
            new = average_states(states, sizes)
        net.load_state_dict(new)
        row = {"round": r, "train_loss": float(np.average(losses, weights=sizes))}
        if evaluate is not None:
            row["accuracy"] = evaluate(net)
        history.append(row)
    return net, history


def train_central(model_fn: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor,
                  epochs: int, lr: float, batch_size: int = 32, seed: int = 0) -> nn.Module:
    """The baseline: the same model and local training on all the data pooled in one place."""
    torch.manual_seed(seed)
    net = model_fn()
    for e in range(epochs):
        local_train(net, x, y, 1, lr, batch_size, seed=seed * 10_000 + e, client="central")
    return net


# --- a real Flower federation on this machine ----------------------------------------------------

class FederationError(process.ProcessError):
    """A Flower process failed to start or a run failed; the message ends with its log's tail."""


_TAG = "DL_HANDBOOK_FLOWER_TAG"


free_port = process.free_port  # kept here under its old name: chapter 11a and scale used it


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def tagged_processes(tag: str) -> list[int]:
    """PIDs of live processes whose environment carries ``tag`` (Linux ``/proc``; zombies have
    no environment and are not counted). :class:`Federation` tags everything it starts, so this
    finds its grandchildren too (the SuperExec, ServerApp and ClientApp processes)."""
    needle = f"{_TAG}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Federation:
    """A Flower SuperLink and ``num_nodes`` SuperNodes as local processes on 127.0.0.1, for
    ``with`` blocks::

        with Federation(workdir, num_nodes=3) as fed:
            result = fed.run(app_dir, {"num-server-rounds": 3})

    Node ``k`` gets the node config ``partition-id=k num-partitions=num_nodes``. Every process
    (and every process those start) carries a tag in its environment; leaving the block stops
    them all, SIGTERM then SIGKILL, so nothing outlives it (``tagged_processes(fed.tag)`` is
    empty afterwards). TLS is off: loopback only, for teaching, never across machines.
    """

    def __init__(self, workdir: str | Path, num_nodes: int, start_timeout: float = 60.0) -> None:
        if num_nodes < 1:
            raise ValueError(f"num_nodes must be at least 1, got {num_nodes}")
        self.workdir = Path(workdir)
        self.num_nodes = num_nodes
        self.start_timeout = start_timeout
        self.tag = uuid.uuid4().hex
        self.port = 0
        self.superlink: process.LocalProcess | None = None
        self.nodes: list[process.LocalProcess | None] = []
        self.env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)  # flower-superexec must be on PATH
        self.env.update({_TAG: self.tag, "FLWR_HOME": str(self.workdir / "flwr-home"),
                         "PATH": bin_dir + os.pathsep + self.env.get("PATH", ""),
                         "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})

    def _start(self, args: list[str], log_name: str, port: int) -> process.LocalProcess:
        """Start one Flower program (from this environment's bin folder), ready once ``port``
        accepts connections; a failure is a FederationError that ends with its log."""
        proc = process.LocalProcess([str(Path(sys.executable).parent / args[0]), *args[1:]],
                                    self.workdir / log_name, ready=lambda: process.port_open(port),
                                    env=self.env, cwd=self.workdir, name=args[0])
        try:
            return proc.start(self.start_timeout)
        except process.ProcessError as err:
            raise FederationError(str(err)) from err

    def __enter__(self) -> Federation:
        self.workdir.mkdir(parents=True, exist_ok=True)
        home = self.workdir / "flwr-home"
        home.mkdir(exist_ok=True)
        self.port = free_port()
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n')
        try:
            self.superlink = self._start(
                ["flower-superlink", "--insecure", "--port", str(self.port),
                 "--disable-runtime-dependency-installation"], "superlink.log", self.port)
            for k in range(self.num_nodes):
                node_port = free_port()
                self.nodes.append(None)  # stop() sees the slot even if the start fails
                self.nodes[k] = self._start(
                    ["flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{self.port}",
                     "--port", str(node_port),
                     "--node-config", f"partition-id={k} num-partitions={self.num_nodes}"],
                    f"supernode-{k}.log", node_port)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop_node(self, k: int, sig: int = signal.SIGTERM) -> None:
        """Take SuperNode ``k`` (and its ClientApps) away, as a device leaving mid-round.
        SIGTERM lets it tell the SuperLink it is going; SIGKILL is a crash (then the SuperLink
        notices only when its heartbeat is missed, after about a minute)."""
        node = self.nodes[k]
        if node is None or not node.running:
            raise ValueError(f"SuperNode {k} is not running")
        os.killpg(node.process.pid, sig)
        node.process.wait(timeout=30)
        self.nodes[k] = None

    def run(self, app_dir: str | Path, config: dict[str, Any], result: str | Path,
            timeout: float = 600.0, on_progress: Callable[[dict[str, Any]], None] | None = None
            ) -> dict[str, Any]:
        """``flwr run app_dir local`` with ``config`` overriding the app's run config; waits for
        the ServerApp to write ``result`` (JSON, rewritten after every round with
        ``"done": false`` until the end), calling ``on_progress`` with each new version."""
        result = Path(result)
        result.unlink(missing_ok=True)
        overrides = " ".join(f"{k}={json.dumps(v)}" for k, v in config.items())
        log = self.workdir / "flwr-run.log"
        with open(log, "w") as out:
            submitted = subprocess.run(
                [str(Path(sys.executable).parent / "flwr"), "run", str(app_dir), "local",
                 "--run-config", overrides], stdout=out, stderr=subprocess.STDOUT, env=self.env,
                cwd=self.workdir, timeout=120)
        if submitted.returncode != 0:
            raise FederationError(f"flwr run failed (exit {submitted.returncode}):\n{_tail(log)}")
        deadline, seen = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.superlink is None or not self.superlink.running:
                raise FederationError("the SuperLink stopped during the run:\n"
                                      f"{_tail(self.workdir / 'superlink.log')}")
            try:
                text = result.read_text()
                state = json.loads(text)
            except (OSError, ValueError):
                time.sleep(0.2)
                continue
            if text != seen:
                seen = text
                if on_progress is not None:
                    on_progress(state)
                if state.get("error"):
                    raise FederationError(f"the ServerApp failed: {state['error']}")
                if state.get("done"):
                    return state
            time.sleep(0.2)
        raise FederationError(f"no result after {timeout:.0f} s:\n"
                              f"{_tail(self.workdir / 'superlink.log')}")

    def stop(self, grace: float = 10.0) -> None:
        """Stop every process this federation started, children included."""
        for proc in [*self.nodes, self.superlink]:  # each one's whole process group
            if proc is not None:
                proc.stop(grace)
        # Grandchildren that started their own sessions: found by the tag, stopped the same way.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = tagged_processes(self.tag)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + grace / 2
            while tagged_processes(self.tag) and time.monotonic() < end:
                time.sleep(0.1)
        self.nodes = [None] * len(self.nodes)
        self.superlink = None
