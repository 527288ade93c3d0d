"""Residual networks written out by hand, plus two pieces the ImageNet-pretrained models share.

Every ReLU here is its own, non-inplace module called once per forward pass: Captum's layer hooks and DeepLift
need that, and torchvision's BasicBlock breaks it (one inplace ReLU called twice per block). Owns:
- `ResNet`: ResNet18 with torchvision's state-dict key names (conv1, bn1, layer1.0.conv1, ..., fc), with either
  the CIFAR stem (3×3 stride 1, no max-pool; for training from scratch at 32×32) or the ImageNet stem
  (7×7 stride 2 + max-pool; loads torchvision's ImageNet weights).
- `ResNet9`: the fast DAWNBench/Myrtle CIFAR network.
- `Resize` (on-device bilinear resize, so 32×32 datasets can feed 224×224 networks) and `FrozenBackboneMixin`
  (train only the head; backbone BatchNorm statistics stay fixed).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Resize(nn.Module):
    """Bilinear resize to size×size inside the model, so the dataset stays 32×32 in (GPU) memory."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, size, size)
        if x.shape[-2] == self.size and x.shape[-1] == self.size:
            return x
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class FrozenBackboneMixin:
    """For an nn.Module subclass whose classifier is the child named `head_name`.

    `freeze_backbone()` leaves only the head trainable. The backbone's BatchNorm layers then stay in eval mode
    even under `model.train()`: otherwise every training forward would still move their running statistics,
    and the "frozen" features would drift away from the ones the weights were trained with.
    """

    head_name: str = "fc"
    backbone_frozen: bool = False

    def _in_head(self, qualified_name: str) -> bool:
        return qualified_name == self.head_name or qualified_name.startswith(self.head_name + ".")

    def freeze_backbone(self) -> None:
        for name, param in self.named_parameters():  # type: ignore[attr-defined]
            param.requires_grad_(self._in_head(name))
        self.backbone_frozen = True
        self.train(self.training)  # type: ignore[attr-defined]

    def train(self, mode: bool = True):  # returns self, like nn.Module.train
        super().train(mode)  # type: ignore[misc]
        if self.backbone_frozen:
            for name, module in self.named_modules():  # type: ignore[attr-defined]
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not self._in_head(name):
                    module.eval()
        return self


class BasicBlock(nn.Module):
    """Two 3×3 convs with a shortcut; torchvision's key names (conv1, bn1, conv2, bn2, downsample.0/1)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_planes != planes:  # the shortcut must match the new shape: 1×1 conv + BN
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))
        self.relu2 = nn.ReLU()  # after the sum: a second instance, not relu1 called again

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class ResNet(FrozenBackboneMixin, nn.Module):
    """ResNet with BasicBlocks (ResNet18 by default), key-compatible with torchvision.models.resnet18."""

    cam_layer = "layer4"  # Grad-CAM: the last stage's output
    head_name = "fc"

    def __init__(self, num_classes: int, *, blocks: Sequence[int] = (2, 2, 2, 2),
                 widths: Sequence[int] = (64, 128, 256, 512), stem: str = "cifar", image_size: int | None = None) -> None:
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        self.resize = Resize(image_size) if image_size else None
        if stem == "imagenet":  # 224 -> 56 before the first stage
            self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        else:  # 32×32 images: keep the resolution, a 7×7/2 stem + pool would leave 8×8 for the first stage
            self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else None
        in_planes = widths[0]
        for i, (n_blocks, planes) in enumerate(zip(blocks, widths, strict=True), start=1):
            stride = 1 if i == 1 else 2
            layer = [BasicBlock(in_planes, planes, stride)] + [BasicBlock(planes, planes) for _ in range(n_blocks - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*layer))
            in_planes = planes
        self.n_stages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_planes, num_classes)
        self.cam_layer = f"layer{self.n_stages}"
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) normalized -> (B, num_classes)
        if self.resize is not None:
            x = self.resize(x)
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for i in range(1, self.n_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.flatten(self.avgpool(x)))


def conv_bn(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    """3×3 conv → BN → ReLU (→ 2×2 max-pool): ResNet-9's building block."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), bn=nn.BatchNorm2d(c_out), relu=nn.ReLU())
    if pool:
        layers["pool"] = nn.MaxPool2d(2)
    return nn.Sequential(layers)


class Residual(nn.Module):
    """x + two conv_bn blocks of x (same width)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.res1 = conv_bn(channels, channels)
        self.res2 = conv_bn(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res2(self.res1(x))


class ResNet9(nn.Module):
    """The DAWNBench/Myrtle "ResNet-9" (David Page, 2018), 32×32 input.

    prep conv w → layer1: conv 2w + pool + residual → layer2: conv 4w + pool → layer3: conv 8w + pool + residual
    → global max-pool → fc (no bias) → logits × scale. With w = 64: 32×32 → 16 → 8 → 4 spatially.
    """

    cam_layer = "layer3"
    head_name = "fc"

    def __init__(self, num_classes: int, width: int = 64, scale: float = 0.125) -> None:
        super().__init__()
        w = width
        self.prep = conv_bn(3, w)
        self.layer1 = nn.Sequential(OrderedDict(conv=conv_bn(w, 2 * w, pool=True), residual=Residual(2 * w)))
        self.layer2 = conv_bn(2 * w, 4 * w, pool=True)
        self.layer3 = nn.Sequential(OrderedDict(conv=conv_bn(4 * w, 8 * w, pool=True), residual=Residual(8 * w)))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8 * w, num_classes, bias=False)
        self.scale = float(scale)  # the original damps the logits (0.125) instead of tuning the loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) normalized -> (B, num_classes)
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.fc(self.flatten(self.pool(x))) * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"
