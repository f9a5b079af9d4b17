"""The recipes give later chapters the same model as the chapter that teaches it: same call,
same run key, so a finished checkpoint is reused; any change trains afresh."""

from types import SimpleNamespace

import pytest
import torch

from helpers import profiles, recipes, text


def _small_image_data():
    cfg = profiles.chapter_config("quick", "cnn", num_epochs=1)
    d = recipes.image_data(cfg, "quick")
    assert d.x_fit.shape[1:] == (1, 28, 28) and len(d.x_val) == 5000
    assert abs(float(d.x_fit.mean())) < 0.05  # normalized with the training statistics
    small = SimpleNamespace(**{**vars(d), "x_fit": d.x_fit[:512], "y_fit": d.y_fit[:512],
                               "x_val": d.x_val[:256], "y_val": d.y_val[:256]})
    return cfg, small


def test_train_cnn_is_reused_under_the_same_key_and_retrained_under_another():
    cfg, d = _small_image_data()
    net, history, key = recipes.train_cnn(cfg, d, seed=0, device=torch.device("cpu"))
    assert history.status == "trained" and len(history) == 1
    again, history2, key2 = recipes.train_cnn(cfg, d, seed=0, device=torch.device("cpu"))
    assert key2 == key and history2.status == "reused"
    for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _, history3, key3 = recipes.train_cnn(cfg, d, seed=1, device=torch.device("cpu"))
    assert key3 != key and history3.status == "trained"


def test_text_recipe_splits_and_fine_tunes():
    cfg = profiles.chapter_config("quick", "bert", num_epochs=1)
    train_df, val_df, test_df = recipes.text_splits(cfg, seed=0)
    assert (len(train_df), len(val_df), len(test_df)) == (cfg.n_train, cfg.n_val, cfg.n_test)
    assert not set(train_df.index) & set(test_df.index)  # no sentence in two splits
    tokenizer, _ = text.load_classifier(text.quick_model_path(), num_labels=2)
    net, history = recipes.fine_tune_text(cfg, text.quick_model_path(), tokenizer, train_df.iloc[:64],
                                          seed=0, device=torch.device("cpu"))
    assert history.status == "trained"
    assert not net.model.base_model.embeddings.word_embeddings.weight.requires_grad  # quick: frozen
    _, again = recipes.fine_tune_text(cfg, text.quick_model_path(), tokenizer, train_df.iloc[:64],
                                      seed=0, device=torch.device("cpu"))
    assert again.status == "reused"


def test_regularization_recipe_and_its_options():
    cfg = profiles.chapter_config("quick", "regularization", num_epochs=2)
    cfg = SimpleNamespace(**{**vars(cfg), "n_train": 128, "n_stop": 64, "n_val": 64, "n_test": 64})
    s = recipes.regularization_data(cfg, "quick", seed=0)
    assert [len(part[1]) for part in (s.train, s.stop, s.val, s.test)] == [128, 64, 64, 64]
    net, history = recipes.train_small_cnn(cfg, s, {}, seed=0, device=torch.device("cpu"))
    assert len(history) == 2
    calls = []

    def loss(n):
        calls.append(n)
        return torch.nn.CrossEntropyLoss()

    net2, _ = recipes.train_small_cnn(cfg, s, {"dropout": 0.5, "augment": True}, seed=0,
                                      device=torch.device("cpu"), loss_fn=loss)
    assert len(calls) == 1 and calls[0] is net2
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in net2.modules())
    with pytest.raises(ValueError):
        recipes.regularization_data(SimpleNamespace(**{**vars(cfg), "n_train": 10**6}), "quick", 0)


def test_the_credit_splits_and_model_of_chapter_07():
    s = recipes.credit_splits(SimpleNamespace(credit_test=300, credit_val=200), seed=0)
    assert (len(s.X_tr), len(s.X_va), len(s.X_te)) == (500, 200, 300)
    assert len(s.X_dev) == 700 and "age group" in s.X_te.columns
    assert set(s.X_tr.index).isdisjoint(s.X_te.index)
    model = recipes.credit_model().fit(s.X_tr, s.y_tr)
    assert 0.6 < model.score(s.X_te, s.y_te) < 0.85  # the majority class is 0.70


def test_lora_model_trains_under_2_percent_and_starts_as_the_pretrained_model():
    import torch

    from helpers import models, text

    tokenizer, net = text.load_classifier(text.quick_model_path(), num_labels=2)
    net.eval()
    batch = tokenizer(["a gem of a film", "a dull mess"], padding=True, return_tensors="pt")
    batch = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        before = net(batch)
    total = models.count_parameters(net)
    net.model = recipes.lora_model(net.model, r=8, alpha=16)
    net.eval()
    with torch.no_grad():
        after = net(batch)
    assert torch.allclose(before, after, atol=1e-6)  # B starts at zero
    trainable = models.count_parameters(net, trainable_only=True)
    assert 0 < trainable / total < 0.02
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names) and any("classifier" in n for n in names)
    assert not any("word_embeddings" in n for n in names)
