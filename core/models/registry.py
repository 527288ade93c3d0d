"""The model registry: `register_model` (the decorator the model modules use), the options every builder
validates the same way, and the inspection every model shares (parameter counts, conv layers, the Grad-CAM
layer, the classifier head).

A leaf module: the zoo (zoo.py) and the custom builder (builder.py) fill the registry by being imported.
Looking models up by name and building them is core.models.catalog's, which imports both first, so a lookup
never depends on what happened to be imported before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from core.errors import ConfigError, LabError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_NORMS = ("dataset", "imagenet")
CIFAR_SIZE = 32  # every model takes (B, 3, 32, 32)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str  # one line for the UI
    builder: Callable[..., nn.Module]  # builder(num_classes, **options)
    input_size: int  # spatial size the network itself runs at (it resizes 32×32 input internally)
    input_norm: str  # "dataset": the dataset's mean/std; "imagenet": IMAGENET_MEAN/IMAGENET_STD
    pretrained: bool  # True for the *_imagenet models
    defaults: dict[str, Any]  # the builder's keyword defaults


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, description: str, *, input_norm: str = "dataset", pretrained: bool = False,
                   input_size: int = CIFAR_SIZE) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register `fn(num_classes, **options) -> nn.Module` under `name`; every option needs a default."""
    if input_norm not in INPUT_NORMS:
        raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].name != "num_classes":
            raise TypeError(f"model builder {fn.__name__} must take num_classes as its first argument")
        defaults = {}
        for p in params[1:]:
            if p.default is inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"model builder {fn.__name__}: option {p.name!r} needs a default value")
            defaults[p.name] = p.default
        _REGISTRY[name] = ModelEntry(name, description, fn, input_size, input_norm, pretrained, defaults)
        return fn

    return decorate


def registered(name: str) -> ModelEntry:
    """The entry registered under `name` so far. Outside the model modules use core.models.catalog.get_entry,
    which guarantees every model has registered."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}") from None


def registered_entries() -> list[ModelEntry]:
    """Every entry registered so far, in registration order (see `registered`)."""
    return list(_REGISTRY.values())


# --- inspection ------------------------------------------------------------------------------------------

def unwrap(model: nn.Module) -> nn.Module:
    """The model itself: torch.compile's wrapper keeps it as `_orig_mod`."""
    return getattr(model, "_orig_mod", model)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """(qualified name, module) of every Conv2d, in definition order (= forward order for the models here)."""
    return [(n, m) for n, m in unwrap(model).named_modules() if isinstance(m, nn.Conv2d)]


def last_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """The layer whose output Grad-CAM should use: the last conv's ReLU (cnn), the last stage (ResNets)."""
    model = unwrap(model)
    name = getattr(model, "cam_layer", None)
    if isinstance(name, str):
        return name, model.get_submodule(name)
    convs = conv_layers(model)
    if not convs:
        raise LabError(f"{type(model).__name__} has no convolution layers, so it has no feature maps for Grad-CAM; "
                       "choose a convolutional model (cnn, resnet9, resnet18, ...)")
    return convs[-1]


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The classifier head's parameters: the module named by `model.head_name`, else the last nn.Linear."""
    model = unwrap(model)
    name = getattr(model, "head_name", None)
    if isinstance(name, str):
        return list(model.get_submodule(name).parameters())
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no head_name and no nn.Linear layer")
    return list(linears[-1].parameters())


# --- option checks: ConfigError naming the option ----------------------------------------------------------

def int_option(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ConfigError(f"{name} must be a whole number {bounds}, got {value!r}")
    return value


def ints_option(name: str, value: Any, lo: int, hi: int, *, min_len: int, example: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)) or len(value) < min_len:
        raise ConfigError(f"{name} must be a list of at least {min_len} whole number(s), e.g. {example}, got {value!r}")
    return tuple(int_option(f"{name}[{i}]", v, lo, hi) for i, v in enumerate(value))


def bool_option(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def dropout_option(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"dropout must be a probability in [0, 1), got {value!r}")
    return float(value)

