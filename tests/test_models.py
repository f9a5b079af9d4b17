import pytest
import torch

from helpers import models


def test_small_cnn_and_resnet9_shapes():
    net = models.SmallCNN(num_classes=10)
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert models.count_parameters(net) < 50_000
    assert models.SmallCNN(batch_norm=False, dropout=0.5)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    res = models.ResNet9(num_classes=10, width=8)
    assert res(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_keep_bn_fp32():
    net = models.keep_bn_fp32(models.ResNet9(width=8))
    assert net.net[0][0].weight.dtype == torch.bfloat16
    assert net.net[0][1].weight.dtype == torch.float32


def test_transfer_model_frozen_and_unfrozen():
    frozen = models.transfer_model("efficientnet-lite0", num_classes=5)
    assert models.count_parameters(frozen, trainable_only=True) == 1280 * 5 + 5
    assert frozen(torch.zeros(1, 3, 64, 64)).shape == (1, 5)
    unfrozen = models.transfer_model("efficientnet-lite0", num_classes=5, freeze_backbone=False)
    assert models.count_parameters(unfrozen, trainable_only=True) > 3_000_000
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        models.transfer_model("vgg", 5)


def test_pretrained_features_are_pooled_mid_level_activations():
    net = models.transfer_model("efficientnet-lite0", num_classes=10)
    feats = models.pretrained_features(net, torch.zeros(3, 1, 28, 28), size=64)
    assert feats.shape == (3, 112 * 4)
    images = torch.rand(2, 1, 28, 28)
    assert torch.equal(models.pretrained_features(net, images, stage="middle"),
                       models.pretrained_features(net, images, block=8))
    assert models.pretrained_features(net, torch.zeros(2, 1, 28, 28), stage="last").shape == (2, 320 * 4)
    with pytest.raises(ValueError, match="stage must be"):
        models.pretrained_features(net, torch.zeros(1, 1, 28, 28), stage="top")


def test_pretrained_features_of_a_resnet(monkeypatch):
    """The full profile's ResNet path, offline: same architecture, untrained weights."""
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    feats = models.pretrained_features(net, torch.rand(2, 3, 32, 32), size=64)
    assert feats.shape == (2, 256 * 4)
    assert models.pretrained_features(net, torch.rand(2, 3, 32, 32), stage="last").shape == (2, 512 * 4)
    monkeypatch.setattr(torchvision.models, "get_model",
                        lambda name, weights: torchvision.models.resnet18(weights=None))
    tl = models.transfer_model("resnet18", num_classes=7)
    assert tl(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    assert models.count_parameters(tl, trainable_only=True) == 512 * 7 + 7


def test_the_offline_imagenet_classifier_has_its_own_head():
    net, mean, std, layer = models.imagenet_classifier("efficientnet-lite0")
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
    assert len(mean) == len(std) == 3 and layer in dict(net.named_modules())
    with pytest.raises(ValueError, match="unknown ImageNet classifier"):
        models.imagenet_classifier("vgg")
