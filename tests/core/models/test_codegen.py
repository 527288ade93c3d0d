"""core/models/codegen.py: the generated code runs, builds the lab's exact model, and reproduces its schedule and data ops."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision
from torch import nn

from core.config import AugmentConfig, DataConfig, ModelConfig, OptimConfig, TrainConfig, apply_overrides
from core.data import augment as aug
from core.data.loading import dataset_facts
from core.errors import ConfigError
from core.lessons.presets import PRESETS
from core.models.builder import spec_from_preset
from core.models.catalog import build_for_config, build_model
from core.models.codegen import generate
from core.models.registry import IMAGENET_MEAN, IMAGENET_STD, count_params
from core.train.schedule import lr_at, steps_per_epoch


def run_code(code: str) -> dict:
    """Execute generated code as a module that is not __main__ (so it builds everything but trains nothing)."""
    ns: dict = {"__name__": "generated_by_test"}
    exec(compile(code, "<generated>", "exec"), ns)
    return ns


def config_with(model: str, **options) -> TrainConfig:
    return TrainConfig(model=ModelConfig(model, options))


MODELS = [
    ("mlp", {}),
    ("mlp", {"hidden": (64, 32, 16), "dropout": 0.3}),
    ("cnn", {"widths": (8, 8, 8, 16), "fc": 32}),
    ("cnn", {"widths": (8, 16, 16), "batch_norm": True, "dropout": 0.5, "pool": "avg", "pool_after": (1, 3), "fc": 24}),
    ("cnn", {"widths": (4, 8), "pool_after": (2,), "fc": 0, "dropout": 0.2, "global_pool": True}),
    ("cnn", {"widths": (6, 6), "fc": 0, "pool_after": (), "kernel_size": 5, "stride": 2, "padding": 2}),
    ("custom", {}),
    ("custom", {"layers": [{"kind": "bn", "momentum": None, "eps": 1e-3}, {"kind": "conv", "out": 12, "kernel": 5,
                                                                           "stride": 2, "groups": 3, "bias": False},
                           {"kind": "bn", "affine": False}, {"kind": "act", "fn": "leaky_relu", "slope": 0.2},
                           {"kind": "pool", "mode": "avg", "size": 3, "stride": 2}, {"kind": "act", "fn": "gelu"},
                           {"kind": "dropout", "p": 0.1}, {"kind": "gap", "mode": "max"}],
                "fc": [{"units": 16, "dropout": 0.25, "act": "silu"}, 8]}),
    ("custom", {"layers": [], "fc": []}),
    ("resnet9", {"width": 8, "scale": 0.25}),
    ("resnet18", {}),
]


@pytest.mark.parametrize(("name", "options"), MODELS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MODELS)])
def test_generated_model_is_the_labs_model_with_the_same_weights(name, options):
    config = config_with(name, **options)
    ns = run_code(generate(config, num_classes=10))
    torch.manual_seed(0)
    lab = build_for_config(config, 10).eval()
    net = ns["Net"](10).eval()
    assert isinstance(ns["model"], ns["Net"])
    assert count_params(net) == count_params(lab)
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in lab.state_dict().items()}
    net.load_state_dict(lab.state_dict())  # a lab checkpoint's weights load as they are
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), lab(x), atol=1e-6)
        assert net(x).shape == (2, 10)


@pytest.mark.parametrize("options", [{}, {"width": 16, "scale": 0.5}], ids=["defaults", "narrow"])
def test_resnet9s_code_template_builds_the_very_network_of_core_models_resnet(options):
    """ResNet-9 is written twice: core/models/resnet.py and codegen's string template. The template stays (the
    code view reads as a plain file), so this proves the two are one network: the same modules in the same
    order, the same state_dict keys and shapes, and the same outputs for the same weights - in eval and in
    train mode (batch statistics), and the same gradients."""
    config = config_with("resnet9", **options)
    ns = run_code(generate(config, num_classes=100))
    torch.manual_seed(0)
    lab = build_for_config(config, 100)
    net = ns["Net"](100)
    assert [(n, type(m)) for n, m in net.named_modules() if type(m).__module__.startswith("torch.")] == \
        [(n, type(m)) for n, m in lab.named_modules() if type(m).__module__.startswith("torch.")]  # torch layers
    assert [n for n, _ in net.named_modules()] == [n for n, _ in lab.named_modules()]
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [(k, v.shape) for k, v in lab.state_dict().items()]
    net.load_state_dict(lab.state_dict())
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for train_mode in (False, True):
        net.train(train_mode)
        lab.train(train_mode)
        out_net, out_lab = net(x), lab(x)
        scale = out_lab.abs().max().item()
        assert torch.allclose(out_net, out_lab, atol=1e-5 * max(1.0, scale), rtol=1e-5)
    out_net.sum().backward()
    out_lab.sum().backward()
    for (name, p_net), (_, p_lab) in zip(net.named_parameters(), lab.named_parameters()):
        assert torch.allclose(p_net.grad, p_lab.grad, atol=1e-5 * max(1.0, p_lab.grad.abs().max().item())), name


def test_every_preset_generates_code_with_the_presets_parameter_count():
    for name, preset in PRESETS.items():
        code = generate(preset.config)
        assert "class Net(" in code and preset.config.optim.name in code.lower(), name
        if preset.config.model.name in ("cnn", "mlp"):
            ns = run_code(code.replace("model = Net(NUM_CLASSES).to(device)", "model = nn.Linear(1, 1)"))
            with torch.device("meta"):  # cnn-512: 270M parameters, counted without allocating
                assert count_params(ns["Net"](100)) == count_params(build_for_config(preset.config, 100)), name


def test_shape_comments_follow_the_layers():
    code = generate(PRESETS["cnn"].config)
    assert '("conv1", nn.Conv2d(3, 32, kernel_size=3, stride=1, padding=1)),  # (B, 32, 32, 32)' in code
    assert '("pool2", nn.MaxPool2d(2)),  # (B, 32, 16, 16)' in code
    assert '("flatten", nn.Flatten()),  # (B, 4096)' in code
    assert '("fc2", nn.Linear(4096, num_classes)),  # (B, 100)' in code
    assert "x = self.features(x)  # (B, 64, 8, 8)" in code


class FakeWeights:
    """Stands in for torchvision's weight download: a fresh ImageNet-shaped state dict, no network."""

    calls: list[str] = []

    @staticmethod
    def get_state_dict(self, *args, **kwargs):
        FakeWeights.calls.append(self.url)
        arch = torchvision.models.resnet18 if "resnet18" in self.url else torchvision.models.mobilenet_v2
        return arch(weights=None).state_dict()


@pytest.mark.parametrize("name", ["resnet18_imagenet", "mobilenet_v2_imagenet"])
@pytest.mark.parametrize("freeze", [False, True])
def test_pretrained_models_become_torchvision_code(monkeypatch, name, freeze):
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", FakeWeights.get_state_dict)
    FakeWeights.calls.clear()
    config = config_with(name, image_size=64, freeze_backbone=freeze)
    code = generate(config, num_classes=10, mean=(0.1, 0.2, 0.3), std=(0.3, 0.3, 0.3))
    assert "IMAGENET1K_V1" in code and "~/.cache/torch/hub/checkpoints" in code
    ns = run_code(code)
    assert len(FakeWeights.calls) == 1  # the module-level model asked for the ImageNet weights once
    assert ns["MEAN"] == IMAGENET_MEAN and ns["STD"] == IMAGENET_STD  # what the pretrained weights expect
    lab = build_model(name, 10, weights=None, image_size=64, freeze_backbone=freeze)
    net = ns["Net"](10, pretrained=False)
    assert count_params(net) == count_params(lab)
    assert count_params(net, trainable_only=True) == count_params(lab, trainable_only=True)
    with torch.no_grad():
        assert net.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    net.train()
    batch_norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(not m.training for m in batch_norms) == freeze
    trainable = [p for p in ns["optimizer"].param_groups[0]["params"]]
    assert len(trainable) == (2 if freeze else len(list(ns["model"].parameters())))


SCHEDULES = [
    OptimConfig(name="adam", lr=1e-3),
    OptimConfig(name="adam", lr=1e-3, warmup_epochs=1.5, weight_decay=1e-4),
    OptimConfig(name="sgd", lr=0.1, momentum=0.8, schedule="step", step_epochs=2, step_gamma=0.5, warmup_epochs=1),
    OptimConfig(name="sgd", lr=0.05, nesterov=True, weight_decay=5e-4, schedule="cosine", warmup_epochs=2),
    OptimConfig(name="adamw", lr=3e-3, weight_decay=0.05, schedule="cosine"),
    OptimConfig(name="sgd", lr=0.2, schedule="onecycle", warmup_epochs=1, label_smoothing=0.1),
    OptimConfig(name="adamw", lr=2e-3, schedule="onecycle", label_smoothing=0.2),
]


@pytest.mark.parametrize("optim", SCHEDULES, ids=[f"{o.name}-{o.schedule}-{o.warmup_epochs:g}" for o in SCHEDULES])
@pytest.mark.parametrize("train_size", [1000, 513])
def test_optimizer_schedule_and_loss_reproduce_the_labs(optim, train_size):
    config = TrainConfig(model=ModelConfig("mlp", {"hidden": (8,)}), optim=optim, batch_size=256, epochs=5)
    ns = run_code(generate(config, num_classes=10, train_size=train_size))
    spe = steps_per_epoch(train_size, 256)
    assert ns["STEPS_PER_EPOCH"] == spe  # 513 images: the lab drops the last batch of 1
    opt, sched = ns["optimizer"], ns["scheduler"]
    expected = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[optim.name]
    assert type(opt) is expected and isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
    group = opt.param_groups[0]
    assert group["weight_decay"] == optim.weight_decay
    if optim.name == "sgd":
        assert (group["momentum"], group["nesterov"]) == (optim.momentum, optim.nesterov)
    assert ns["criterion"].label_smoothing == optim.label_smoothing
    for step in range(spe * 5):
        assert group["lr"] == pytest.approx(lr_at(optim, step, spe, 5), rel=1e-12, abs=1e-15), step
        opt.step()
        sched.step()


def test_transforms_match_the_labs_ops_where_they_are_exact():
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    flip = replace(TrainConfig(), data=DataConfig(augment=AugmentConfig(flip_p=1.0)))
    ns = run_code(generate(flip, num_classes=10, mean=mean, std=std))
    expected = aug.normalize(x.flip(-1)[None], mean, std)[0]
    assert torch.allclose(ns["train_transform"](x), expected, atol=1e-6)
    assert torch.allclose(ns["test_transform"](x), aug.normalize(x[None], mean, std)[0], atol=1e-6)

    full = AugmentConfig(flip_p=0.5, crop_padding=4, crop_mode="reflect", erase_p=0.5, erase_size=8,
                         brightness=0.2, contrast=0.1, saturation=0.3)
    ns = run_code(generate(replace(TrainConfig(), data=DataConfig(augment=full)), num_classes=10))
    ops = {type(t).__name__: t for t in ns["train_transform"].transforms}
    assert (ops["RandomCrop"].padding, ops["RandomCrop"].padding_mode) == ([4, 4, 4, 4], "reflect")
    assert ops["RandomHorizontalFlip"].p == 0.5
    assert ops["ColorJitter"].brightness == (0.8, 1.2) and ops["ColorJitter"].saturation == (0.7, 1.3)
    erase = ops["RandomErasing"]
    assert erase.p == 0.5 and erase.scale == (64 / 1024, 64 / 1024) and erase.ratio == (1.0, 1.0) and erase.value == [0.0]
    assert ns["train_transform"](x).shape == (3, 32, 32)
    cifar100 = dataset_facts("cifar100")
    assert (ns["MEAN"], ns["STD"]) == (cifar100.mean, cifar100.std) == ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


class FakeCifar(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR100's interface over a few random images (no download)."""

    def __init__(self, root, train, download, transform):
        n = 40 if train else 10
        g = torch.Generator().manual_seed(int(train))
        self.images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        self.targets = [i % 2 for i in range(n)]
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.targets[i]


def test_the_training_loop_runs_end_to_end_on_fake_data(capsys):
    config = apply_overrides(config_with("cnn", widths=(4, 4), pool_after=(1, 2), fc=8, batch_norm=True),
                             {"epochs": 2, "batch_size": 16, "subset": 20, "flip_p": 0.5, "schedule": "cosine"})
    code = generate(config, num_classes=2)
    assert "torch.utils.data.Subset" in code
    ns = run_code(code.replace("num_workers=2", "num_workers=0"))
    ns["torchvision"] = SimpleNamespace(datasets=SimpleNamespace(CIFAR100=FakeCifar))
    ns["train_and_evaluate"]()
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"] and "test accuracy" in lines[-1]
    assert ns["scheduler"].last_epoch == 2 * 2  # 20 images / 16 per batch = 2 steps per epoch


def test_dataset_variants_and_an_unknown_model():
    folder = generate(replace(TrainConfig(), data=DataConfig(dataset="folder:/data/pets")), num_classes=3)
    assert "ImageFolder('/data/pets/train'" in folder and "v2.Resize((32, 32)" in folder
    assert "PLACEHOLDERS" in folder
    run_code(folder)
    synthetic = generate(replace(TrainConfig(), data=DataConfig(dataset="synthetic")), num_classes=4)
    assert "FakeData(" in synthetic
    run_code(synthetic)
    with pytest.raises(ConfigError, match="unknown model"):
        generate(config_with("vgg"))
    custom = config_with("custom", **spec_from_preset("cnn"))
    assert "Custom CNN: 17,228,900 parameters" in generate(custom)


@pytest.mark.skipif(shutil.which("ruff", path=str(Path(sys.executable).parent)) is None, reason="ruff not installed")
def test_generated_code_is_ruff_clean(tmp_path):
    configs = {"best": PRESETS["best-scratch"].config, "cnn_sgd": PRESETS["cnn-sgd"].config,
               "mlp": PRESETS["mlp"].config, "pre": PRESETS["resnet18-pretrained"].config,
               "mobile": config_with("mobilenet_v2_imagenet", freeze_backbone=True),
               "r18": PRESETS["resnet18-scratch"].config, "custom": config_with("custom")}
    for name, config in configs.items():
        (tmp_path / f"{name}.py").write_text(generate(config), encoding="utf-8")
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    out = subprocess.run([ruff, "check", "--isolated", "--select", "E,F,W,I,B,UP,SIM", "--line-length", "110",
                          str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
