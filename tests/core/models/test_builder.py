"""core/models/builder.py: the analytic summary against what PyTorch builds and runs, invalid specs, preset specs."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core.config import ModelConfig, TrainConfig, apply_overrides, from_json, to_json
from core.errors import ConfigError, LabError
from core.lessons.presets import PRESETS
from core.models.builder import LayerError, normalize_spec, spec_from_preset, summarize
from core.models.catalog import build_for_config, build_model, get_entry
from core.models.layers import ACTIVATIONS
from core.models.registry import conv_layers, count_params, head_parameters, last_conv

# A spec that touches every layer kind and option: groups, no bias, strides, overlapping pools, BN without
# affine, every activation, global max pool, several FC layers with dropout.
MIXED = {
    "layers": [
        {"kind": "bn", "momentum": None},  # on the input: bn0; running statistics as a cumulative average
        {"kind": "conv", "out": 12, "kernel": 5, "stride": 2, "padding": 2},
        {"kind": "bn", "momentum": 0.05, "affine": False},
        {"kind": "act", "fn": "leaky_relu", "slope": 0.2},
        {"kind": "conv", "out": 18, "kernel": 3, "groups": 3, "bias": False},
        {"kind": "act", "fn": "gelu"},
        {"kind": "act", "fn": "tanh"},  # a second activation in one block: tanh2
        {"kind": "pool", "mode": "avg", "size": 3, "stride": 2},
        {"kind": "dropout", "p": 0.25},
        {"kind": "conv", "out": 8, "kernel": 1, "padding": 0},
        {"kind": "act", "fn": "silu"},
        {"kind": "pool", "mode": "max", "size": 2},
        {"kind": "pool", "mode": "max", "size": 2},  # pool3_2
        {"kind": "act", "fn": "elu"},
        {"kind": "act", "fn": "sigmoid"},
        {"kind": "act", "fn": "relu"},
    ],
    "fc": [{"units": 20, "dropout": 0.5}, 16, {"units": 12, "act": "gelu"}],
}
WITH_GAP = {"layers": [{"kind": "conv", "out": 6}, {"kind": "act"}, {"kind": "gap", "mode": "max"}], "fc": []}


def hooked_forward(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[tuple[int, ...], int]]:
    """path -> (output shape without batch, MACs per image counted from the modules' own attributes)."""
    seen: dict[str, tuple[tuple[int, ...], int]] = {}
    handles = []
    for path, module in model.named_modules():
        if path.count(".") != 1:
            continue

        def hook(mod, inputs, output, path=path):
            if isinstance(mod, nn.Conv2d):
                per_out = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
                macs = output[0].numel() * per_out
            elif isinstance(mod, nn.Linear):
                macs = mod.in_features * mod.out_features
            else:
                macs = 0
            seen[path] = (tuple(output.shape[1:]), macs)

        handles.append(module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        out = model(x)
    for h in handles:
        h.remove()
    seen["<output>"] = (tuple(out.shape[1:]), 0)
    return seen


@pytest.mark.parametrize("spec", [MIXED, WITH_GAP, spec_from_preset("cnn-bn-dropout")], ids=["mixed", "gap", "cnn-bn"])
def test_summary_matches_the_built_module_layer_by_layer(spec):
    summary = summarize(spec, num_classes=7)
    assert summary.ok, summary.message()
    torch.manual_seed(0)
    model = build_model("custom", 7, **spec)
    modules = dict(model.named_modules())
    assert [r.path for r in summary.rows] == [p for p in modules if p.count(".") == 1]
    seen = hooked_forward(model, torch.randn(2, 3, 32, 32))
    for row in summary.rows:
        assert row.out_shape == seen[row.path][0], row.path
        assert row.macs == seen[row.path][1], row.path
        assert row.params == count_params(modules[row.path]), row.path
    assert summary.total_params == count_params(model)
    assert summary.output_shape == seen["<output>"][0] == (7,)


def test_mixed_spec_names_shapes_and_a_hand_computed_total():
    rows = {r.name: r for r in summarize(MIXED, num_classes=7).rows}
    assert list(rows) == ["bn0", "conv1", "bn1", "leaky_relu1", "conv2", "gelu2", "tanh2", "pool2", "dropout2",
                          "conv3", "silu3", "pool3", "pool3_2", "elu3", "sigmoid3", "relu3", "flatten", "fc1",
                          "fc1_relu", "fc1_dropout", "fc2", "fc2_relu", "fc3", "fc3_gelu", "fc4"]
    assert rows["bn0"].params == 6 and rows["bn1"].params == 0  # affine=False: no parameters
    # conv1: 5×5/2 pad 2 on 32×32 -> 16×16; conv2 3×3 groups 3 -> 16×16; avg 3/2 -> 7×7; conv3 1×1; 2 pools -> 1×1
    assert [rows[n].out_shape for n in ("conv1", "conv2", "pool2", "conv3", "pool3", "pool3_2", "flatten")] == \
        [(12, 16, 16), (18, 16, 16), (18, 7, 7), (8, 7, 7), (8, 3, 3), (8, 1, 1), (8,)]
    convs = 16 * 16 * 12 * 3 * 25 + 16 * 16 * 18 * 4 * 9 + 7 * 7 * 8 * 18
    linears = 8 * 20 + 20 * 16 + 16 * 12 + 12 * 7
    assert summarize(MIXED, num_classes=7).total_macs == convs + linears
    assert rows["conv2"].params == 18 * 4 * 9  # no bias, 12/3 input channels per group
    assert rows["fc4"].kind == "head" and rows["fc4"].shape_label == "(B, 7)"


def test_activations_are_separate_non_inplace_modules_and_names_are_readable():
    model = build_model("custom", 10, **MIXED)
    acts = [m for m in model.modules() if type(m) in {type(f(0.1)) for f in ACTIVATIONS.values()}]
    assert len(acts) == 10 and len({id(m) for m in acts}) == 10  # 7 in features, 3 in the FC layers
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    leaky = model.features.leaky_relu1
    assert isinstance(leaky, nn.LeakyReLU) and leaky.negative_slope == 0.2
    bn = model.features.bn1
    assert bn.momentum == 0.05 and not bn.affine


def test_cnn_conventions_make_grad_cam_and_head_lookups_work():
    model = build_model("custom", 10, **MIXED)
    assert last_conv(model)[0] == "features.silu3"  # the last activation after the last conv, before its pool
    assert [n for n, _ in conv_layers(model)] == ["features.conv1", "features.conv2", "features.conv3"]
    assert head_parameters(model) == list(model.classifier.fc4.parameters())
    no_act = build_model("custom", 10, layers=[{"kind": "conv", "out": 4}, {"kind": "pool"}], fc=[])
    assert last_conv(no_act)[0] == "features.conv1"
    mlp_like = build_model("custom", 10, layers=[], fc=[32])
    with pytest.raises(LabError, match="no convolution layers"):
        last_conv(mlp_like)


def small_cnn_presets() -> list[str]:
    return [n for n, p in PRESETS.items() if p.config.model.name in ("cnn", "mlp")]


@pytest.mark.parametrize("name", small_cnn_presets())
def test_a_presets_spec_builds_the_same_network_as_the_preset(name):
    """Same parameters, same state-dict keys and shapes, and the same outputs with the preset's weights.
    Widths, FC and hidden sizes are shrunk (every other option kept) so the test stays fast."""
    config = PRESETS[name].config
    opts = {**get_entry(config.model.name).defaults, **config.model.options}
    shrink = {"model.widths": tuple(max(2, w // 32) for w in opts["widths"]), "model.fc": min(opts.get("fc", 4096), 24)} \
        if config.model.name == "cnn" else {"model.hidden": (24, 16)}
    config = apply_overrides(config, shrink)
    torch.manual_seed(0)
    preset_model = build_for_config(config, 10)
    spec = spec_from_preset(config)
    custom = build_model("custom", 10, **spec)
    assert count_params(custom) == count_params(preset_model)
    x = torch.randn(3, 3, 32, 32)
    if config.model.name == "cnn":  # same layout: the preset's weights load as they are
        assert {k: v.shape for k, v in custom.state_dict().items()} == \
            {k: v.shape for k, v in preset_model.state_dict().items()}
        custom.load_state_dict(preset_model.state_dict())
        assert last_conv(custom)[0] == last_conv(preset_model)[0]
        with torch.no_grad():
            assert torch.equal(custom.eval()(x), preset_model.eval()(x))
    else:
        assert custom(x).shape == preset_model(x).shape == (3, 10)
    assert summarize(spec, num_classes=10).total_params == count_params(preset_model)


@pytest.mark.parametrize("name", small_cnn_presets())
def test_every_full_size_preset_spec_has_the_presets_parameter_count(name):
    config = PRESETS[name].config
    with torch.device("meta"):  # cnn-512 has 270M parameters: count them without allocating
        preset_model, custom = build_for_config(config, 100), build_model("custom", 100, **spec_from_preset(name))
    assert count_params(custom) == count_params(preset_model) == summarize(spec_from_preset(name)).total_params


def test_full_size_cnn_preset_spec_matches_parameter_count_and_output_shape():
    spec = spec_from_preset("cnn")
    model, preset_model = build_model("custom", 100, **spec), build_for_config(PRESETS["cnn"].config, 100)
    assert count_params(model) == count_params(preset_model) == summarize(spec).total_params == 17_228_900
    assert model(torch.zeros(1, 3, 32, 32)).shape == preset_model(torch.zeros(1, 3, 32, 32)).shape == (1, 100)


def test_preset_spec_mapping_details():
    spec = spec_from_preset(apply_overrides(PRESETS["cnn"].config, {"model.fc": 0, "model.dropout": 0.3,
                                                                     "model.pool": "avg", "model.global_pool": True}))
    kinds = [layer["kind"] for layer in spec["layers"]]
    assert kinds == ["conv", "act", "conv", "act", "pool", "conv", "act", "conv", "act", "pool", "gap", "dropout"]
    assert spec["layers"][4] == {"kind": "pool", "mode": "avg", "size": 2, "stride": 2} and spec["fc"] == []
    assert json.loads(json.dumps(spec)) == spec  # plain data
    assert spec_from_preset("mlp") == {"layers": [], "fc": [{"units": 4096, "dropout": 0.0, "act": "relu"}] * 2}
    assert spec_from_preset(ModelConfig("custom", {"layers": [{"kind": "conv", "out": 4}], "fc": [8]})) == {
        "layers": [{"kind": "conv", "out": 4, "kernel": 3, "stride": 1, "padding": 1, "groups": 1, "bias": True}],
        "fc": [{"units": 8, "dropout": 0.0, "act": "relu"}]}
    with pytest.raises(ConfigError, match="pool_after=\\(2, 4\\) names a conv layer past the last one"):
        spec_from_preset(ModelConfig("cnn", {"widths": (8,)}))
    with pytest.raises(ConfigError, match="cnn, mlp or custom.*'resnet9'"):
        spec_from_preset("best-scratch")


def test_a_custom_config_round_trips_through_json_and_trains_from_its_config():
    spec = spec_from_preset("cnn-bn")
    config = TrainConfig(model=ModelConfig("custom", spec))
    again = from_json(to_json(config))
    assert again == config and hash(again.model) == hash(config.model)
    model = build_for_config(again, 10)
    assert count_params(model) == summarize(spec, num_classes=10).total_params
    assert get_entry("custom").defaults.keys() == {"layers", "fc"}
    assert build_model("custom", 10)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)  # the default spec works


# --- invalid specs: flagged on the failing layer, never a runtime shape error --------------------------------

def conv(out=8, **kw):
    return {"kind": "conv", "out": out, **kw}


POOL = {"kind": "pool"}
BAD = [
    # (spec, index, name, message fragment)
    ({"layers": [conv(), POOL, POOL, POOL, POOL, POOL, conv(), POOL], "fc": []}, 7, "pool2",
     "2×2 pool cannot run on its 1×1 input"),
    ({"layers": [conv(stride=4), conv(kernel=11, padding=1)], "fc": []}, 1, "conv2",
     "11×11 kernel is larger than its padded 10×10 input"),
    ({"layers": [conv(), {"kind": "dropout", "p": 1.5}], "fc": []}, 1, "dropout1", "p must be a probability"),
    ({"layers": [conv(out=0)], "fc": []}, 0, "conv1", "out (channels) must be a whole number in 1..8192, got 0"),
    ({"layers": [conv(), {"kind": "act", "fn": "swish"}], "fc": []}, 1, "act1", "activation must be one of relu"),
    ({"layers": [conv(), {"kind": "norm"}], "fc": []}, 1, "layer2", "kind 'norm' is not a layer"),
    ({"layers": [conv(), {"kind": "bn", "momentm": 0.1}], "fc": []}, 1, "bn1", "unknown option(s) 'momentm'"),
    ({"layers": [conv(out=8, groups=3)], "fc": []}, 0, "conv1", "groups=3 must divide both"),
    ({"layers": [conv()], "fc": [16, {"units": 0}]}, 2, "fc2", "units must be a whole number"),
    ({"layers": [conv()], "fc": [{"units": 16, "dropout": 1.0}]}, 1, "fc1", "dropout must be a probability"),
    ({"layers": [{"kind": "pool", "size": 64}], "fc": []}, 0, "pool0", "size must be a whole number in 1..32"),
    ({"layers": [conv(out=8192, kernel=1)], "fc": [256]}, 1, "fc1",
     "this layer alone would have 2,147,483,904 parameters (8 GiB): add pooling"),
]


@pytest.mark.parametrize("spec, index, name, fragment", BAD, ids=[b[2] + ":" + b[3][:20] for b in BAD])
def test_an_invalid_spec_is_flagged_on_the_failing_layer(spec, index, name, fragment):
    summary = summarize(spec)
    assert not summary.ok
    assert summary.errors[0][:2] == (index, name) and fragment in summary.errors[0].message
    assert isinstance(summary.errors[0], LayerError)
    with pytest.raises(ConfigError, match=f"layer {index + 1} \\({name}\\)") as err:
        build_model("custom", 10, **spec)
    assert fragment in str(err.value)


def test_layers_after_a_broken_one_have_unknown_shapes_and_later_value_errors_still_show():
    spec = {"layers": [conv(kernel=31, padding=0, stride=2), conv(), {"kind": "dropout", "p": -0.1}], "fc": [16]}
    summary = summarize(spec)  # conv1 is valid (32 -> 1×1), conv2 too (3×3 on 1×1 padded to 3×3)
    assert [(e.index, e.name) for e in summary.errors] == [(2, "dropout2")]
    spec["layers"][1] = conv(kernel=3, padding=0)  # 1×1 -> 3×3 kernel on a 1×1 input: broken
    summary = summarize(spec)
    assert [(e.index, e.name) for e in summary.errors] == [(1, "conv2"), (2, "dropout2")]
    rows = {r.name: r for r in summary.rows}
    assert rows["conv2"].out_shape is None and rows["flatten"].out_shape is None and rows["fc1"].params is None
    assert rows["conv1"].out_shape == (8, 1, 1) and summary.total_params == rows["conv1"].params
    assert summary.message().splitlines()[0].startswith("layer 2 (conv2): its 3×3 kernel")


def test_a_huge_classifier_is_flagged_on_the_head():
    summary = summarize({"layers": [conv(out=8192, kernel=1)], "fc": []}, num_classes=200)
    assert [(e.index, e.name) for e in summary.errors] == [(1, "out")] and "parameters" in summary.errors[0].message
    assert summary.rows[-1].params is None and summarize({"layers": [conv(out=8192, kernel=1)], "fc": []}).ok


def test_structural_problems_raise_config_errors():
    with pytest.raises(ConfigError, match="must be a list"):
        summarize({"layers": "conv", "fc": []})
    with pytest.raises(ConfigError, match="unknown key\\(s\\) in the custom model spec: 'head'"):
        summarize({"layers": [], "fc": [], "head": 3})
    with pytest.raises(ConfigError, match="input_shape"):
        summarize({"layers": []}, input_shape=(3, 0, 32))
    with pytest.raises(ConfigError, match="layer 1 \\(conv1\\)"):
        normalize_spec({"layers": [conv(kernel=0)]})
    assert not summarize({"layers": [7], "fc": []}).ok


def test_summary_on_another_input_shape_and_the_table():
    summary = summarize({"layers": [conv(out=4, stride=2)], "fc": []}, input_shape=(1, 20, 10), num_classes=3)
    assert summary.rows[0].out_shape == (4, 10, 5) and summary.rows[0].params == 4 * 9 + 4
    assert summary.table()[0] == {"layer": "conv1", "kind": "conv", "details": "1→4, 3×3, stride 2, pad 1",
                                  "output": "(B, 4, 10, 5)", "params": 40, "macs": 10 * 5 * 4 * 9}
