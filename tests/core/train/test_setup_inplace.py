"""core.train.setup.inplace_relus: the training copy's ReLUs run in place where that is safe, with the same
values and gradients as the model as built (the oracle), and never after a module that keeps its output."""

from __future__ import annotations

import copy

import torch
from torch import nn

from core.models.catalog import build_model
from core.train.setup import inplace_relus


def loss_and_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


def test_cnn_relus_become_inplace_and_learn_the_same() -> None:
    torch.manual_seed(0)
    built = build_model("cnn", 10, widths=(8, 8, 8, 16), batch_norm=True, fc=32)
    fast = copy.deepcopy(built)
    assert inplace_relus(fast) == 5  # four after the convs' batch norms, one after fc1
    assert not any(m.inplace for m in built.modules() if isinstance(m, nn.ReLU))  # the original is untouched
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    loss_a, grads_a = loss_and_grads(built, x, y)
    loss_b, grads_b = loss_and_grads(fast, x, y)
    assert abs(loss_a - loss_b) <= 1e-6 * max(1.0, abs(loss_a))
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b)


def test_a_relu_after_a_module_that_keeps_its_output_stays_as_built() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    assert inplace_relus(model) == 1
    assert not model[2].inplace and model[4].inplace
    x = torch.randn(3, 4, requires_grad=True)
    model(x).sum().backward()  # sigmoid's saved output was not overwritten: autograd does not complain
    assert x.grad is not None
