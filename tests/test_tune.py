import os
import subprocess
import sys

import numpy as np
import optuna
import pytest
import torch

from helpers import tune

TINY = {"n_train": 400, "n_val": 200, "num_epochs": 1}


def test_storage_url_default_and_validation(course_home):
    assert tune.storage_url(study="s") == f"sqlite:///{course_home / 'cache' / 'optuna' / 's.db'}"
    for ok in ("sqlite:///x.db", "postgresql://u:p@db:5432/optuna", "mysql+pymysql://u:p@h/o"):
        assert tune.storage_url(ok) == ok
    with pytest.raises(ValueError, match="not a database URL.*postgresql://"):
        tune.storage_url("my-database")
    with pytest.raises(ValueError, match="backend 'oracle' is not supported"):
        tune.storage_url("oracle://u:p@h/db")


@pytest.mark.parametrize(("params", "message"), [
    ({}, "search space is empty"),
    ({"lr": ("log", 1e-2, 1e-3)}, "low 0.01 > high 0.001: no valid values"),
    ({"act": ("cat", [])}, "non-empty list of choices"),
    ({"lr": ("log", 0.0, 1.0)}, "needs low > 0"),
    ({"lr": ("exp", 1, 2)}, "unknown kind 'exp'"),
])
def test_search_space_rejects_spaces_with_no_valid_values(params, message):
    with pytest.raises(ValueError, match=message):
        tune.SearchSpace(params)


def test_search_space_suggest_and_grid():
    space = tune.SearchSpace({"lr": ("log", 1e-4, 1e-2), "d": ("float", 0.0, 0.5),
                              "w": ("int", 8, 32), "opt": ("cat", ["adam", "sgd"])})
    fixed = optuna.trial.FixedTrial({"lr": 1e-3, "d": 0.1, "w": 16, "opt": "sgd"})
    assert space.suggest(fixed) == {"lr": 1e-3, "d": 0.1, "w": 16, "opt": "sgd"}
    grid = space.grid(3)
    assert grid["lr"] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert grid["d"] == [0.0, 0.25, 0.5] and grid["w"] == [8, 20, 32] and grid["opt"] == ["adam", "sgd"]


def test_retraining_the_best_trial_reproduces_its_accuracy(course_home):
    objective = tune.FashionObjective(tune.DEFAULT_SPACE, **TINY, seed=3)
    study = optuna.create_study(direction="maximize", storage=tune.storage_url(study="repro"),
                                sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=3)
    again = objective.train_and_score(study.best_trial.params)
    assert abs(again - study.best_value) <= 0.01


def test_pruned_trials_are_recorded():
    objective = tune.FashionObjective(tune.DEFAULT_SPACE, n_train=300, n_val=100, num_epochs=2)

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2


def test_two_worker_processes_share_one_study(course_home):
    storage = tune.storage_url(study="shared")
    optuna.create_study(study_name="shared", storage=storage, direction="maximize")
    cmd = [sys.executable, "-m", "helpers.tune", "worker", "--storage", storage,
           "--study", "shared", "--trials", "2", "--n-train", "300"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*cmd, "--worker", str(k)], env=env) for k in (0, 1)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert len(trials) == 4
    assert sorted(t.user_attrs["worker"] for t in trials) == [0, 0, 1, 1]
    # the CLI entry point, in this process
    assert tune.main(["worker", "--storage", storage, "--study", "shared", "--trials", "1",
                      "--n-train", "300", "--n-val", "100", "--epochs", "1", "--worker", "2"]) == 0
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert len(trials) == 5
    assert [len(t.intermediate_values) for t in trials] == [2, 2, 2, 2, 1]  # --epochs reached fit


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_objective_names_a_device_that_is_missing():
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        tune.FashionObjective(tune.DEFAULT_SPACE, n_train=10, n_val=10, device="cuda")


def test_objective_and_workers_train_on_the_device_they_are_given(monkeypatch, course_home):
    from helpers import train

    seen = []
    real_fit = train.fit

    def spy(*args, device=None, **kwargs):
        seen.append(torch.device(device))
        return real_fit(*args, device=device, **kwargs)

    monkeypatch.setattr("helpers.train.fit", spy)
    objective = tune.FashionObjective(tune.DEFAULT_SPACE, n_train=200, n_val=100, num_epochs=1,
                                      device=torch.device("cpu"))
    assert objective.device == torch.device("cpu")
    objective.train_and_score({"lr": 1e-3})
    storage = tune.storage_url(study="dev")
    optuna.create_study(study_name="dev", storage=storage, direction="maximize")
    assert tune.main(["worker", "--storage", storage, "--study", "dev", "--trials", "1",
                      "--n-train", "200", "--n-val", "100", "--epochs", "1",
                      "--device", "cpu"]) == 0
    assert seen == [torch.device("cpu")] * 2


@pytest.mark.filterwarnings("ignore:Fixed parameter lr:UserWarning")
def test_a_diverging_trial_fails_and_the_study_goes_on():
    objective = tune.FashionObjective(tune.DEFAULT_SPACE, n_train=200, n_val=100, num_epochs=1)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 1e30, "weight_decay": 1e-6, "dropout": 0.0})  # blows up
    study.enqueue_trial({"lr": 1e-3, "weight_decay": 1e-6, "dropout": 0.0})
    study.optimize(objective, n_trials=2)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]


def test_search_space_round_trips_through_json():
    space = tune.SearchSpace({"lr": ("log", 1e-4, 1e-2), "act": ("cat", ["relu", "gelu"])})
    assert tune.SearchSpace.from_json(space.to_json()) == space
    with pytest.raises(ValueError, match="not JSON"):
        tune.SearchSpace.from_json("{lr: 1")
    with pytest.raises(ValueError, match="JSON object"):
        tune.SearchSpace.from_json("[1, 2]")


def test_open_storage_journal_database_and_heartbeat(tmp_path):
    journal = tune.open_storage(f"journal:{tmp_path / 'a.log'}")
    assert type(journal).__name__ == "JournalStorage"
    assert type(tune.open_storage(str(tmp_path / "b.log"))).__name__ == "JournalStorage"
    with pytest.raises(ValueError, match="no heartbeat"):
        tune.open_storage(str(tmp_path / "c.log"), heartbeat_s=1)
    rdb = tune.open_storage(f"sqlite:///{tmp_path / 'd.db'}", heartbeat_s=2)
    assert rdb.get_heartbeat_interval() == 2
    with pytest.raises(ValueError, match="not a database URL"):
        tune.open_storage("nonsense")


def test_epochs_used_counts_pruned_trials_too():
    objective = tune.FashionObjective(tune.DEFAULT_SPACE, n_train=300, n_val=100, num_epochs=2)

    class PruneAfterOne(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number == 1 and len(trial.intermediate_values) >= 1

    study = optuna.create_study(direction="maximize", pruner=PruneAfterOne())
    study.optimize(objective, n_trials=3)
    assert tune.epochs_used(study.trials) == 2 + 1 + 2


def test_test_accuracy_retrains_on_train_and_validation_once():
    objective = tune.FashionObjective(tune.DEFAULT_SPACE, n_train=300, n_val=100, num_epochs=1)
    narrow = objective.with_space(tune.SearchSpace({"lr": ("log", 1e-3, 2e-3)}))
    assert narrow.x_train is objective.x_train and narrow.space != objective.space
    acc = objective.test_accuracy({"lr": 3e-3}, n_test=500)
    assert 0.3 < acc <= 1.0 and acc == objective.test_accuracy({"lr": 3e-3}, n_test=500)


def test_a_killed_workers_trial_is_run_again(course_home):
    import signal
    import time

    storage = tune.storage_url(study="kill")
    optuna.create_study(study_name="kill", storage=storage, direction="maximize")
    cmd = [sys.executable, "-m", "helpers.tune", "worker", "--storage", storage, "--study",
           "kill", "--n-train", "300", "--n-val", "100", "--heartbeat", "1"]
    victim = subprocess.Popen([*cmd, "--trials", "1", "--epochs", "500"],  # a long trial
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    study = optuna.load_study(study_name="kill", storage=tune.open_storage(storage, heartbeat_s=1))
    deadline = time.monotonic() + 120
    # wait for a trial that is training (parameters drawn, an epoch reported), not just created
    while not [t for t in study.get_trials() if t.state.name == "RUNNING" and t.intermediate_values]:
        assert time.monotonic() < deadline and victim.poll() is None, "no trial started training"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)  # as a preempted machine would: no clean-up at all
    victim.wait()
    # SQLite stores heartbeats to the second: poll the workers' own check past the grace period
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        while [t for t in study.get_trials() if t.state.name == "RUNNING"]:
            assert time.monotonic() < deadline, "the stale trial was never failed"
            optuna.storages.fail_stale_trials(study)
            time.sleep(0.2)
    assert tune.main([*cmd[3:], "--trials", "1", "--epochs", "1", "--worker", "1"]) == 0
    trials = optuna.load_study(study_name="kill", storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trials[1])
    assert retried == 0 and trials[1].params == trials[0].params


def test_workers_run_the_space_they_are_given(tmp_path):
    space = tune.SearchSpace({"lr": ("log", 1e-3, 2e-3)})
    storage = f"journal:{tmp_path / 'j.log'}"
    optuna.create_study(study_name="s", storage=tune.open_storage(storage), direction="maximize")
    assert tune.main(["worker", "--storage", storage, "--study", "s", "--trials", "2",
                      "--n-train", "300", "--n-val", "100", "--epochs", "1",
                      "--space", space.to_json()]) == 0
    trials = optuna.load_study(study_name="s", storage=tune.open_storage(storage)).trials
    assert [set(t.params) for t in trials] == [{"lr"}, {"lr"}]
    assert all(1e-3 <= t.params["lr"] <= 2e-3 for t in trials)


def test_parameters_trained_before_are_replayed_not_retrained(monkeypatch):
    objective = tune.FashionObjective(tune.SearchSpace({"lr": ("cat", [1e-3, 2e-3])}),
                                      n_train=300, n_val=100, num_epochs=2)
    calls = []
    real = objective.train_and_score
    monkeypatch.setattr(objective, "train_and_score",
                        lambda params, report=None: calls.append(params) or real(params, report))
    grid = {"lr": [1e-3, 2e-3]}
    first = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner(),
                                sampler=optuna.samplers.GridSampler(grid, seed=0))
    first.optimize(objective, n_trials=2)
    again = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner(),
                                sampler=optuna.samplers.GridSampler(grid, seed=1))
    again.optimize(objective, n_trials=2)
    assert len(calls) == 2  # the second grid trained nothing
    assert tune.epochs_used(again.trials) == tune.epochs_used(first.trials) == 4
    assert sorted(t.value for t in again.trials) == sorted(t.value for t in first.trials)
    assert [t.intermediate_values for t in sorted(again.trials, key=lambda t: t.params["lr"])] == \
        [t.intermediate_values for t in sorted(first.trials, key=lambda t: t.params["lr"])]


def test_on_edge_flags_a_best_trial_at_the_box_edge():
    space = tune.SearchSpace({"lr": ("log", 1e-4, 1e-2), "d": ("float", 0.0, 0.5),
                              "opt": ("cat", ["adam", "sgd"])})
    assert tune.on_edge({"lr": 1e-2, "d": 0.0, "opt": "sgd"}, space) == {"lr": "high", "d": "low"}
    assert tune.on_edge({"lr": 1e-3, "d": 0.25}, space) == {"lr": "", "d": ""}
    # log scale: 1.2e-4 is 4% of the way from 1e-4 to 1e-2 in log units, 0.2% in linear ones
    assert tune.on_edge({"lr": 1.2e-4, "d": 0.49}, space) == {"lr": "low", "d": "high"}
    assert tune.on_edge({"lr": 1.5e-4, "d": 0.2}, space, margin=0.05)["lr"] == ""


def test_best_so_far_skips_failed_trials():
    out = tune.best_so_far([None, 0.5, float("nan"), 0.4, 0.7, None])
    assert np.isnan(out[0]) and out[1:].tolist() == [0.5, 0.5, 0.5, 0.7, 0.7]
    assert tune.best_so_far([]).size == 0


def test_surrogate_fits_measured_trials_and_ignores_extra_parameters():
    space = tune.SearchSpace({"lr": ("log", 1e-4, 1e-1), "wd": ("log", 1e-5, 1.0)})
    rng = np.random.default_rng(0)

    def truth(p):  # a ridge in log lr, flat in weight decay
        return 0.85 - 0.05 * (np.log10(p["lr"]) + 2.5) ** 2

    trials = [({"lr": 10 ** rng.uniform(-4, -1), "wd": 10 ** rng.uniform(-5, 0)}, None)
              for _ in range(3)]  # failed trials are left out of the fit
    trials += [(p, truth(p)) for p in ({"lr": 10 ** rng.uniform(-4, -1),
                                       "wd": 10 ** rng.uniform(-5, 0)} for _ in range(30))]
    surrogate = tune.SurrogateObjective(space, trials, extra=2)
    assert surrogate.n_fitted == 30 and set(surrogate.space.params) == {"lr", "wd", "unused_0",
                                                                         "unused_1"}
    for lr in (3e-4, 3e-3, 3e-2):
        p = {"lr": lr, "wd": 1e-3}
        assert surrogate.predict(p) == pytest.approx(truth(p), abs=0.01)
    fixed = optuna.trial.FixedTrial({"lr": 3e-3, "wd": 1e-3, "unused_0": 0.1, "unused_1": 0.9})
    assert surrogate(fixed) == surrogate.predict({"lr": 3e-3, "wd": 1e-3})
    with pytest.raises(ValueError, match="too few"):
        tune.SurrogateObjective(space, trials[:8])
    with pytest.raises(ValueError, match="numeric parameters only"):
        tune.SurrogateObjective(tune.SearchSpace({"opt": ("cat", ["a", "b"])}), trials)
