"""Thin helpers around Optuna for the tuning chapter.

Introduced in ``notebooks/05_hyperparameter_tuning.ipynb``.

* ``storage_url``: a SQLite file in the course cache by default; PostgreSQL or MySQL URLs
  when one machine is not enough. A bad URL is a clear error.
* ``open_storage``: a journal file for several processes on one machine, or a database with
  a heartbeat, so that the trial of a worker that dies is failed and run again.
* ``SearchSpace``: a validated description of what to tune; ``suggest`` draws a trial's
  values, ``grid`` gives the grid for Optuna's ``GridSampler``.
* ``FashionObjective``: the chapter-03 CNN on a Fashion-MNIST subset, trained with
  ``helpers.train.fit`` on the device you give it (else the best one here); reports
  validation accuracy per epoch so pruners can stop bad trials. A trial whose training
  diverges scores NaN, which Optuna records as a failed trial; the study goes on.
* ``epochs_used``: what a search cost, counted in training epochs (pruned trials included).
* ``on_edge``: which parameters of a trial sit on the edge of the search box (widen it there).
* ``best_so_far``: a study's running best, trial by trial (failed trials count as no gain).
* ``SurrogateObjective``: a smoothed average of measured trials, a cheap stand-in for the
  expensive objective, so that samplers can be compared over many studies (and with
  irrelevant parameters added).
* ``python -m helpers.tune worker ...``: one worker process of a shared study, running exactly
  the notebook's objective (search space, data sizes, epochs, seed, profile, device).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import env, paths, train
from .data import load_fashion_mnist
from .models import SmallCNN
from .scale import check_database
from .train import DivergenceError, TensorLoader, loss_and_accuracy

__all__ = ["storage_url", "open_storage", "SearchSpace", "FashionObjective", "epochs_used",
           "on_edge", "best_so_far", "SurrogateObjective", "run_worker", "main"]

_BACKENDS = ("sqlite", "postgresql", "mysql")
logger = logging.getLogger(__name__)


def storage_url(url: str | None = None, study: str = "course") -> str:
    """An Optuna storage URL: ``url`` checked, or a SQLite file in the course cache.

    Raises:
        ValueError: ``url`` is not a database URL Optuna can use; the message shows the forms.
    """
    if url is None:
        return f"sqlite:///{paths.cache_dir('optuna') / f'{study}.db'}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    forms = ("sqlite:///path/to/file.db, postgresql://user:password@host:5432/dbname, "
             "mysql+pymysql://user:password@host/dbname")
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as err:
        raise ValueError(f"{url!r} is not a database URL; use one of: {forms}") from err
    if backend not in _BACKENDS:
        raise ValueError(f"storage backend {backend!r} is not supported for a shared study; "
                         f"use one of: {forms}")
    return url


def open_storage(spec: str, heartbeat_s: int | None = None, max_retry: int = 1) -> Any:
    """An Optuna storage: a journal file, or a database with an optional heartbeat.

    * ``journal:PATH`` (or a path ending in ``.log``): Optuna's ``JournalStorage`` in one
      file, the recommended way for several processes on *one* machine (SQLite locks).
    * A database URL (see ``storage_url``): ``RDBStorage``. With ``heartbeat_s`` every running
      trial writes a heartbeat; one silent for ``2 * heartbeat_s`` (its worker was killed) is
      marked failed and, by ``RetryHeartbeatStaleTrialCallback``, queued again up to
      ``max_retry`` times. Optuna 5's journal storage has no heartbeat: use a database where
      workers can die (preemptible machines).

    Raises:
        ValueError: a bad URL, or a heartbeat asked of a journal file.
        ConnectionError: a database server that does not answer (host and port named).
    """
    import optuna

    if spec.startswith("journal:") or spec.endswith(".log"):
        if heartbeat_s is not None:
            raise ValueError("a journal file has no heartbeat in Optuna 5; for heartbeat_s use "
                             "a database URL such as sqlite:///path/to/file.db")
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(spec.removeprefix("journal:")))
    url = storage_url(spec)
    if not url.startswith("sqlite"):  # a server: fail within seconds, naming host and port
        check_database(url)
    if heartbeat_s is None:
        return optuna.storages.RDBStorage(url)
    with warnings.catch_warnings():  # Optuna marks the heartbeat API "experimental" since 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_s, grace_period=2 * heartbeat_s,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry))


def epochs_used(trials: Iterable[Any]) -> int:
    """Training epochs a set of trials cost: one per reported value (a pruned trial counts
    the epochs it ran before it was stopped)."""
    return sum(len(t.intermediate_values) for t in trials)


@dataclass(frozen=True)
class SearchSpace:
    """What to tune: name -> ``("log", low, high)``, ``("float", low, high)``,
    ``("int", low, high)`` or ``("cat", [choices])``."""

    params: dict[str, tuple]

    def __post_init__(self) -> None:
        if not self.params:
            raise ValueError("the search space is empty: give at least one parameter")
        for name, spec in self.params.items():
            kind = spec[0]
            if kind == "cat":
                if len(spec) != 2 or not list(spec[1]):
                    raise ValueError(f"{name}: a categorical parameter needs a non-empty list "
                                     f"of choices, got {spec!r}")
            elif kind in ("log", "float", "int"):
                low, high = spec[1], spec[2]
                if not low <= high:
                    raise ValueError(f"{name}: low {low} > high {high}: no valid values")
                if kind == "log" and low <= 0:
                    raise ValueError(f"{name}: a log-scale range needs low > 0, got {low}")
            else:
                raise ValueError(f"{name}: unknown kind {kind!r}; use log, float, int or cat")

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw this trial's values."""
        out = {}
        for name, spec in self.params.items():
            kind = spec[0]
            if kind == "cat":
                out[name] = trial.suggest_categorical(name, list(spec[1]))
            elif kind == "int":
                out[name] = trial.suggest_int(name, spec[1], spec[2])
            else:
                out[name] = trial.suggest_float(name, spec[1], spec[2], log=kind == "log")
        return out

    def to_json(self) -> str:
        """The space as JSON, e.g. for a worker's ``--space``."""
        return json.dumps(self.params)

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        """The space back from ``to_json``; a malformed text is a clear error."""
        try:
            params = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"the search space is not JSON ({err}): {text[:80]!r}") from err
        if not isinstance(params, dict):
            raise ValueError(f"the search space must be a JSON object, got {text[:80]!r}")
        return cls({k: tuple(v) for k, v in params.items()})

    def grid(self, points: int) -> dict[str, list[Any]]:
        """A grid with ``points`` values per numeric parameter (log-spaced for log ones)."""
        grid: dict[str, list[Any]] = {}
        for name, spec in self.params.items():
            kind = spec[0]
            if kind == "cat":
                grid[name] = list(spec[1])
            elif kind == "log":
                grid[name] = [float(v) for v in np.geomspace(spec[1], spec[2], points)]
            elif kind == "int":
                grid[name] = sorted({int(round(v)) for v in np.linspace(spec[1], spec[2], points)})
            else:
                grid[name] = [float(v) for v in np.linspace(spec[1], spec[2], points)]
        return grid


def _unit(value: float, spec: tuple) -> float:
    """Where ``value`` lies in a numeric range, from 0 (low end) to 1 (high end); log-scaled
    for a ``"log"`` parameter."""
    kind, low, high = spec[0], float(spec[1]), float(spec[2])
    if high == low:
        return 0.5
    if kind == "log":
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def on_edge(params: dict[str, Any], space: SearchSpace, margin: float = 0.05) -> dict[str, str]:
    """For each numeric parameter of ``space``: ``"low"`` or ``"high"`` when ``params`` puts it
    within ``margin`` of the box's width (on the log scale for a log parameter) of that end,
    else ``""``. A best trial on an edge says the optimum may lie outside the box: widen it
    on that side and search again (or say why not). Categorical parameters are left out."""
    out = {}
    for name, spec in space.params.items():
        if spec[0] == "cat":
            continue
        where = _unit(float(params[name]), spec)
        out[name] = "low" if where <= margin else "high" if where >= 1 - margin else ""
    return out


def best_so_far(values: Iterable[float | None]) -> np.ndarray:
    """The running best (maximum) of a study's trial values in trial order. A failed or pruned
    trial (``None`` or NaN) adds nothing; before the first value the best is NaN."""
    out, best = [], -math.inf
    for v in values:
        if v is not None and math.isfinite(v):
            best = max(best, float(v))
        out.append(best if math.isfinite(best) else math.nan)
    return np.array(out)


class SurrogateObjective:
    """A cheap stand-in for an expensive objective, fitted to trials that were really run (a
    surrogate benchmark, Eggensperger et al., 2015): at any point, the average of the measured
    values weighted by a Gaussian of their distance (Nadaraya-Watson kernel regression, on the
    unit box, log-scaled where the parameter is). Its values never leave the range measured, so a
    sampler cannot win by finding a model's artifact; the widths, one per parameter, are chosen
    by leave-one-out error among ``widths``.

    ``trials``: (params, value) pairs measured over ``space`` (failed ones, value None or NaN,
    are left out; repeats of the same parameters count once). Called as an Optuna objective it
    suggests the parameters of ``space`` plus ``extra`` parameters ``unused_0, unused_1, ...``
    in [0, 1] that change nothing, and returns the surrogate's value: deterministic, as
    ``FashionObjective`` is for one seed. A study on it costs milliseconds, so samplers can be
    compared over many study seeds.
    """

    def __init__(self, space: SearchSpace, trials: Iterable[tuple[dict[str, Any], float | None]],
                 extra: int = 0, widths: Iterable[float] = (0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5)
                 ) -> None:
        import itertools

        self.names = [n for n, spec in space.params.items() if spec[0] != "cat"]
        if len(self.names) != len(space.params):
            raise ValueError("a surrogate needs numeric parameters only (log, float or int)")
        unique = {tuple(float(p[n]) for n in self.names): float(v) for p, v in trials
                  if v is not None and math.isfinite(v)}
        if len(unique) < 2 * len(self.names) + 2:
            raise ValueError(f"{len(unique)} distinct finished trials are too few to fit a "
                             f"surrogate of {len(self.names)} parameters; run more")
        self.base, self.extra = space, extra
        self.space = SearchSpace({**space.params,
                                  **{f"unused_{k}": ("float", 0.0, 1.0) for k in range(extra)}})
        self.x = np.array([[_unit(v, space.params[n]) for v, n in zip(k, self.names, strict=True)]
                           for k in unique])
        self.y = np.array(list(unique.values()))
        self.n_fitted = len(self.y)

        def loo_error(width: tuple[float, ...]) -> float:
            w = self._weights(self.x, np.array(width))
            np.fill_diagonal(w, 0.0)
            return float(np.mean((w @ self.y / w.sum(1).clip(1e-300) - self.y) ** 2))

        self.width = np.array(min(itertools.product(list(widths), repeat=len(self.names)),
                                  key=loo_error))

    def _weights(self, x: np.ndarray, width: np.ndarray) -> np.ndarray:
        d2 = (((x[:, None, :] - self.x[None, :, :]) / width) ** 2).sum(-1)
        return np.exp(-0.5 * (d2 - d2.min(1, keepdims=True)))  # shifted: no underflow to 0/0

    def predict(self, params: dict[str, Any]) -> float:
        """The surrogate's value at ``params`` (parameters outside the fitted space ignored)."""
        x = np.array([[_unit(float(params[n]), self.base.params[n]) for n in self.names]])
        w = self._weights(x, self.width)[0]
        return float(w @ self.y / w.sum())

    def __call__(self, trial: Any) -> float:
        return self.predict(self.space.suggest(trial))


def _prep(images: np.ndarray) -> torch.Tensor:
    return (torch.tensor(images[:, None], dtype=torch.float32) / 255 - 0.286) / 0.353


class FashionObjective:
    """Validation accuracy of the chapter-03 CNN on a Fashion-MNIST subset, for one trial.

    The same seed gives the same data, initial weights and batch order, so retraining a
    trial's parameters reproduces its accuracy. So parameters this objective has already
    trained (a grid search repeated with another study seed visits the same points) are not
    trained again: their per-epoch scores are replayed, and ``epochs_used`` still counts
    them, as a real budget would. ``device``: where trials train (a kind such as ``"cuda"``
    or a ``torch.device``); ``None`` takes the best one here.
    """

    def __init__(self, space: SearchSpace, n_train: int = 4000, n_val: int = 1000,
                 num_epochs: int = 2, seed: int = 0, profile: str = "quick",
                 device: str | torch.device | None = None) -> None:

        self.space, self.num_epochs, self.seed = space, num_epochs, seed
        self.profile = profile
        self._memo: dict[str, tuple[list[float], float]] = {}  # params -> (per epoch, final)
        self.device = env.pick_device(device)
        x, y = load_fashion_mnist("train", profile=profile)
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(y), n_train + n_val, replace=False)
        self.x_train, self.y_train = _prep(x[idx[:n_train]]), torch.tensor(y[idx[:n_train]])
        self.x_val, self.y_val = _prep(x[idx[n_train:]]), torch.tensor(y[idx[n_train:]])

    def with_space(self, space: SearchSpace) -> FashionObjective:
        """The same data and settings with another search space (nothing is reloaded)."""
        other = copy.copy(self)
        other.space = space
        return other

    def _train(self, params: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
               val: Any = None, callbacks: list | None = None) -> torch.nn.Module:

        env.seed_everything(self.seed)
        net = SmallCNN(width=int(params.get("width", 16)), dropout=params.get("dropout", 0.0))
        loader = TensorLoader(x, y, int(params.get("batch_size", 64)), shuffle=True,
                              seed=self.seed)
        opt = torch.optim.AdamW(net.parameters(), lr=params["lr"],
                                weight_decay=params.get("weight_decay", 0.0))
        train.fit(net, loader, val, num_epochs=self.num_epochs, optimizer=opt, device=self.device,
            progress=False, callbacks=callbacks or [])
        return net

    def train_and_score(self, params: dict[str, Any], report=None) -> float:
        """Train with ``params`` (lr, weight_decay, dropout, batch_size, width) and score."""

        val = TensorLoader(self.x_val, self.y_val, 1000)
        callbacks = [] if report is None else [lambda epoch, hist, _: report(epoch, hist)]
        try:
            net = self._train(params, self.x_train, self.y_train, val, callbacks)
        except DivergenceError as err:
            logger.warning("trial with %s diverged: %s", params, err)
            return math.nan  # Optuna records the trial as failed, and the study goes on
        return loss_and_accuracy(net, val, self.device)["acc"]

    def test_accuracy(self, params: dict[str, Any], n_test: int = 2000) -> float:
        """The final step, once: retrain ``params`` on training + validation data, then score
        on ``n_test`` images of the test split (drawn with this objective's seed)."""

        x, y = load_fashion_mnist("test", profile=self.profile)
        idx = np.random.default_rng(self.seed).choice(len(y), n_test, replace=False)
        net = self._train(params, torch.cat([self.x_train, self.x_val]),
                          torch.cat([self.y_train, self.y_val]))
        test = TensorLoader(_prep(x[idx]), torch.tensor(y[idx]), 1000)
        return loss_and_accuracy(net, test, self.device)["acc"]

    def __call__(self, trial: Any) -> float:
        import optuna

        params = self.space.suggest(trial)
        key = json.dumps(params, sort_keys=True)
        seen: list[float] = []

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        if key in self._memo:  # trained before: the same result, so replay it
            per_epoch, final = self._memo[key]
            for epoch, value in enumerate(per_epoch, start=1):
                report(epoch, value)
            return final

        def record(epoch: int, history: list[dict[str, float]]) -> None:
            seen.append(history[-1]["val_acc"])
            report(epoch, seen[-1])

        final = self.train_and_score(params, record)
        if math.isfinite(final):
            self._memo[key] = (seen, final)
        return final


def run_worker(storage: str, study_name: str, n_trials: int, worker: int,
               n_train: int = 4000, n_val: int = 1000, num_epochs: int = 2,
               seed: int = 0, profile: str = "quick", device: str | None = None,
               space: SearchSpace | None = None, heartbeat_s: int | None = None) -> None:
    """One worker of a shared study: loads it from ``storage`` (see ``open_storage``) and
    runs ``n_trials`` trials of the objective on ``device`` (None: the best one here)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage, heartbeat_s),
                              sampler=optuna.samplers.TPESampler(seed=seed + worker))
    objective = FashionObjective(space or DEFAULT_SPACE, n_train=n_train, n_val=n_val,
                                 num_epochs=num_epochs, seed=seed, profile=profile,
                                 device=device)

    def tagged(trial: Any) -> float:
        trial.set_user_attr("worker", worker)
        return objective(trial)

    study.optimize(tagged, n_trials=n_trials)


DEFAULT_SPACE = SearchSpace({"lr": ("log", 1e-4, 3e-2), "weight_decay": ("log", 1e-6, 1e-1),
                             "dropout": ("float", 0.0, 0.5)})


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.tune worker --storage SPEC --study NAME --trials N --worker K``
    (and optionally ``--space JSON``, ``--n-train``, ``--n-val``, ``--epochs``, ``--seed``,
    ``--profile``, ``--device``, ``--heartbeat SECONDS``)."""
    parser = argparse.ArgumentParser(prog="python -m helpers.tune")
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best)")
    parser.add_argument("--space", default=None, help="SearchSpace.to_json() (default: DEFAULT_SPACE)")
    parser.add_argument("--heartbeat", type=int, default=None, help="seconds (database storage)")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    run_worker(args.storage, args.study, args.trials, args.worker, n_train=args.n_train,
               n_val=args.n_val, num_epochs=args.epochs, seed=args.seed, profile=args.profile,
               device=args.device, heartbeat_s=args.heartbeat,
               space=SearchSpace.from_json(args.space) if args.space else None)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
