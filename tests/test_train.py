
import pytest
import torch
from torch import nn

from helpers import train


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + 2 * (x[:, 0, 0, 0] > 0).long()  # 4 classes
    return x, y


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * 8 * 8, 4))


def _run(tmp_path, num_epochs, callbacks=(), resume=False, seed=0):
    """A deterministic small run; the net/optimizer/scheduler are rebuilt as a new process would."""
    torch.manual_seed(seed)
    x, y = _data()
    net = _net(seed)
    loader = train.TensorLoader(x, y, batch_size=16, shuffle=True, seed=seed)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=num_epochs * len(loader))
    history = train.fit(net, loader, train.TensorLoader(x, y, 32), num_epochs=num_epochs,
                        optimizer=opt, scheduler=sched, scheduler_step="batch", grad_clip=1.0,
                        checkpoint_dir=tmp_path, resume=resume, callbacks=callbacks,
                        progress=False)
    return net, history


def _comparable(history):
    return [{k: v for k, v in row.items() if k not in ("seconds", "samples_per_s")}
            for row in history]


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_matches_an_uninterrupted_run(tmp_path):
    full_net, full_hist = _run(tmp_path / "full", num_epochs=5)

    def stop_after_2(epoch, history, net):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run(tmp_path / "cut", num_epochs=5, callbacks=[stop_after_2])
    torch.manual_seed(12345)  # a new process: the global RNG is somewhere else entirely
    resumed_net, resumed_hist = _run(tmp_path / "cut", num_epochs=5, resume=True, seed=0)

    assert len(resumed_hist) == 5
    for a, b in zip(_comparable(full_hist), _comparable(resumed_hist), strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-6), k
    for (name, p), q in zip(full_net.state_dict().items(), resumed_net.state_dict().values(),
                            strict=True):
        assert torch.allclose(p.float(), q.float(), atol=1e-6), name


def test_a_finished_run_is_not_trained_again(tmp_path):
    _, first = _run(tmp_path, num_epochs=2)
    calls = []
    _, again = _run(tmp_path, num_epochs=2, resume=True, callbacks=[lambda *a: calls.append(a)])
    assert calls == [] and _comparable(again) == _comparable(first)


def test_checkpoint_loads_with_weights_only(tmp_path):
    _run(tmp_path, num_epochs=1)
    ckpt = torch.load(tmp_path / train.CHECKPOINT_NAME, weights_only=True)
    assert ckpt["epoch"] == 1 and set(ckpt) >= {"model", "optimizer", "scheduler", "scaler",
                                                 "rng", "history"}
    assert not list(tmp_path.glob("*.tmp"))


def test_history_learning_and_early_stopping(tmp_path):
    x, y = _data()
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: val loss never improves
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    hist = train.fit(net, train.TensorLoader(x, y, 32), train.TensorLoader(x, y, 32),
                     num_epochs=10, optimizer=opt, scheduler=sched, early_stopping_patience=2,
                     progress=False)
    assert len(hist) == 3  # best at epoch 1, then two epochs without improvement
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "samples_per_s", "lr"} <= set(hist[0])
    net2 = _net()
    hist2 = train.fit(net2, train.TensorLoader(x, y, 16, shuffle=True), num_epochs=8,
                      optimizer=torch.optim.Adam(net2.parameters(), 1e-2), progress=True,
                      channels_last=True, callbacks=[lambda e, h, n: e == 6])
    assert len(hist2) == 6 and hist2[-1]["train_acc"] > hist2[0]["train_acc"]
    assert train.loss_and_accuracy(net2, train.TensorLoader(x, y, 64))["acc"] > 0.6


def test_bad_input_is_named_before_training():
    x, y = _data()
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="loader is empty"):
        train.fit(net, train.TensorLoader(x[:0], y[:0], 8), num_epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match="loader is empty"):
        train.fit(net, [], num_epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match=r"labels range over \[1, 7\].*predicts 4 classes"):
        train.fit(net, train.TensorLoader(x, y * 2 + 1, 8), num_epochs=1, optimizer=opt)
    late_bad = y.clone()
    late_bad[-1] = 9  # only the last batch is wrong: still caught before training
    with pytest.raises(ValueError, match=r"labels range over \[0, 9\]"):
        train.fit(net, train.TensorLoader(x, late_bad, 8), num_epochs=1, optimizer=opt)
    from torch.utils.data import DataLoader, TensorDataset
    with pytest.raises(ValueError, match=r"labels range over \[0, 9\]"):
        train.fit(net, DataLoader(TensorDataset(x, late_bad), 8), num_epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match=r"labels range over \[-1, 2\]"):
        train.fit(net, train.TensorLoader(x, y - 1, 8), num_epochs=1, optimizer=opt)
    flat = nn.Sequential(nn.Flatten(0))  # returns a 1-D output: no class dimension
    with pytest.raises(ValueError, match=r"returns shape .* must return \[batch, num_classes\]"):
        train.fit(flat, train.TensorLoader(x, y, 8), num_epochs=1,
                  optimizer=torch.optim.SGD(net.parameters(), 0.1), device="cpu")
    with pytest.raises(ValueError, match="integer class indices"):
        train.fit(net, train.TensorLoader(x, y.float(), 8), num_epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match="pair"):
        train.fit(net, [(x,)], num_epochs=1, optimizer=opt)
    with pytest.raises(ValueError, match="scheduler_step"):
        train.fit(net, train.TensorLoader(x, y, 8), num_epochs=1, optimizer=opt, scheduler_step="x")
    with pytest.raises(ValueError, match="num_epochs"):
        train.fit(net, train.TensorLoader(x, y, 8), num_epochs=0, optimizer=opt)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        train.fit(net, train.TensorLoader(x, y, 8), num_epochs=1, optimizer=opt, resume=True)
    with pytest.raises(ValueError, match="evaluation loader is empty"):
        train.loss_and_accuracy(net, [])


def test_tensor_loader_and_augmentation():
    x, y = _data(10)
    assert len(train.TensorLoader(x, y, 4)) == 3 and len(train.TensorLoader(x, y, 4, drop_last=True)) == 2
    assert [len(b[1]) for b in train.TensorLoader(x, y, 4)] == [4, 4, 2]
    with pytest.raises(ValueError, match="rows"):
        train.TensorLoader(x, y[:3], 4)
    with pytest.raises(ValueError, match="batch_size"):
        train.TensorLoader(x, y, 0)
    imgs = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    a = train.random_crop_flip(imgs, torch.Generator().manual_seed(0), pad=2)
    b = train.random_crop_flip(imgs, torch.Generator().manual_seed(0), pad=2)
    assert a.shape == imgs.shape and torch.equal(a, b)
    # each output is a crop of the padded image, possibly mirrored: check against a slow loop
    g = torch.Generator().manual_seed(0)
    dy, dx = torch.randint(0, 5, (2, 1), generator=g), torch.randint(0, 5, (2, 1), generator=g)
    flip = torch.rand(2, generator=g) < 0.5
    padded = torch.nn.functional.pad(imgs, (2, 2, 2, 2), mode="reflect")
    for i in range(2):
        crop = padded[i, :, dy[i, 0]:dy[i, 0] + 8, dx[i, 0]:dx[i, 0] + 8]
        assert torch.equal(a[i], crop.flip(2) if flip[i] else crop)
    loader = train.TensorLoader(imgs, torch.tensor([0, 1]), 2, shuffle=True,
                                transform=lambda xb, g: train.random_crop_flip(xb, g, 2))
    xb, _ = next(iter(loader))
    assert xb.shape == imgs.shape


def test_predict_and_amp_dtype(monkeypatch):
    x, y = _data(20)
    net = _net()
    logits, labels = train.predict(net, train.TensorLoader(x, y, 8))
    assert logits.shape == (20, 4) and torch.equal(labels, y)
    assert train.amp_dtype(torch.device("cpu")) is None
    assert train.amp_dtype(torch.device("mps")) is None


@pytest.mark.parametrize(("gpu", "capability", "expected"), [
    ("T4 (Colab's free GPU)", (7, 5), torch.float16),
    ("V100", (7, 0), torch.float16),
    ("A100", (8, 0), torch.bfloat16),
    ("L4", (8, 9), torch.bfloat16),
    ("H100", (9, 0), torch.bfloat16),
])
def test_bf16_only_from_compute_capability_8(monkeypatch, gpu, capability, expected):
    # A T4 reports bf16 as supported (emulated, slow): the capability decides, not that flag.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert train.amp_dtype(torch.device("cuda")) == expected, gpu


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    x, y = _data()
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    train.fit(net, train.TensorLoader(x, y, 16), num_epochs=1, optimizer=opt,
              checkpoint_dir=tmp_path, progress=False)
    good = torch.load(tmp_path / train.CHECKPOINT_NAME, weights_only=True)
    bad_x = x.clone()
    bad_x[40:48] = float("nan")  # the third batch of 16 (rows 32-47) holds NaN inputs
    with pytest.raises(train.DivergenceError,
                       match=r"epoch 2, step 3 of 6.*last finite loss \d\.\d+ \(epoch 2, step 2\)"
                       r".*a checkpoint still holds epoch 1"):
        train.fit(net, train.TensorLoader(bad_x, y, 16), num_epochs=2, optimizer=opt,
                  checkpoint_dir=tmp_path, resume=True, progress=False)
    kept = torch.load(tmp_path / train.CHECKPOINT_NAME, weights_only=True)
    assert kept["epoch"] == 1
    for name, tensor in good["model"].items():
        assert torch.equal(tensor, kept["model"][name]), name


@pytest.mark.filterwarnings("ignore:.*copying from a non-meta parameter:UserWarning")
def test_resume_loads_to_the_cpu_then_moves_model_and_optimizer_to_the_device(tmp_path):
    # A checkpoint resumed on another device: "meta" stands in for cuda/mps on this CPU
    # machine. Loading with map_location=<device> would put the saved RNG states there too,
    # and torch.set_rng_state accepts CPU tensors only (the bug this guards against).
    _run(tmp_path, num_epochs=1)
    x, y = _data()
    net = _net().to("meta")  # load_state_dict into meta tensors is a no-op: it warns
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=6)
    torch.manual_seed(999)
    history = train.fit(net, train.TensorLoader(x, y, 16, shuffle=True), num_epochs=1,
                        optimizer=opt, scheduler=sched, device="meta",
                        checkpoint_dir=tmp_path, resume=True, progress=False)
    assert history.status == "reused" and len(history) == 1
    assert {p.device.type for p in net.parameters()} == {"meta"}
    moments = [v for s in opt.state.values() for k, v in s.items() if k != "step"]
    assert moments and {t.device.type for t in moments} == {"meta"}
    saved = torch.load(tmp_path / train.CHECKPOINT_NAME, weights_only=True)
    assert torch.equal(torch.get_rng_state(), saved["rng"]["torch"])  # restored on the CPU


def test_history_says_whether_it_trained_resumed_or_reused(tmp_path, monkeypatch, capsys):
    records = []
    monkeypatch.setattr(train, "FIT_HOOKS", [lambda history, folder, key: records.append(
        {"status": history.status, "resumed_from": history.resumed_from,
         "checkpoint": folder.name if folder else None})])

    def stop_after_1(epoch, history, net):
        return epoch == 1

    _, first = _run(tmp_path / "ck", num_epochs=3, callbacks=[stop_after_1])
    assert first.status == "trained" and first.resumed_from == 0
    _, second = _run(tmp_path / "ck", num_epochs=3, resume=True)
    assert second.status == "resumed" and second.resumed_from == 1 and len(second) == 3
    assert second.summary() == "resumed from epoch 1: trained epochs 2-3"
    _, third = _run(tmp_path / "ck", num_epochs=3, resume=True)
    assert third.status == "reused" and "nothing was trained" in third.summary()
    printed = capsys.readouterr().out
    assert "training 3 epochs from scratch" in printed
    assert "resuming from epoch 1 of 3" in printed and "nothing to train" in printed
    assert [r["status"] for r in records] == ["trained", "resumed", "reused"]
    assert records[1]["resumed_from"] == 1 and records[0]["checkpoint"] == "ck"
    import pandas as pd

    assert pd.DataFrame(third).shape[0] == 3  # still a list of dicts for pandas


def test_run_key_changes_with_any_setting_and_with_the_code(tmp_path, monkeypatch):
    config = {"profile": "quick", "seed": 0, "lr": 5e-3, "batch_size": 128,
              "model": "small-cnn", "schedule": {"kind": "one-cycle", "epochs": 3},
              "data": train.fingerprint(torch.arange(10), ["a", "b"])}
    key = train.run_key(config)
    assert key == train.run_key(dict(reversed(list(config.items()))))  # order does not matter
    assert len(key) == 16
    changed = [{**config, "lr": 5.000001e-3}, {**config, "seed": 1},
               {**config, "profile": "full"},
               {**config, "schedule": {"kind": "one-cycle", "epochs": 4}},
               {**config, "data": train.fingerprint(torch.arange(11), ["a", "b"])},
               {**config, "data": train.fingerprint(torch.arange(10), ["a", "c"])},
               {**config, "extra": None}]
    keys = {train.run_key(c) for c in changed}
    assert key not in keys and len(keys) == len(changed)
    from types import SimpleNamespace

    assert train.run_key(SimpleNamespace(**config)) == key
    with pytest.raises(TypeError, match=r"config\['x'\] is a Tensor.*fingerprint"):
        train.run_key({"x": torch.zeros(2)})
    # another version of a model module: another key
    module = tmp_path / "my_models.py"
    module.write_text("WIDTH = 16\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mod = importlib.import_module("my_models")
    before = train.run_key(config, code=[mod])
    module.write_text("WIDTH = 32\n")
    assert train.run_key(config, code=[mod]) != before != key


def test_a_checkpoint_of_another_run_is_never_loaded(tmp_path):
    x, y = _data()

    def go(key, epochs=1):
        net = _net()
        return train.fit(net, train.TensorLoader(x, y, 16), num_epochs=epochs, progress=False,
                         optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                         checkpoint_dir=tmp_path, resume=True, run_key=key)

    assert go("a" * 16).status == "trained"
    assert go("a" * 16).status == "reused"
    with pytest.raises(train.CheckpointMismatchError,
                       match=r"written by run 'aaaa.*this is run 'bbbb.*run_key\(config\)"):
        go("b" * 16)
    with pytest.raises(train.CheckpointMismatchError):
        go(None)  # a keyed checkpoint is not loaded by a run without a key either


def test_divergence_from_a_huge_learning_rate_names_its_step(tmp_path):
    x, y = _data()
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))  # no batch norm to tame it
    with pytest.raises(train.DivergenceError, match=r"epoch 1, step \d+ of 6.*last finite"):
        train.fit(net, train.TensorLoader(x * 1e3, y, 16), num_epochs=5, progress=False,
                  optimizer=torch.optim.SGD(net.parameters(), lr=1e38),
                  checkpoint_dir=tmp_path)
    assert not (tmp_path / train.CHECKPOINT_NAME).exists()  # nothing saved from a bad epoch


@pytest.mark.cuda
def test_cuda_interrupt_and_resume_matches_an_uninterrupted_run(tmp_path):
    device = torch.device("cuda")

    def run(folder, callbacks=(), resume=False):
        torch.manual_seed(0)
        x, y = _data()
        net = _net()
        loader = train.TensorLoader(x.to(device), y.to(device), 16, shuffle=True, seed=0)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
        return net, train.fit(net, loader, num_epochs=4, optimizer=opt, device=device,
                              checkpoint_dir=folder, resume=resume, callbacks=callbacks,
                              progress=False)

    full_net, full = run(tmp_path / "full")
    with pytest.raises(Interrupt):
        run(tmp_path / "cut", callbacks=[lambda e, h, n: (_ for _ in ()).throw(Interrupt)
                                         if e == 2 else None])
    torch.manual_seed(123)
    resumed_net, resumed = run(tmp_path / "cut", resume=True)
    assert resumed.status == "resumed" and resumed.resumed_from == 2
    for a, b in zip(_comparable(full), _comparable(resumed), strict=True):
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k
    for p, q in zip(full_net.parameters(), resumed_net.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-4)


@pytest.mark.cuda
def test_cuda_checkpoint_resumes_on_the_cpu_and_precision_follows_the_capability(tmp_path):
    major, _ = torch.cuda.get_device_capability()
    expected = torch.bfloat16 if major >= 8 else torch.float16
    assert train.amp_dtype(torch.device("cuda")) == expected
    x, y = _data()
    net = _net()
    train.fit(net, train.TensorLoader(x, y, 16), num_epochs=1, device="cuda", progress=False,
              optimizer=torch.optim.AdamW(net.parameters(), lr=1e-2), checkpoint_dir=tmp_path)
    cpu_net = _net()
    hist = train.fit(cpu_net, train.TensorLoader(x, y, 16), num_epochs=1, device="cpu",
                     optimizer=torch.optim.AdamW(cpu_net.parameters(), lr=1e-2),
                     checkpoint_dir=tmp_path, resume=True, progress=False)
    assert hist.status == "reused"
    for p, q in zip(net.parameters(), cpu_net.parameters(), strict=True):
        assert torch.equal(p.detach().cpu(), q.detach())


def test_non_finite_weights_after_an_epoch_are_not_saved(tmp_path):
    x, y = _data()
    net = _net()

    class PoisonAfterStep(torch.optim.SGD):
        poison = False

        def step(self, closure=None):
            out = super().step(closure)
            if self.poison:  # NaN weights after the epoch's last step, its loss still finite
                with torch.no_grad():
                    net[5].bias[0] = float("nan")
            return out

    opt = PoisonAfterStep(net.parameters(), lr=0.0)
    train.fit(net, train.TensorLoader(x, y, 96), num_epochs=1, optimizer=opt,
              checkpoint_dir=tmp_path, progress=False)
    opt.poison = True
    with pytest.raises(train.DivergenceError, match=r"epoch 2: non-finite weights \['5.bias'\]"):
        train.fit(net, train.TensorLoader(x, y, 96), num_epochs=2, optimizer=opt,
                  checkpoint_dir=tmp_path, resume=True, progress=False)
    assert torch.load(tmp_path / train.CHECKPOINT_NAME, weights_only=True)["epoch"] == 1


def test_the_old_names_still_work_and_say_what_replaced_them():
    net = nn.Linear(2, 2)
    loader = train.TensorLoader(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), 2)
    with pytest.warns(DeprecationWarning, match="train.loss_and_accuracy"):
        assert train.evaluate(net, loader) == train.loss_and_accuracy(net, loader)
    with pytest.warns(DeprecationWarning, match="FIT_HOOKS"):
        assert train.FIT_LOG_ENV == "DL_HANDBOOK_FIT_LOG"
