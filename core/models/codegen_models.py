"""Plain-PyTorch source of the lab's models, for core/models/codegen.py: `model_source(model_config) -> ModelSource`.

The generated `Net` has the same parameter names and shapes as the lab's model (mlp, cnn, custom, resnet9,
resnet18), so a lab checkpoint's state dict loads into it; pretrained models become torchvision's network with
a new head. Every layer line carries its output shape as a comment, e.g. `# (B, 32, 16, 16)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.config import ModelConfig
from core.errors import ConfigError
from core.models.builder import LayerRow, spec_from_preset, summarize
from core.models.catalog import get_entry
from core.models.registry import CIFAR_SIZE


@dataclass(frozen=True)
class ModelSource:
    code: str  # the definitions (classes/functions); `Net(num_classes)` builds the model
    imports: frozenset[str]  # extra import lines the code needs (beyond torch / nn)
    note: str  # one comment line describing the model


def _shape(dims: Sequence[Any]) -> str:
    return "# (B, " + ", ".join(str(d) for d in dims) + ")"


_ACT_CODE = {"relu": "nn.ReLU()", "gelu": "nn.GELU()", "silu": "nn.SiLU()", "elu": "nn.ELU()", "tanh": "nn.Tanh()",
             "sigmoid": "nn.Sigmoid()"}


def _module_code(row: LayerRow) -> str:
    """The constructor of one summary row's module."""
    o, kind = row.options, row.kind
    if kind == "conv":
        extra = (f", groups={o['groups']}" if o["groups"] != 1 else "") + ("" if o["bias"] else ", bias=False")
        return (f"nn.Conv2d({row.in_shape[0]}, {o['out']}, kernel_size={o['kernel']}, stride={o['stride']}, "  # type: ignore[index]
                f"padding={o['padding']}{extra})")
    if kind == "bn":
        extra = "".join([f", eps={o['eps']!r}" if o["eps"] != 1e-5 else "",
                         f", momentum={o['momentum']!r}" if o["momentum"] != 0.1 else "",
                         "" if o["affine"] else ", affine=False"])
        return f"nn.BatchNorm2d({row.in_shape[0]}{extra})"  # type: ignore[index]
    if kind == "act":
        return f"nn.LeakyReLU({o['slope']!r})" if o["fn"] == "leaky_relu" else _ACT_CODE[o["fn"]]
    if kind == "pool":
        cls = "nn.MaxPool2d" if o["mode"] == "max" else "nn.AvgPool2d"
        return f"{cls}({o['size']})" if o["stride"] == o["size"] else f"{cls}({o['size']}, stride={o['stride']})"
    if kind == "gap":
        return "nn.AdaptiveMaxPool2d(1)" if o["mode"] == "max" else "nn.AdaptiveAvgPool2d(1)"
    if kind == "dropout":
        return f"nn.Dropout({o['p']!r})"
    if kind == "flatten":
        return "nn.Flatten()"
    if kind == "fc":
        return f"nn.Linear({row.in_shape[0]}, {o['units']})"  # type: ignore[index]
    if kind == "head":
        return f"nn.Linear({row.in_shape[0]}, num_classes)"  # type: ignore[index]
    raise ValueError(f"no code for a {kind} layer")


def _sequential(rows: Sequence[LayerRow], indent: str) -> list[str]:
    """`nn.Sequential(OrderedDict([...]))` lines, one named module a line with its output shape."""
    if not rows:
        return [indent + "nn.Sequential()  # no layers: the image goes straight to the classifier"]
    lines = [indent + "nn.Sequential(OrderedDict(["]
    for r in rows:
        lines.append(f'{indent}    ("{r.name}", {_module_code(r)}),  {_shape(r.out_shape or ())}')
    return lines + [indent + "]))"]


def _spec_model(spec: dict[str, Any], num_classes: int, title: str) -> ModelSource:
    summary = summarize(spec, num_classes=num_classes)
    if not summary.ok:
        raise ConfigError(f"custom model: {summary.errors[0]}")
    features = [r for r in summary.rows if r.path.startswith("features.")]
    classifier = [r for r in summary.rows if r.path.startswith("classifier.")]
    flat_in = classifier[0].in_shape or ()
    lines = [
        "class Net(nn.Module):",
        f'    """{title}: `features` (convolutions) then `classifier` (fully connected)."""',
        "",
        "    def __init__(self, num_classes: int = NUM_CLASSES) -> None:",
        "        super().__init__()",
        "        self.features = " + _sequential(features, "        ")[0].lstrip(),
        *_sequential(features, "        ")[1:],
        "        self.classifier = " + _sequential(classifier, "        ")[0].lstrip(),
        *_sequential(classifier, "        ")[1:],
        "",
        f"    def forward(self, x: torch.Tensor) -> torch.Tensor:  {_shape((3, CIFAR_SIZE, CIFAR_SIZE))} normalized",
        f"        x = self.features(x)  {_shape(flat_in)}",
        f"        return self.classifier(x)  {_shape((num_classes,))} logits",
    ]
    return ModelSource("\n".join(lines), frozenset({"from collections import OrderedDict"}),
                       f"{title}: {summary.total_params:,} parameters, {summary.total_macs / 1e6:,.1f}M "
                       "multiply-adds per image")


def _mlp(options: dict[str, Any], num_classes: int) -> ModelSource:
    hidden = [options["hidden"]] if isinstance(options["hidden"], int) else list(options["hidden"])
    width, dropout = 3 * CIFAR_SIZE * CIFAR_SIZE, float(options["dropout"])
    lines = ["class Net(nn.Sequential):",
             '    """A plain neural network: every pixel feeds fully connected layers (no convolutions)."""',
             "",
             "    def __init__(self, num_classes: int = NUM_CLASSES) -> None:",
             "        super().__init__(OrderedDict([",
             f'            ("flatten", nn.Flatten()),  {_shape((width,))}']
    for i, h in enumerate(hidden, start=1):
        lines.append(f'            ("fc{i}", nn.Linear({width}, {h})),  {_shape((h,))}')
        lines.append(f'            ("relu{i}", nn.ReLU()),')
        if dropout:
            lines.append(f'            ("dropout{i}", nn.Dropout({dropout!r})),')
        width = h
    lines += [f'            ("out", nn.Linear({width}, num_classes)),  {_shape((num_classes,))} logits',
              "        ]))"]
    params = sum(a * b + b for a, b in zip([3072, *hidden], [*hidden, num_classes]))
    return ModelSource("\n".join(lines), frozenset({"from collections import OrderedDict"}),
                       f"MLP {'/'.join(map(str, hidden))}: {params:,} parameters")


_RESNET9 = '''\
def conv_bn(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    """3×3 conv → batch norm → ReLU (→ 2×2 max-pool): ResNet-9's building block."""
    layers = OrderedDict(conv=nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), bn=nn.BatchNorm2d(c_out),
                         relu=nn.ReLU())
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


class Net(nn.Module):
    """ResNet-9 (DAWNBench, David Page 2018): prep conv, three stages (two with a residual), max-pool, fc."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = {w}, scale: float = {scale!r}) -> None:
        super().__init__()
        w = width
        self.prep = conv_bn(3, w)  # (B, {w}, 32, 32)
        self.layer1 = nn.Sequential(OrderedDict(conv=conv_bn(w, 2 * w, pool=True),
                                                residual=Residual(2 * w)))  # (B, {w2}, 16, 16)
        self.layer2 = conv_bn(2 * w, 4 * w, pool=True)  # (B, {w4}, 8, 8)
        self.layer3 = nn.Sequential(OrderedDict(conv=conv_bn(4 * w, 8 * w, pool=True),
                                                residual=Residual(8 * w)))  # (B, {w8}, 4, 4)
        self.pool = nn.AdaptiveMaxPool2d(1)  # (B, {w8}, 1, 1)
        self.flatten = nn.Flatten()  # (B, {w8})
        self.fc = nn.Linear(8 * w, num_classes, bias=False)  # (B, {n})
        self.scale = scale  # damps the logits instead of tuning the loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) normalized
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))  # (B, {w8}, 4, 4)
        return self.fc(self.flatten(self.pool(x))) * self.scale  # (B, {n}) logits'''

_RESNET18 = '''\
class BasicBlock(nn.Module):
    """Two 3×3 convs with a shortcut (a 1×1 conv + BN when the shape changes)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class Net(nn.Module):
    """ResNet18 for 32×32 images: a 3×3 stem, no max-pool (torchvision's: 7×7/2 + pool, for 224×224)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)  # (B, 64, 32, 32)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))  # (B, 64, 32, 32)
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))  # (B, 128, 16, 16)
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))  # (B, 256, 8, 8)
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))  # (B, 512, 4, 4)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # (B, 512, 1, 1)
        self.flatten = nn.Flatten()  # (B, 512)
        self.fc = nn.Linear(512, num_classes)  # (B, {n})
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) normalized
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, 4, 4)
        return self.fc(self.flatten(self.avgpool(x)))  # (B, {n}) logits'''

_PRETRAINED = '''\
class Net(nn.Module):
    """torchvision's {title} with a new {n}-class head; 32×32 images are upscaled to {size}×{size} inside."""

    def __init__(self, num_classes: int = NUM_CLASSES, image_size: int = {size},
                 pretrained: bool = {pretrained}) -> None:
        super().__init__()
        # ImageNet weights are downloaded once (~{mb} MB) into ~/.cache/torch/hub/checkpoints/; without
        # internet, copy {file} there first, or pass pretrained=False (random weights: far
        # lower accuracy).
        weights = torchvision.models.{enum}.IMAGENET1K_V1 if pretrained else None
        self.net = torchvision.models.{arch}(weights=weights)
{load}        self.net.{head} = nn.Linear({features}, num_classes)  # new head: (B, {n})
        self.image_size = image_size
{freeze}
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32), normalized with ImageNet's mean/std
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                          align_corners=False)  # (B, 3, {size}, {size})
        return self.net(x)  # (B, {n}) logits'''

_FREEZE = '''\
        # Frozen backbone: only the head learns, and the backbone's batch-norm statistics stay fixed.
        for name, p in self.net.named_parameters():
            p.requires_grad = name.startswith("{head_prefix}")

    def train(self, mode: bool = True) -> "Net":
        super().train(mode)
        for m in self.net.modules():  # keep the frozen backbone's BatchNorm layers in eval mode
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self
'''

_ARCHS = {  # model -> (title, torchvision function, weights enum, head attribute, in features, file, MB)
    "resnet18_imagenet": ("ResNet18", "resnet18", "ResNet18_Weights", "fc", "self.net.fc.in_features",
                          "resnet18-f37072fd.pth", 45),
    "mobilenet_v2_imagenet": ("MobileNetV2", "mobilenet_v2", "MobileNet_V2_Weights", "classifier[1]",
                              "self.net.last_channel", "mobilenet_v2-b0353104.pth", 14),
}


def _pretrained(name: str, options: dict[str, Any], num_classes: int) -> ModelSource:
    title, arch, enum, head, features, file, mb = _ARCHS[name]
    weights = options["weights"]
    if isinstance(weights, str) and weights.strip().lower() in ("none", "imagenet"):
        weights = None if weights.strip().lower() == "none" else "imagenet"
    load = ""
    if weights not in (None, "imagenet"):  # a local weights file, as the lab used it
        load = (f"        state = torch.load({str(weights)!r}, map_location=\"cpu\", weights_only=True)\n"
                "        self.net.load_state_dict(state, strict=False)  # the head's size differs: it is replaced\n")
    head_prefix = "fc." if head == "fc" else "classifier."
    freeze = _FREEZE.format(head_prefix=head_prefix) if options["freeze_backbone"] else ""
    code = _PRETRAINED.format(title=title, n=num_classes, size=options["image_size"], arch=arch, enum=enum,
                              head=head, features=features, file=file, mb=mb, load=load, freeze=freeze,
                              pretrained=weights == "imagenet")
    how = "ImageNet weights" if weights == "imagenet" else "random weights" if not load else f"weights from {weights}"
    return ModelSource(code, frozenset({"import torch.nn.functional as F", "import torchvision"}),
                       f"torchvision {title} ({how}), images resized to {options['image_size']}×"
                       f"{options['image_size']}" + (", frozen backbone" if options["freeze_backbone"] else ""))


def model_source(model: ModelConfig, num_classes: int) -> ModelSource:
    """The `Net` class (and helpers) for a model config: mlp, cnn, custom, resnet9, resnet18 or *_imagenet."""
    entry = get_entry(model.name)
    options = {**entry.defaults, **model.options}
    if model.name == "mlp":
        return _mlp(options, num_classes)
    if model.name in ("cnn", "custom"):
        title = "CNN" if model.name == "cnn" else "Custom CNN"
        return _spec_model(spec_from_preset(model), num_classes, title)
    if model.name == "resnet9":
        w = options["width"]
        code = _RESNET9.format(w=w, w2=2 * w, w4=4 * w, w8=8 * w, n=num_classes, scale=float(options["scale"]))
        return ModelSource(code, frozenset({"from collections import OrderedDict"}), f"ResNet-9, width {w}")
    if model.name == "resnet18":
        return ModelSource(_RESNET18.format(n=num_classes), frozenset(), "ResNet18 (CIFAR stem), from scratch")
    if model.name in _ARCHS:
        return _pretrained(model.name, options, num_classes)
    raise ConfigError(f"no code view for model {model.name!r} yet; it covers mlp, cnn, custom, resnet9, resnet18, "
                      f"{', '.join(_ARCHS)}")
