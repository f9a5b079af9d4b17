import numpy as np
import pytest
import torch
from torch import nn

from helpers import explain, models


class _Linear(nn.Module):
    """score_k = sum(w_k * x): every attribution has a known answer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))

    def forward(self, x):
        return self.head(self.conv(x))


def _cnn(seed=0):
    torch.manual_seed(seed)
    return models.SmallCNN(width=4).eval()


def test_a_target_out_of_range_is_named_with_the_valid_range():
    net, x = _cnn(), torch.randn(2, 1, 28, 28)
    for fn in (explain.saliency, lambda m, x, t: explain.integrated_gradients(m, x, t, n_steps=4),
               lambda m, x, t: explain.grad_cam(m, x, t, "features.1.0"), explain.occlusion):
        with pytest.raises(ValueError, match=r"target class \[10\] out of range: the model has 10 classes, 0 to 9"):
            fn(net, x, 10)
    with pytest.raises(ValueError, match=r"\[-1\] out of range"):
        explain.saliency(net, x, [3, -1])
    with pytest.raises(ValueError, match="3 targets for 2 inputs"):
        explain.saliency(net, x, [1, 2, 3])


def test_a_baseline_of_the_wrong_shape_is_refused():
    net, x = _cnn(), torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"baseline of shape \(1, 14, 14\) does not fit inputs of shape \(2, 1, 28, 28\)"):
        explain.integrated_gradients(net, x, 0, baseline=torch.zeros(1, 14, 14))
    attr, delta = explain.integrated_gradients(net, x, 0, baseline=torch.zeros(1, 28, 28), n_steps=8)
    assert attr.shape == x.shape and delta.shape == (2,)


def test_a_missing_layer_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"no layer 'features.9' in SmallCNN; valid names include: .*features\.1\.0"):
        explain.grad_cam(_cnn(), torch.randn(1, 1, 28, 28), 0, "features.9")


def test_attributions_match_their_definitions_on_a_linear_model():
    torch.manual_seed(0)
    net = _Linear().eval()
    x = torch.randn(3, 1, 4, 4)
    # the gradient of a linear score is constant: its weights mapped back to pixels
    w_eff = torch.einsum("kcp,ci->kip", net.head[1].weight.view(3, 2, 16), net.conv.weight.view(2, 1))
    sal = explain.saliency(net, x, 1)
    assert torch.allclose(sal, w_eff[1].abs().view(1, 1, 4, 4).expand_as(x), atol=1e-6)
    # IG from zero of a linear function is exactly input * gradient, and complete
    ig, delta = explain.integrated_gradients(net, x, 1, n_steps=4)
    assert torch.allclose(ig, x * w_eff[1].view(1, 1, 4, 4), atol=1e-5)
    assert delta.abs().max() < 1e-4
    smooth, none = explain.integrated_gradients(net, x, 1, n_steps=4, smooth_samples=3)
    assert smooth.shape == x.shape and none is None
    # occluding one pixel at a time with 0 removes exactly that pixel's contribution
    occ = explain.occlusion(net, x, 1, window=1, stride=1)
    assert torch.allclose(occ, ig, atol=1e-5)
    cam = explain.grad_cam(net, x, 1, "conv")
    assert cam.shape == x.shape and (cam >= 0).all()


def test_text_integrated_gradients_with_a_tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "a"]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab))
        tok = BertTokenizerFast(str(Path(tmp) / "vocab.txt"))
    torch.manual_seed(0)
    bert = BertForSequenceClassification(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32)).eval()
    tokens, scores, delta, target, p = explain.text_integrated_gradients(bert, tok, "a good film", n_steps=64)
    assert tokens == ["[CLS]", "a", "good", "film", "[SEP]"] and scores.shape == (5,)
    assert delta < 0.05 and target in (0, 1) and 0.5 <= p <= 1
    with pytest.raises(ValueError, match="out of range"):
        explain.text_integrated_gradients(bert, tok, "a good film", target=2, n_steps=4)


def test_token_html_escapes_and_colours():
    page = explain.token_html(["<b>", "good"], [-1.0, 2.0], title="t & u")
    assert "&lt;b&gt;" in page and "rgba(210,0,0,0.50)" in page and "rgba(0,150,0,1.00)" in page
    assert "t &amp; u" in page
    with pytest.raises(ValueError, match="2 tokens but 1 scores"):
        explain.token_html(["a", "b"], [1.0])


def test_overlay_draws_and_checks_sizes():
    import matplotlib

    matplotlib.use("Agg")
    ax = explain.overlay(torch.rand(3, 8, 8), torch.rand(3, 8, 8), title="x")
    assert ax.get_title() == "x"
    with pytest.raises(ValueError, match="differ in size"):
        explain.overlay(np.zeros((8, 8)), np.zeros((4, 4)))


def test_deletion_of_the_pixels_that_matter_beats_a_random_order():
    # a model that looks only at the top-left quarter: deleting it first kills the score
    class Corner(nn.Module):
        def forward(self, x):
            s = x[:, :, :4, :4].sum((1, 2, 3))
            return torch.stack([s, -s], 1)

    x = torch.ones(1, 8, 8)
    attr = torch.zeros(1, 8, 8)
    attr[:, :4, :4] = 1
    frac, p, auc = explain.deletion_curve(Corner(), x, attr, 0, steps=8)
    _, _, auc_random = explain.deletion_curve(Corner(), x, None, 0, steps=8, seed=0)
    assert frac[0] == 0 and frac[-1] == 1 and p[0] > 0.99 and p[-1] == pytest.approx(0.5)
    assert auc < auc_random
    with pytest.raises(ValueError, match="one image"):
        explain.deletion_curve(Corner(), x[None], attr, 0)
    with pytest.raises(ValueError, match="does not fit"):
        explain.deletion_curve(Corner(), x, torch.zeros(1, 4, 4), 0)
    # an image-shaped fill: deleted pixels take its values (here the image's own: nothing changes)
    _, p_same, _ = explain.deletion_curve(Corner(), x, attr, 0, steps=8, fill=x.clone())
    assert np.allclose(p_same, p[0])
    with pytest.raises(ValueError, match="not shaped like the image"):
        explain.deletion_curve(Corner(), x, attr, 0, fill=torch.zeros(1, 4, 4))


def test_randomization_check_cascades_from_the_top_and_leaves_the_model_alone():
    net, x = _cnn(), torch.randn(4, 1, 28, 28)
    before = [p.clone() for p in net.parameters()]
    table = explain.randomization_check(net, lambda m: explain.saliency(m, x, 0))
    assert table["randomized down to"].iloc[0] == "classifier.2"
    assert table["layers randomized"].tolist() == list(range(1, len(table) + 1))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert table["rank correlation"].iloc[-1] < 0.9
    # a "map" that ignores the model is perfectly stable: it fails the check
    stable = explain.randomization_check(net, lambda m: x.abs())
    assert (stable["rank correlation"] == 1.0).all()
    with pytest.raises(ValueError, match=r"no layer\(s\) \['nope'\]"):
        explain.randomization_check(net, lambda m: x, layers=["nope"])
    assert explain.rank_correlation(np.ones(4), np.arange(4)) == 0.0
