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
    assert train.evaluate(net2, train.TensorLoader(x, y, 64))["acc"] > 0.6


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
        train.evaluate(net, [])


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
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert train.amp_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert train.amp_dtype(torch.device("cuda")) == torch.float16
