import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import scale, tune

try:
    scale.postgres_bin()
    HAVE_PG = True
except scale.PostgresUnavailable:
    HAVE_PG = False
needs_pg = pytest.mark.skipif(not HAVE_PG, reason="PostgreSQL is not installed here "
                              "(apt-get install postgresql; make setup does it as root)")


@pytest.fixture(scope="module")
def pg():
    with scale.PostgresServer() as server:
        yield server


def test_an_unreachable_database_is_named_within_seconds():
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:9 .*Is the server running"):
        tune.open_storage("postgresql+psycopg2://nobody@127.0.0.1:9/none", heartbeat_s=1)
    assert time.monotonic() - start < 10


@needs_pg
def test_the_server_starts_answers_and_stops_without_leaving_its_directory(tmp_path):
    server = scale.PostgresServer(database="probe")
    with server:
        scale.check_database(server.url)
        port = server.port
    assert not server.workdir.exists()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        scale.check_database(server.url, timeout_s=2)


@needs_pg
def test_a_server_starts_under_a_temporary_folder_its_user_cannot_reach(tmp_path, monkeypatch):
    # pytest's own temporary folders are 0700: as root, the server (run as postgres) cannot
    # reach them, and its folder goes to /tmp instead; it still leaves nothing behind.
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    monkeypatch.setenv("TMPDIR", str(closed))
    monkeypatch.setattr(scale.tempfile, "tempdir", None)  # re-read TMPDIR
    with scale.PostgresServer(database="probe") as server:
        scale.check_database(server.url)
    assert not server.workdir.exists()
    assert list(closed.iterdir()) == []


def test_a_server_that_fails_to_start_deletes_its_folder(monkeypatch):
    if not HAVE_PG:
        monkeypatch.setattr(scale, "postgres_bin", lambda: scale.Path("/nonexistent"))
    server = scale.PostgresServer(database="probe")

    def initdb_fails(*args, **kwargs):
        raise RuntimeError("initdb failed (1): a test's failure")

    monkeypatch.setattr(server, "_run", initdb_fails)
    with pytest.raises(RuntimeError, match="a test's failure"):
        server.start()
    assert not server.workdir.exists()


WORKER = """
import sys, time, optuna
from helpers import tune
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="s", storage=tune.open_storage(sys.argv[1], heartbeat_s=1))
def objective(trial):
    trial.suggest_float("x", 0, 1)
    time.sleep(120)  # killed long before this returns
    return 0.0
study.optimize(objective, n_trials=1)
"""


@needs_pg
def test_a_killed_workers_trial_is_retried_in_the_same_study(pg):
    import optuna

    storage = tune.open_storage(pg.url, heartbeat_s=1, max_retry=1)
    study = optuna.create_study(study_name="s", storage=storage)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, pg.url], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while not study.get_trials(states=[optuna.trial.TrialState.RUNNING]):
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never started"
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    killed = study.get_trials(states=[optuna.trial.TrialState.RUNNING])[0]
    time.sleep(3)  # past the grace period (2 heartbeats)
    optuna.storages.fail_stale_trials(study)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # another worker carries on
    trials = study.get_trials()
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE
    assert retried[0].params == killed.params


@needs_pg
def test_two_worker_processes_fill_one_study(pg):
    import optuna

    optuna.create_study(study_name="shared", storage=tune.open_storage(pg.url), direction="minimize")
    cmd = [sys.executable, "-m", "helpers.tune", "worker", "--storage", pg.url, "--study", "shared",
           "--trials", "2", "--n-train", "200", "--n-val", "100", "--epochs", "1", "--heartbeat", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    workers = [subprocess.Popen([*cmd, "--worker", str(k)], env=env) for k in range(2)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    trials = optuna.load_study(study_name="shared", storage=tune.open_storage(pg.url)).trials
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs["worker"] for t in trials) == [0, 0, 1, 1]


def _net():
    import torch

    from helpers import models

    torch.manual_seed(0)
    return models.SmallCNN(width=4, batch_norm=False)


def test_accumulated_gradients_step_like_the_large_batch():
    import torch

    from helpers import train

    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    nets = []
    for batch, k in ((128, 1), (32, 4)):
        net = _net()
        train.fit(net, train.TensorLoader(x, y, batch), num_epochs=1, accumulation_steps=k,
                  optimizer=torch.optim.SGD(net.parameters(), lr=0.5), progress=False)
        nets.append(net)
    diff = max((p - q).abs().max().item() for p, q in zip(*(n.parameters() for n in nets), strict=True))
    assert diff <= 1e-5
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="accumulation_steps must be an integer of at least 1"):
            train.fit(_net(), train.TensorLoader(x, y, 32), num_epochs=1, accumulation_steps=bad,
                      optimizer=torch.optim.SGD(_net().parameters(), lr=0.1), progress=False)


def test_checkpointed_blocks_give_identical_gradients():
    import torch

    from helpers import train

    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    plain, ckpt = _net(), _net()
    ckpt.features = train.Checkpointed(ckpt.features)
    grads = []
    for net in (plain, ckpt):
        torch.nn.functional.cross_entropy(net(x), y).backward()
        grads.append([p.grad for p in net.parameters()])
    assert max((a - b).abs().max().item() for a, b in zip(*grads, strict=True)) <= 1e-6


def test_checkpointing_keeps_less_for_backward():
    import torch

    from helpers import train

    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    plain, ckpt = _net(), _net()
    ckpt.features = train.Checkpointed(ckpt.features)
    kept = [scale.saved_activation_bytes(lambda n=n: torch.nn.functional.cross_entropy(n(x), y))
            for n in (plain, ckpt)]
    assert 0 < kept[1] < kept[0] / 2


def test_fit_falls_back_to_eager_mode_when_compiling_fails(monkeypatch):
    import torch

    from helpers import train

    def broken_compile(net, *args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler found\\nmore detail")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    net = _net()
    with pytest.warns(UserWarning, match="torch.compile failed .RuntimeError: no C.. compiler found"):
        history = train.fit(net, train.TensorLoader(x, y, 16), num_epochs=1, compile=True,
                            optimizer=torch.optim.SGD(net.parameters(), lr=0.1), progress=False)
    assert len(history) == 1


def test_step_seconds_is_deprecated_for_hardware_time_op():
    with pytest.warns(DeprecationWarning, match="time_op"):
        assert scale.step_seconds(lambda: None, repeats=3) >= 0
