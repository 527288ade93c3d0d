"""Every model the lab knows, by name: looking one up (`get_entry`, `list_models`) and building it (`build_model`,
`build_for_config`, `model_size`).

Importing this module imports the modules that register models (zoo.py first, then builder.py's `custom`; the
menu keeps that order), so every lookup sees all of them. The registry itself (registry.py) is a leaf the model
modules import to register; everything outside core/models looks models up here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import nn

from core.config import ModelConfig, TrainConfig
from core.errors import ConfigError

# Imported for the models they register (builder imports the zoo first, so the zoo's models come first).
from core.models import builder, zoo  # noqa: F401
from core.models.registry import ModelEntry, count_params, int_option, registered, registered_entries


def list_models() -> list[ModelEntry]:
    """Every registered model, in registration order."""
    return registered_entries()


def get_entry(name: str) -> ModelEntry:
    """The model registered under `name`; ConfigError naming the choices for an unknown one."""
    return registered(name)


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """A fresh model: (B, 3, 32, 32) normalized float -> (B, num_classes) logits."""
    entry = get_entry(name)
    unknown = sorted(set(options) - set(entry.defaults))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in entry.defaults.items()) or "none"
        raise ConfigError(f"unknown option(s) for model {name!r}: {', '.join(unknown)}; its options (defaults) are: {valid}")
    int_option("num_classes", num_classes, 1)
    return entry.builder(num_classes, **options)


def build_for_config(config: TrainConfig, num_classes: int, *, load_pretrained: bool = True) -> nn.Module:
    """The config's model. With load_pretrained=False, ImageNet models start from random weights (used when a
    checkpoint is about to overwrite them anyway, so nothing is downloaded)."""
    return _build_for_model(config.model, num_classes, load_pretrained=load_pretrained)


def _build_for_model(model: ModelConfig, num_classes: int, *, load_pretrained: bool) -> nn.Module:
    options = dict(model.options)
    if not load_pretrained and get_entry(model.name).pretrained:
        options["weights"] = None
    return build_model(model.name, num_classes, **options)


def model_size(config: TrainConfig, num_classes: int) -> tuple[int, int]:
    """(parameters, trainable parameters) of the config's model, without allocating or downloading weights:
    the model is built on PyTorch's meta device. Raises ConfigError for an impossible model."""
    return _model_size(config.model, num_classes)


@lru_cache(maxsize=256)
def _model_size(model: ModelConfig, num_classes: int) -> tuple[int, int]:
    # kept per model and class count: pages ask on every rerun, and a model takes milliseconds to build even on
    # the meta device (a page's largest cost after its charts)
    with torch.device("meta"):
        built = _build_for_model(model, num_classes, load_pretrained=False)
    return count_params(built), count_params(built, trainable_only=True)
