"""The model zoo: a registry of named builders (mlp, cnn, resnet9, resnet18, *_imagenet) and model inspection.

`build_model(name, num_classes, **options)` validates the options (ConfigError naming the option or layer) and
returns an nn.Module that maps normalized float images (B, 3, 32, 32) to logits (B, num_classes). Every
activation is its own non-inplace module called once per forward pass, so Captum's hooks and DeepLift work.
ImageNet-pretrained models resize to their own input size inside forward() and load weights from torchvision's
cache/download or from a local file (`weights=PATH`). Also: parameter counts, the conv layers (for filter and
feature-map views), the Grad-CAM layer and the classifier head.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import MobileNetV2

from core.errors import ConfigError, LabError
from core.models.registry import (
    CIFAR_SIZE,
    bool_option,
    dropout_option,
    int_option,
    ints_option,
    register_model,
)
from core.models.resnet import FrozenBackboneMixin, Resize, ResNet, ResNet9


class MLP(nn.Sequential):
    """flatten → (Linear → ReLU [→ Dropout]) per hidden layer → Linear."""

    head_name = "out"

    def __init__(self, num_classes: int, hidden: tuple[int, ...], dropout: float) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())  # (B, 3, 32, 32) -> (B, 3072)
        width = 3 * CIFAR_SIZE * CIFAR_SIZE
        for i, h in enumerate(hidden, start=1):
            layers[f"fc{i}"] = nn.Linear(width, h)
            layers[f"relu{i}"] = nn.ReLU()
            if dropout:
                layers[f"dropout{i}"] = nn.Dropout(dropout)
            width = h
        layers["out"] = nn.Linear(width, num_classes)
        super().__init__(layers)


@register_model("mlp", "Plain neural network: every pixel feeds fully connected layers (no convolutions).")
def mlp(num_classes: int, hidden: tuple[int, ...] = (4096, 4096), dropout: float = 0.0) -> nn.Module:
    return MLP(num_classes, ints_option("hidden", hidden, 1, 65536, min_len=1, example="(4096, 4096)"), dropout_option(dropout))


class CNN(nn.Module):
    """`features` (conv{i} [bn{i}] relu{i} [pool{i}] ... [gap]) then `classifier` (flatten fc1 relu [dropout] fc2)."""

    def __init__(self, num_classes: int, widths: tuple[int, ...], kernel_size: int, stride: int, padding: int,
                 batch_norm: bool, pool: str, pool_after: tuple[int, ...], fc: int, dropout: float,
                 global_pool: bool) -> None:
        super().__init__()
        features: OrderedDict[str, nn.Module] = OrderedDict()
        size, channels = CIFAR_SIZE, 3  # feature map side and depth, tracked so shape errors surface at build time
        for i, width in enumerate(widths, start=1):
            out = (size + 2 * padding - kernel_size) // stride + 1
            if out < 1:
                raise ConfigError(f"conv{i} (kernel_size {kernel_size}, stride {stride}, padding {padding}) cannot run on "
                                  f"its {size}×{size} input: the output would be empty; use a smaller stride or "
                                  "kernel, more padding, or fewer layers/pools")
            size = out
            features[f"conv{i}"] = nn.Conv2d(channels, width, kernel_size, stride=stride, padding=padding)
            if batch_norm:
                features[f"bn{i}"] = nn.BatchNorm2d(width)
            features[f"relu{i}"] = nn.ReLU()
            if pool != "none" and i in pool_after:
                if size < 2:
                    raise ConfigError(f"pool{i} (2×2) after conv{i} would shrink its {size}×{size} map to nothing; "
                                      f"remove {i} from pool_after or use a smaller stride")
                features[f"pool{i}"] = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
                size //= 2
            channels = width
        if global_pool:
            features["gap"] = nn.AdaptiveAvgPool2d(1)
            size = 1
        self.features = nn.Sequential(features)
        self.flat_features = channels * size * size  # e.g. base CNN: 64 × 8 × 8 = 4096
        classifier: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        if fc:
            classifier["fc1"] = nn.Linear(self.flat_features, fc)
            classifier["relu"] = nn.ReLU()
            if dropout:
                classifier["dropout"] = nn.Dropout(dropout)
            classifier["fc2"] = nn.Linear(fc, num_classes)
            self.head_name = "classifier.fc2"
        else:
            if dropout:  # no hidden layer: drop the flattened features instead
                classifier["dropout"] = nn.Dropout(dropout)
            classifier["out"] = nn.Linear(self.flat_features, num_classes)
            self.head_name = "classifier.out"
        self.classifier = nn.Sequential(classifier)
        self.cam_layer = f"features.relu{len(widths)}"  # rectified maps of the last conv, before any pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) -> (B, num_classes)
        return self.classifier(self.features(x))


@register_model("cnn", "Convolutional network: conv layers (optionally with BatchNorm) and pools, then FC layers.")
def cnn(num_classes: int, widths: tuple[int, ...] = (32, 32, 32, 64), kernel_size: int = 3, stride: int = 1,
        padding: int = 1, batch_norm: bool = False, pool: str = "max", pool_after: tuple[int, ...] = (2, 4),
        fc: int = 4096, dropout: float = 0.0, global_pool: bool = False) -> nn.Module:
    widths = ints_option("widths", widths, 1, 8192, min_len=1, example="(32, 32, 32, 64)")
    pool_after = ints_option("pool_after", pool_after, 1, 8192, min_len=0, example="(2, 4)")
    if any(i > len(widths) for i in pool_after):
        raise ConfigError(f"pool_after={pool_after!r} names a conv layer past the last one: widths has {len(widths)} "
                          f"layer(s), so pool_after may only list 1..{len(widths)} (or be empty)")
    if len(set(pool_after)) != len(pool_after):
        raise ConfigError(f"pool_after lists a layer twice: {pool_after!r}")
    if pool not in ("max", "avg", "none"):
        raise ConfigError(f"pool must be one of 'max', 'avg', 'none', got {pool!r}")
    return CNN(num_classes, widths, int_option("kernel_size", kernel_size, 1, 15), int_option("stride", stride, 1, 8),
               int_option("padding", padding, 0, 15), bool_option("batch_norm", batch_norm), pool, pool_after,
               int_option("fc", fc, 0, 65536), dropout_option(dropout), bool_option("global_pool", global_pool))


@register_model("resnet9", "ResNet-9 (DAWNBench/Myrtle): a fast residual CIFAR network, BatchNorm everywhere.")
def resnet9(num_classes: int, width: int = 64, scale: float = 0.125) -> nn.Module:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 10:
        raise ConfigError(f"scale (logit multiplier) must be a number in (0, 10], got {scale!r}")
    return ResNet9(num_classes, width=int_option("width", width, 1, 512), scale=float(scale))


@register_model("resnet18", "ResNet18 for 32×32 images (3×3 stem, no max-pool), trained from scratch.")
def resnet18(num_classes: int) -> nn.Module:
    return ResNet(num_classes, stem="cifar")


# --- ImageNet-pretrained networks --------------------------------------------------------------------------

class MobileNetV2Resized(FrozenBackboneMixin, MobileNetV2):
    """torchvision's MobileNetV2 (same key names) with an on-device resize and non-inplace ReLU6."""

    cam_layer = "features.18"  # last 1×1 conv + BN + ReLU6, 1280 channels
    head_name = "classifier"

    def __init__(self, num_classes: int, image_size: int) -> None:
        super().__init__(num_classes=num_classes)
        self.resize = Resize(image_size)
        for module in self.modules():  # torchvision builds ReLU6(inplace=True); each is already its own instance
            if hasattr(module, "inplace"):
                module.inplace = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) ImageNet-normalized -> (B, num_classes)
        return super().forward(self.resize(x))


def _weights_option(value: Any) -> str | None:
    """None for random init, "imagenet", or an expanded file path."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, str) and value.strip().lower() == "imagenet":
        return "imagenet"
    if isinstance(value, (str, os.PathLike)) and str(value).strip():
        return os.path.expanduser(str(value).strip())
    raise ConfigError(f"weights must be 'imagenet', 'none' or the path of a weights file, got {value!r}")


def _download(tv_weights: torchvision.models.WeightsEnum) -> Mapping[str, Any]:
    """torchvision's ImageNet state dict: from $TORCH_HOME/hub/checkpoints, downloaded there once if missing."""
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    file_name = os.path.basename(urlparse(tv_weights.url).path)
    try:
        return tv_weights.get_state_dict(progress=True)
    except OSError as e:  # URLError, socket errors, no space, read-only cache folder
        raise LabError(f"could not download the ImageNet weights ({tv_weights.url}: {e}). Put the file {file_name} "
                       f"into {folder} (download it on a machine with internet access), or choose a local "
                       "weights file (weights=PATH), or weights=none to start from random weights") from e
    except Exception as e:  # a truncated or corrupt cached file fails inside torch.load
        raise LabError(f"the cached ImageNet weights {os.path.join(folder, file_name)} cannot be read ({e}); delete "
                       "the file so it is downloaded again, or choose a local weights file (weights=PATH)") from e


def _read_file(path: str, expected: str) -> Mapping[str, Any]:
    if not os.path.isfile(path):
        raise LabError(f"weights file {path} not found; check the path, or use weights=imagenet or weights=none")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # anything a non-weights file triggers in torch.load is the file's fault
        raise LabError(f"{path} is not a PyTorch weights file ({type(e).__name__}: {str(e)[:200]}); {expected}") from e
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):  # common checkpoint wrappers
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LabError(f"{path} holds a {type(state).__name__}, not a state dict of tensors; {expected}")
    if all(str(k).startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {str(k)[len("module."):]: v for k, v in state.items()}
    return state


def _load_backbone(model: nn.Module, state: Mapping[str, Any], source: str, expected: str) -> None:
    """Copy every backbone tensor from `state`; the head stays new (its size depends on num_classes)."""
    in_head = model._in_head  # type: ignore[attr-defined]
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not in_head(k)}
    missing = [k for k in own if k not in state and not in_head(k) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in state.items()
                  if k in own and v.shape != own[k].shape]
    problems = [f"{label} {len(keys)} (e.g. {', '.join(keys[:3])})"
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)) if keys]
    if problems:
        raise LabError(f"{source} does not fit this model's backbone: {'; '.join(problems)}. {expected}")
    model.load_state_dict(state, strict=False)


def _pretrained(model: nn.Module, weights: str | None, tv_weights: torchvision.models.WeightsEnum, arch: str,
                freeze_backbone: bool) -> nn.Module:
    example = ", ".join(list(model.state_dict())[:2])
    expected = (f"Expected a state dict saved with torch.save(model.state_dict(), path) from torchvision's {arch} "
                f"(keys like {example}, ...); the head {model.head_name}.* may be missing")  # type: ignore[attr-defined]
    if weights == "imagenet":
        _load_backbone(model, _download(tv_weights), f"torchvision's {arch} ImageNet weights", expected)
    elif weights is not None:
        _load_backbone(model, _read_file(weights, expected), weights, expected)
    if freeze_backbone:
        model.freeze_backbone()  # type: ignore[attr-defined]
    return model


@register_model("resnet18_imagenet", "ResNet18 pretrained on ImageNet (images upscaled to 224×224), new head.",
                input_norm="imagenet", pretrained=True, input_size=224)
def resnet18_imagenet(num_classes: int, weights: str | None = "imagenet", image_size: int = 224,
                      freeze_backbone: bool = False) -> nn.Module:
    spec, size = _weights_option(weights), int_option("image_size", image_size, 32, 512)
    freeze = bool_option("freeze_backbone", freeze_backbone)
    model = ResNet(num_classes, stem="imagenet", image_size=size)
    return _pretrained(model, spec, torchvision.models.ResNet18_Weights.IMAGENET1K_V1, "resnet18", freeze)


@register_model("mobilenet_v2_imagenet", "MobileNetV2 pretrained on ImageNet (images upscaled to 224×224), new head.",
                input_norm="imagenet", pretrained=True, input_size=224)
def mobilenet_v2_imagenet(num_classes: int, weights: str | None = "imagenet", image_size: int = 224,
                          freeze_backbone: bool = False) -> nn.Module:
    spec, size = _weights_option(weights), int_option("image_size", image_size, 32, 512)
    freeze = bool_option("freeze_backbone", freeze_backbone)
    model = MobileNetV2Resized(num_classes, size)
    return _pretrained(model, spec, torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1, "mobilenet_v2", freeze)
