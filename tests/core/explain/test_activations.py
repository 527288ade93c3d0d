"""pre_activations collects what each activation receives, samples it reproducibly, and leaves the model as it was."""

import torch
from torch import nn

from core.explain.activations import pre_activations, summary
from core.models.catalog import build_model


def test_values_are_exactly_the_inputs_of_the_relus():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU())
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    vals = pre_activations(model, x)
    assert list(vals) == ["1", "3"]
    assert torch.allclose(vals["1"], model[0](x).flatten())
    assert torch.allclose(vals["3"], model[2](model[1](model[0](x))).flatten())


def test_batch_norm_centres_each_layer_and_mode_is_restored():
    torch.manual_seed(0)
    plain = build_model("cnn", 10, widths=(8, 8, 8, 8), fc=16)
    bn = build_model("cnn", 10, widths=(8, 8, 8, 8), fc=16, batch_norm=True)
    x = torch.randn(16, 3, 32, 32)
    bn.train()
    bn(x)  # one training forward: running stats now describe this batch roughly
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    vals = pre_activations(bn, x, max_values=100, seed=1)
    assert bn.training and all(torch.equal(state[k], v) for k, v in bn.state_dict().items())
    assert all(len(v) <= 100 for v in vals.values())
    assert torch.equal(pre_activations(bn, x, max_values=100, seed=1)["features.relu1"], vals["features.relu1"])
    rows = {r["layer"]: r for r in summary(pre_activations(plain, x))}
    assert set(rows) >= {"features.relu1", "features.relu4", "classifier.relu"}
    assert 0.0 <= rows["features.relu1"]["zeroed by ReLU"] <= 1.0


def test_batch_stats_normalize_an_untrained_bn_network_like_training_does():
    torch.manual_seed(0)
    bn = build_model("cnn", 10, widths=(8, 8, 8, 8), fc=16, batch_norm=True).eval()
    x = torch.randn(32, 3, 32, 32) * 5 + 2  # badly scaled inputs
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    train_like = pre_activations(bn, x, batch_stats=True, max_values=10**9)
    for name in ("features.relu1", "features.relu4"):
        assert abs(train_like[name].mean().item()) < 1e-3 and abs(train_like[name].std().item() - 1) < 0.05
    assert not bn.training and all(torch.equal(before[k], v) for k, v in bn.state_dict().items())
