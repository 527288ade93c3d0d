"""core/models/ (registry, zoo, resnet): shapes, parameter counts, option errors, hook-safety, weight loading, freezing."""

from __future__ import annotations

import urllib.error
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from core.errors import ConfigError, LabError
from core.models import registry
from core.models.catalog import build_model, get_entry, list_models
from core.models.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    conv_layers,
    count_params,
    head_parameters,
    last_conv,
    register_model,
)
from core.models.resnet import Resize

NAMES = ["mlp", "cnn", "resnet9", "resnet18", "resnet18_imagenet", "mobilenet_v2_imagenet", "custom"]
SMALL = {"resnet18_imagenet": {"weights": None, "image_size": 64},
         "mobilenet_v2_imagenet": {"weights": None, "image_size": 64}}
RESNET18_FILE = "resnet18-f37072fd.pth"
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"




def small(name: str, num_classes: int = 10, **options) -> nn.Module:
    """A model that never touches the network and runs fast (ImageNet models at 64×64)."""
    torch.manual_seed(0)
    return build_model(name, num_classes, **{**SMALL.get(name, {}), **options})


def x2() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))  # (B, 3, 32, 32) normalized


def bn_layers(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


# --- registry ----------------------------------------------------------------------------------------------

def test_registry_lists_every_model_with_its_metadata():
    entries = {e.name: e for e in list_models()}
    assert list(entries) == NAMES
    for name in ("mlp", "cnn", "resnet9", "resnet18"):
        assert (entries[name].input_size, entries[name].input_norm, entries[name].pretrained) == (32, "dataset", False)
    for name in ("resnet18_imagenet", "mobilenet_v2_imagenet"):
        e = entries[name]
        assert (e.input_size, e.input_norm, e.pretrained) == (224, "imagenet", True)
        assert e.defaults == {"weights": "imagenet", "image_size": 224, "freeze_backbone": False}
    assert entries["cnn"].defaults == {"widths": (32, 32, 32, 64), "kernel_size": 3, "stride": 1, "padding": 1,
                                       "batch_norm": False, "pool": "max", "pool_after": (2, 4), "fc": 4096,
                                       "dropout": 0.0, "global_pool": False}
    assert entries["mlp"].defaults == {"hidden": (4096, 4096), "dropout": 0.0}
    assert entries["resnet9"].defaults == {"width": 64, "scale": 0.125}
    assert all(e.description and "\n" not in e.description for e in entries.values())
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)


def test_register_model_rejects_a_duplicate_name_and_options_without_defaults(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model("tiny_test", "a test model")
    def tiny(num_classes: int, width: int = 4) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))

    assert get_entry("tiny_test").defaults == {"width": 4} and get_entry("tiny_test").builder is tiny
    with pytest.raises(ValueError, match="tiny_test"):
        register_model("tiny_test", "again")(tiny)
    with pytest.raises(TypeError, match="default"):
        register_model("tiny_test2", "no default")(lambda num_classes, width: nn.Identity())


def test_unknown_model_and_unknown_option_name_the_valid_choices():
    with pytest.raises(ConfigError, match="unknown model 'vgg'.*mlp, cnn, resnet9, resnet18"):
        build_model("vgg", 10)
    with pytest.raises(ConfigError) as err:
        build_model("cnn", 10, width=(32,), batchnorm=True)
    message = str(err.value)
    assert "batchnorm, width" in message and "widths=(32, 32, 32, 64)" in message and "batch_norm=False" in message
    with pytest.raises(ConfigError, match="model 'resnet18'.*none"):
        build_model("resnet18", 10, weights=None)


# --- forward shapes and hook safety --------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_classes", [10, 100])
def test_every_model_maps_a_batch_to_finite_logits(name, num_classes):
    model = small(name, num_classes).eval()
    with torch.no_grad():
        out = model(x2())
    assert out.shape == (2, num_classes) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


VARIANTS = [(n, {}) for n in NAMES] + [
    ("mlp", {"hidden": (64, 32, 16), "dropout": 0.3}),
    ("cnn", {"batch_norm": True, "dropout": 0.5, "pool": "avg"}),
    ("cnn", {"fc": 0, "global_pool": True, "dropout": 0.2}),
    ("resnet18_imagenet", {"freeze_backbone": True}),
]


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=[f"{n}-{o}" for n, o in VARIANTS])
def test_every_module_runs_once_per_forward_and_nothing_is_inplace(name, options):
    """Captum's layer hooks and DeepLift need each activation to be its own module, used once, not inplace."""
    model = small(name, **options).train()
    calls: Counter[str] = Counter()
    leaves = {n: m for n, m in model.named_modules() if not list(m.children())}
    for n, m in leaves.items():
        m.register_forward_hook(lambda *_, n=n: calls.update([n]))
    with torch.no_grad():
        model(x2())
    assert dict(calls) == dict.fromkeys(leaves, 1)
    activations = [n for n, m in leaves.items() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardtanh))]
    assert activations, "every model has activations"
    assert [n for n, m in leaves.items() if getattr(m, "inplace", False)] == []
    assert len({id(leaves[n]) for n in activations}) == len(activations)


# --- parameter counts against hand computations ----------------------------------------------------------------

def cnn_param_count(widths, classes, batch_norm=False, fc=4096, flat_side=8):
    convs = sum(c_in * c_out * 9 + c_out for c_in, c_out in zip((3,) + widths[:-1], widths))
    bns = sum(2 * c for c in widths) if batch_norm else 0
    flat = widths[-1] * flat_side * flat_side
    return convs + bns + flat * fc + fc + fc * classes + classes


@pytest.mark.parametrize("widths", [(32, 32, 32, 64), (128, 128, 128, 256), (256, 256, 256, 512),
                                    (512, 512, 512, 1024)])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_cnn_parameter_counts_match_the_report_architectures(widths, batch_norm):
    with torch.device("meta"):  # the 1024-wide CNN has 270M parameters: count them without allocating
        model = build_model("cnn", 100, widths=widths, batch_norm=batch_norm)
    assert count_params(model) == cnn_param_count(widths, 100, batch_norm)


def test_base_cnn_count_spelled_out():
    with torch.device("meta"):
        model = build_model("cnn", 100)
    expected = (3 * 32 * 9 + 32) + 2 * (32 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (4096 * 4096 + 4096) + (4096 * 100 + 100)
    assert count_params(model) == expected == 17_228_900
    assert model.flat_features == 64 * 8 * 8


def test_mlp_resnet_parameter_counts():
    with torch.device("meta"):
        mlp = build_model("mlp", 100)
        mlp3 = build_model("mlp", 10, hidden=(512, 256, 128))
        r9 = build_model("resnet9", 10)
        r18 = build_model("resnet18", 100)
        r18_imagenet = build_model("resnet18_imagenet", 100, weights=None)
        tv = torchvision.models.resnet18(num_classes=100)
    assert count_params(mlp) == (3072 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 100 + 100)
    assert count_params(mlp3) == (3072 * 512 + 512) + (512 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)
    convs = 9 * (3 * 64 + 64 * 128 + 2 * 128 * 128 + 128 * 256 + 256 * 512 + 2 * 512 * 512)
    assert count_params(r9) == convs + 2 * (64 + 3 * 128 + 256 + 3 * 512) + 512 * 10
    assert count_params(r18_imagenet) == count_params(tv)
    assert count_params(r18) == count_params(tv) - 64 * 3 * (49 - 9)  # 3×3 stem instead of 7×7
    assert count_params(r18, trainable_only=True) == count_params(r18)


# --- CNN options ---------------------------------------------------------------------------------------------

def test_cnn_batch_norm_sits_between_every_conv_and_its_relu():
    names = list(dict(small("cnn", widths=(8, 8, 16), pool_after=(1, 3), batch_norm=True).features.named_children()))
    assert names == ["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "conv3", "bn3", "relu3", "pool3"]
    plain = list(dict(small("cnn", widths=(8, 8, 16), pool_after=(1, 3)).features.named_children()))
    assert plain == ["conv1", "relu1", "pool1", "conv2", "relu2", "conv3", "relu3", "pool3"]
    assert len(bn_layers(small("cnn", batch_norm=True))) == 4 and bn_layers(small("cnn")) == []


def test_cnn_classifier_layout_and_dropout():
    model = small("cnn", widths=(8, 16), pool_after=(1,), fc=32, dropout=0.5)
    assert list(dict(model.classifier.named_children())) == ["flatten", "fc1", "relu", "dropout", "fc2"]
    assert isinstance(model.classifier.dropout, nn.Dropout) and model.classifier.dropout.p == 0.5
    x = x2()
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))  # dropout is active in training only
    assert "dropout" not in dict(small("cnn", fc=32).classifier.named_children())
    assert list(dict(small("cnn", fc=0).classifier.named_children())) == ["flatten", "out"]
    mlp = small("mlp", hidden=(16, 8), dropout=0.25)
    assert [n for n, m in mlp.named_children() if isinstance(m, nn.Dropout)] == ["dropout1", "dropout2"]


def test_cnn_pool_options_set_the_flattened_size():
    cases = [({}, 64 * 8 * 8), ({"pool_after": (1,)}, 64 * 16 * 16), ({"pool_after": (1, 2, 3, 4)}, 64 * 2 * 2),
             ({"pool": "none"}, 64 * 32 * 32), ({"pool_after": ()}, 64 * 32 * 32), ({"global_pool": True}, 64),
             ({"stride": 2, "pool_after": ()}, 64 * 2 * 2), ({"kernel_size": 5, "padding": 0}, 64 * 2 * 2)]
    for options, flat in cases:
        with torch.device("meta"):
            model = build_model("cnn", 10, fc=16, **options)
        assert model.flat_features == flat == model.classifier.fc1.in_features, options
    pools = [type(m) for m in small("cnn", pool="avg", fc=16).features if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
    assert pools == [nn.AvgPool2d, nn.AvgPool2d]
    out = small("cnn", kernel_size=5, padding=0, fc=16).eval()(x2())  # the analytic size matches the real one
    assert out.shape == (2, 10)


@pytest.mark.parametrize(("options", "message"), [
    ({"widths": ()}, "widths must be a list of at least 1"),
    ({"widths": (32, "64")}, r"widths\[1\]"),
    ({"widths": (32, 0)}, r"widths\[1\] must be a whole number in 1\.\."),
    ({"kernel_size": 7, "padding": 0, "stride": 2}, "conv3 .*cannot run on its 2×2 input"),
    ({"stride": 4}, "pool4 .*after conv4 would shrink its 1×1 map"),
    ({"pool_after": (5,)}, r"pool_after=\(5,\) names a conv layer past the last one: widths has 4 .*1\.\.4"),
    ({"widths": (8, 16)}, r"pool_after=\(2, 4\) names a conv layer past .*1\.\.2"),
    ({"pool_after": (2, 2)}, "pool_after lists a layer twice"),
    ({"pool": "sum"}, "pool must be one of"),
    ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
    ({"batch_norm": "yes"}, "batch_norm must be true or false"),
    ({"fc": -1}, "fc must be a whole number"),
    ({"stride": 0}, "stride must be a whole number in 1..8"),
])
def test_invalid_cnn_options_raise_config_errors_naming_the_culprit(options, message):
    with pytest.raises(ConfigError, match=message):
        build_model("cnn", 10, **options)


@pytest.mark.parametrize(("name", "num_classes", "options", "message"), [
    ("mlp", 10, {"hidden": ()}, "hidden must be a list of at least 1"),
    ("mlp", 10, {"dropout": -0.1}, "dropout"),
    ("resnet9", 10, {"scale": 0}, "scale"),
    ("resnet9", 10, {"width": True}, "width"),
    ("resnet18_imagenet", 10, {"image_size": 16, "weights": None}, "image_size must be a whole number in 32..512"),
    ("resnet18_imagenet", 10, {"weights": 3}, "weights must be 'imagenet', 'none' or the path"),
    ("mobilenet_v2_imagenet", 10, {"freeze_backbone": 1, "weights": None}, "freeze_backbone must be true or false"),
    ("cnn", 0, {}, "num_classes must be a whole number >= 1"),
    ("resnet18", 2.5, {}, "num_classes must be a whole number >= 1"),
])
def test_invalid_options_of_other_models(name, num_classes, options, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, num_classes, **options)


def test_options_from_json_lists_and_a_single_int_are_accepted():
    assert [m.out_channels for _, m in conv_layers(small("cnn", widths=[8, 16], pool_after=[1, 2], fc=8))] == [8, 16]
    assert small("mlp", hidden=32).fc1.out_features == 32
    assert small("resnet9", width=8, scale=1).fc.in_features == 64


# --- ResNets ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "resnet18_imagenet"])
def test_resnet18_state_dict_keys_equal_torchvision(name):
    ours = small(name, 100).state_dict()
    theirs = torchvision.models.resnet18(num_classes=100).state_dict()
    assert list(ours) == list(theirs)
    differing = [k for k in ours if ours[k].shape != theirs[k].shape]
    assert differing == (["conv1.weight"] if name == "resnet18" else [])


def test_resnet18_imagenet_computes_what_torchvision_computes():
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=7).eval()
    ours = build_model("resnet18_imagenet", 7, weights=None, image_size=64).eval()
    ours.load_state_dict(tv.state_dict())  # strict: same keys, same shapes
    x = x2()
    with torch.no_grad():
        expected = tv(F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False))
        assert torch.allclose(ours(x), expected, atol=1e-5)


def test_mobilenet_computes_what_torchvision_computes():
    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v2(num_classes=7).eval()
    ours = build_model("mobilenet_v2_imagenet", 7, weights=None, image_size=64).eval()
    ours.load_state_dict(tv.state_dict())
    x = x2()
    with torch.no_grad():
        expected = tv(F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False))
        assert torch.allclose(ours(x), expected, atol=1e-5)


def test_resize_module():
    x = x2()
    assert torch.equal(Resize(64)(x), F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False))
    assert Resize(32)(x) is x


def test_resnet9_layout_and_scale():
    model = small("resnet9", 10, width=16).eval()
    assert [m.out_channels for _, m in conv_layers(model)] == [16, 32, 32, 32, 64, 128, 128, 128]
    assert model.fc.bias is None
    with torch.no_grad():
        scaled = model(x2())
        model.scale = 1.0
        assert torch.allclose(model(x2()) * 0.125, scaled)


# --- inspection helpers ----------------------------------------------------------------------------------

def stage_output_shape(model: nn.Module, layer: nn.Module) -> tuple[int, ...]:
    shapes = []
    handle = layer.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
    with torch.no_grad():
        model.eval()(x2())
    handle.remove()
    return shapes[0]


@pytest.mark.parametrize(("name", "first", "last", "n_convs", "cam", "cam_shape"), [
    ("cnn", "features.conv1", "features.conv4", 4, "features.relu4", (2, 64, 16, 16)),
    ("resnet9", "prep.conv", "layer3.residual.res2.conv", 8, "layer3", (2, 512, 4, 4)),
    ("resnet18", "conv1", "layer4.1.conv2", 20, "layer4", (2, 512, 4, 4)),
    ("resnet18_imagenet", "conv1", "layer4.1.conv2", 20, "layer4", (2, 512, 2, 2)),
    ("mobilenet_v2_imagenet", "features.0.0", "features.18.0", 52, "features.18", (2, 1280, 2, 2)),
])
def test_conv_layers_and_grad_cam_layer(name, first, last, n_convs, cam, cam_shape):
    model = small(name)
    convs = conv_layers(model)
    assert (convs[0][0], convs[-1][0], len(convs)) == (first, last, n_convs)
    assert all(isinstance(m, nn.Conv2d) for _, m in convs)
    cam_name, layer = last_conv(model)
    assert cam_name == cam and layer is model.get_submodule(cam)
    assert stage_output_shape(model, layer) == cam_shape


def test_inspection_sees_through_torch_compile():
    model = small("resnet9", width=8)
    compiled = torch.compile(model)  # wrapping is lazy: nothing is compiled until the first call
    assert conv_layers(compiled) == conv_layers(model)
    assert last_conv(compiled) == ("layer3", model.layer3)
    assert head_parameters(compiled) == [model.fc.weight]


def test_mlp_has_no_conv_layers_and_no_grad_cam_layer():
    model = small("mlp", hidden=(8,))
    assert conv_layers(model) == []
    with pytest.raises(LabError, match="no convolution layers"):
        last_conv(model)


@pytest.mark.parametrize(("name", "options", "head"), [
    ("mlp", {"hidden": (8,)}, "out"), ("cnn", {}, "classifier.fc2"), ("cnn", {"fc": 0}, "classifier.out"),
    ("resnet9", {}, "fc"), ("resnet18", {}, "fc"), ("resnet18_imagenet", {}, "fc"),
    ("mobilenet_v2_imagenet", {}, "classifier.1"),
])
def test_head_parameters_are_the_final_classifier(name, options, head):
    model = small(name, 10, **options)
    assert [id(p) for p in head_parameters(model)] == [id(p) for p in model.get_submodule(head).parameters()]


# --- pretrained weights ----------------------------------------------------------------------------------

def random_state(arch: str, drop_head: bool, seed: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)()
    for m in model.modules():  # non-trivial running statistics, so copying them is visible
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
    head = "fc." if arch == "resnet18" else "classifier."
    return {k: v for k, v in model.state_dict().items() if not (drop_head and k.startswith(head))}


@pytest.mark.parametrize(("name", "arch", "probe"), [
    ("resnet18_imagenet", "resnet18", ["conv1.weight", "layer3.0.downsample.1.running_mean", "layer4.1.bn2.weight"]),
    ("mobilenet_v2_imagenet", "mobilenet_v2", ["features.0.0.weight", "features.18.1.running_mean"]),
])
@pytest.mark.parametrize("drop_head", [True, False])
def test_local_weights_file_is_copied_into_the_backbone(tmp_path, name, arch, probe, drop_head):
    state = random_state(arch, drop_head)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    model = build_model(name, 10, weights=str(path), image_size=64)
    own = model.state_dict()
    for key in probe:
        assert torch.equal(own[key], state[key]), key
    assert head_parameters(model)[0].shape[0] == 10  # a fresh head for 10 classes, whatever the file had


def test_weights_file_wrappers_are_unpacked(tmp_path):
    state = random_state("resnet18", drop_head=True)
    old_style = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # pre-2018 files
    for i, payload in enumerate([{"state_dict": state}, {"model": state, "epoch": 3},
                                 {f"module.{k}": v for k, v in state.items()}, old_style]):
        path = tmp_path / f"w{i}.pth"
        torch.save(payload, path)
        model = small("resnet18_imagenet", weights=str(path))
        assert torch.equal(model.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])


def test_weights_file_for_another_architecture_is_refused_with_the_keys(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(random_state("resnet18", drop_head=True), path)
    with pytest.raises(LabError) as err:
        build_model("mobilenet_v2_imagenet", 10, weights=str(path), image_size=64)
    message = str(err.value)
    assert "does not fit" in message and "missing" in message and "unexpected" in message
    assert "conv1.weight" in message and "features.0.0.weight" in message and "torch.save(model.state_dict()" in message


def test_weights_with_the_wrong_shapes_are_refused(tmp_path):
    path = tmp_path / "cifar.pth"
    torch.save(small("resnet18").state_dict(), path)  # 3×3 stem: does not fit the 7×7 ImageNet stem
    with pytest.raises(LabError, match=r"wrong shape 1 \(e\.g\. conv1\.weight \(64, 3, 3, 3\) != \(64, 3, 7, 7\)\)"):
        small("resnet18_imagenet", weights=str(path))


def test_text_file_tensor_file_and_missing_path_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(LabError, match="notes.txt is not a PyTorch weights file.*Expected a state dict"):
        small("resnet18_imagenet", weights=str(text))
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(LabError, match="holds a Tensor, not a state dict"):
        small("resnet18_imagenet", weights=str(tensor))
    with pytest.raises(LabError, match="nope.pth not found"):
        small("mobilenet_v2_imagenet", weights=str(tmp_path / "nope.pth"))


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """torch.hub's cache in tmp_path, and every download fails as it would offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "urlopen", no_network, raising=False)
    return tmp_path / "hub" / "checkpoints"


@pytest.mark.parametrize(("name", "file_name"), [("resnet18_imagenet", RESNET18_FILE),
                                                 ("mobilenet_v2_imagenet", MOBILENET_FILE)])
def test_offline_imagenet_download_says_which_file_to_put_where(offline_hub, name, file_name):
    with pytest.raises(LabError) as err:
        build_model(name, 10)
    message = str(err.value)
    assert message.startswith("could not download")
    assert file_name in message and str(offline_hub) in message and "weights=PATH" in message
    assert "network is unreachable" in message


def test_imagenet_weights_come_from_the_hub_cache_without_network(offline_hub):
    state = random_state("resnet18", drop_head=False)  # the real file has the 1000-class fc
    offline_hub.mkdir(parents=True)
    torch.save(state, offline_hub / RESNET18_FILE)
    model = build_model("resnet18_imagenet", 10, image_size=64)
    assert torch.equal(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert model.fc.out_features == 10


def test_corrupt_cached_imagenet_file_says_to_delete_it(offline_hub):
    offline_hub.mkdir(parents=True)
    (offline_hub / MOBILENET_FILE).write_bytes(b"PK\x03\x04 truncated download")
    with pytest.raises(LabError, match=f"cached ImageNet weights .*{MOBILENET_FILE} cannot be read.*delete the file"):
        build_model("mobilenet_v2_imagenet", 10)


def test_weights_none_builds_offline(offline_hub):
    for weights in (None, "none", "None"):
        assert isinstance(build_model("mobilenet_v2_imagenet", 10, weights=weights), nn.Module)


# --- freezing --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18_imagenet", "mobilenet_v2_imagenet"])
def test_freeze_backbone_trains_only_the_head_and_keeps_bn_statistics(name):
    frozen = small(name, freeze_backbone=True).train()
    head = {id(p) for p in head_parameters(frozen)}
    assert {id(p) for p in frozen.parameters() if p.requires_grad} == head
    assert count_params(frozen, trainable_only=True) == sum(p.numel() for p in head_parameters(frozen))
    assert frozen.training and not any(bn.training for bn in bn_layers(frozen))
    before = [bn.running_mean.clone() for bn in bn_layers(frozen)]
    frozen(x2()).sum().backward()
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bn_layers(frozen)))
    assert all(p.grad is not None for p in head_parameters(frozen))
    frozen.eval().train()  # toggling modes keeps the backbone in eval
    assert not any(bn.training for bn in bn_layers(frozen))

    unfrozen = small(name).train()  # control: without freezing, a training forward moves the statistics
    before = [bn.running_mean.clone() for bn in bn_layers(unfrozen)]
    unfrozen(x2())
    assert not torch.equal(before[0], bn_layers(unfrozen)[0].running_mean)
    assert all(p.requires_grad for p in unfrozen.parameters())
