"""Activation statistics per layer for a batch of images - the regularization page's "with and without batch
norm" view. What a layer hands to its ReLU is what batch norm rescales, so that is what is collected."""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def pre_activations(model: nn.Module, x: torch.Tensor, *, max_values: int = 4000, seed: int = 0,
                    batch_stats: bool = False) -> dict[str, torch.Tensor]:
    """{layer name: a sample of the values entering each ReLU/GELU-like activation} for normalized input x
    (B, 3, H, W). At most `max_values` values per layer, sampled with a seeded generator (the global RNG is
    untouched). The model runs in eval mode and its mode is restored afterwards - unless batch_stats=True:
    then a copy runs in training mode, so batch norm uses this batch's statistics, as it does while training
    (an untrained network's running statistics are 0 and 1, which would make batch norm look like a no-op)."""
    if batch_stats:
        model = copy.deepcopy(model).train()
    acts = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Tanh)
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, acts):
            def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor, name: str = name) -> None:
                captured[name] = inputs[0].detach().float().flatten().cpu()
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    if not batch_stats:
        model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, values in captured.items():
        if values.numel() > max_values:
            values = values[torch.randperm(values.numel(), generator=g)[:max_values]]
        out[name] = values
    return out


def summary(values: dict[str, torch.Tensor]) -> list[dict[str, float | str]]:
    """Mean, standard deviation and fraction of values a ReLU would zero, per layer."""
    return [{"layer": k, "mean": v.mean().item(), "std": v.std().item(), "zeroed by ReLU": (v <= 0).float().mean().item()}
            for k, v in values.items()]
