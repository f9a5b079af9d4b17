import numpy as np
import pytest
import torch
from opacus.validators import ModuleValidator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import models, privacy


def _setup(n=64, batch_norm=False):
    torch.manual_seed(0)
    net = models.SmallCNN(width=4, batch_norm=batch_norm)
    data = DataLoader(TensorDataset(torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))), batch_size=16)
    return net, torch.optim.SGD(net.parameters(), lr=0.1), data


@pytest.mark.parametrize("eps", [0.0, -1.0])
def test_a_target_epsilon_that_is_not_positive_is_refused(eps):
    net, opt, data = _setup()
    with pytest.raises(ValueError, match="target epsilon must be positive"):
        privacy.make_private(net, opt, data, eps, 1e-3, 1, 1.0)


@pytest.mark.parametrize("delta", [1 / 64, 0.5, 0.0])
def test_a_delta_of_1_over_n_or_more_is_refused(delta):
    net, opt, data = _setup()
    with pytest.raises(ValueError, match=r"delta must be in \(0, 1/n\) = \(0, 0.016\) for n = 64"):
        privacy.make_private(net, opt, data, 8.0, delta, 1, 1.0)


def test_batchnorm_is_refused_with_the_fix_named():
    net, opt, data = _setup(batch_norm=True)
    with pytest.raises(ValueError, match=r"ModuleValidator\.fix\(model\)"):
        privacy.make_private(net, opt, data, 8.0, 1e-3, 1, 1.0)


def test_training_reaches_the_target_epsilon_within_5_percent():
    torch.manual_seed(0)
    net = privacy.dp_ready(models.SmallCNN(width=4))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules()) and not ModuleValidator.validate(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    data = DataLoader(TensorDataset(torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))), batch_size=32)
    before = [p.clone() for p in net.parameters()]
    model, opt, loader, engine = privacy.make_private(net, opt, data, 4.0, 1e-3, 2, 1.0, accountant="rdp")
    spent = privacy.train_private(model, opt, loader, engine, 2, 1e-3, max_physical_batch_size=8)
    assert abs(spent - 4.0) / 4.0 <= 0.05 and spent <= 4.0 + 1e-6
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_logit_confidence_and_loss_scores_match_their_definitions():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
    labels = torch.tensor([0, 2])
    p = logits.softmax(1)[torch.arange(2), labels].double()
    assert np.allclose(privacy.logit_confidence(logits, labels), torch.log(p / (1 - p)).numpy())
    assert np.allclose(privacy.loss_threshold_scores(logits, labels), torch.log(p).numpy())
    with pytest.raises(ValueError, match="need"):
        privacy.logit_confidence(torch.zeros(3), labels)


def test_lira_finds_members_whose_confidence_sits_above_their_out_distribution():
    rng = np.random.default_rng(0)
    n, shadows = 400, 8
    difficulty = rng.normal(0, 2, n)  # each example has its own typical confidence
    inside = rng.random((shadows, n)) < 0.5
    conf = difficulty + rng.normal(0, 0.3, (shadows, n)) + 1.0 * inside  # training raises it
    member = rng.random(n) < 0.5
    target = difficulty + rng.normal(0, 0.3, n) + 1.0 * member
    lira = privacy.attack_metrics(member, privacy.lira_offline(target, conf, inside))
    global_threshold = privacy.attack_metrics(member, target)
    assert lira["auc"] > 0.9 > global_threshold["auc"]  # per-example calibration is the point
    assert lira["tpr@1%"] > global_threshold["tpr@1%"]
    with pytest.raises(ValueError, match="at least 2 shadow models, got 1"):
        privacy.lira_offline(target, conf[:1], inside[:1])
    with pytest.raises(ValueError, match="shapes disagree"):
        privacy.lira_offline(target[:10], conf, inside)
    # an example no shadow left out falls back to the pooled out-distribution
    inside[:, 0] = True
    assert np.isfinite(privacy.lira_offline(target, conf, inside)).all()


def test_online_lira_with_a_fixed_variance_beats_the_per_example_offline_form_with_few_shadows():
    rng = np.random.default_rng(1)
    n, shadows = 2000, 8
    difficulty = rng.normal(0, 2, n)
    inside = np.zeros((shadows, n), dtype=bool)
    for s in range(0, shadows, 2):  # complementary pairs, as the chapter trains them
        half = rng.permutation(n)[: n // 2]
        inside[s, half], inside[s + 1] = True, True
        inside[s + 1, half] = False
    assert (inside.sum(0) == shadows // 2).all()
    conf = difficulty + rng.normal(0, 0.5, (shadows, n)) + 1.0 * inside
    member = rng.random(n) < 0.5
    target = difficulty + rng.normal(0, 0.5, n) + 1.0 * member
    online = privacy.attack_metrics(member, privacy.lira(target, conf, inside))
    offline = privacy.attack_metrics(member, privacy.lira_offline(target, conf, inside))
    assert online["auc"] > offline["auc"] and online["tpr@1%"] > offline["tpr@1%"]
    # the old name is the offline, per-example form
    assert np.allclose(privacy.lira_offline(target, conf, inside),
                       privacy.lira(target, conf, inside, online=False, fixed_variance=False))
    # a fixed variance is one number for every example
    mean, std = privacy._gaussian(conf, ~inside, True, 1e-3)
    assert np.ptp(std) == 0 and std[0] > 0
    with pytest.raises(ValueError, match="at least 2 shadow models"):
        privacy.lira(target, conf[:1], inside[:1])


def test_the_batchnorm_refusal_quotes_whole_sentences():
    net, opt, data = _setup(batch_norm=True)
    with pytest.raises(ValueError) as info:
        privacy.make_private(net, opt, data, 8.0, 1e-3, 1, 1.0)
    inner = str(info.value).split("(", 1)[1].split(")", 1)[0]
    assert inner.startswith("ShouldReplaceModuleError: BatchNorm cannot support training with differential privacy")
    assert inner.endswith("privacy")  # a sentence, not a word cut in half


def test_attack_metrics_and_the_bootstrap():
    member = np.array([True] * 100 + [False] * 100)
    perfect = privacy.attack_metrics(member, member.astype(float))
    assert perfect["auc"] == 1.0 and perfect["tpr@1%"] == 1.0 and perfect["tpr@0.1%"] == 1.0
    rng = np.random.default_rng(0)
    noise = rng.random(200)
    chance = privacy.tpr_at_fpr_interval(member, noise, metric="auc", n_boot=200)
    assert chance["ci_low"] < 0.5 < chance["ci_high"]
    paired = privacy.tpr_at_fpr_interval(member, member + noise, noise, at=0.01, n_boot=200)
    assert paired["ci_low"] > 0.5
    with pytest.raises(ValueError, match="members and non-members"):
        privacy.attack_metrics(np.ones(5, dtype=bool), np.zeros(5))
    assert privacy.tpr_at_fpr(np.array([0.02, 0.5]), np.array([0.3, 0.9]), 0.01) == 0.0
