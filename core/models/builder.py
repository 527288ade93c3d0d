"""The CNN builder: a `custom` model composed from plain-data layers, and its analytic per-layer summary.

A spec is JSON-able data, stored in a run's config as the model's options, `ModelConfig("custom", spec)`:

    {"layers": [{"kind": "conv", "out": 32, "kernel": 3, "stride": 1, "padding": 1},
                {"kind": "bn", "momentum": 0.1, "affine": True},
                {"kind": "act", "fn": "relu"},
                {"kind": "pool", "mode": "max", "size": 2},
                {"kind": "dropout", "p": 0.1}, ...],
     "fc": [{"units": 256, "dropout": 0.5, "act": "relu"}, ...]}   # hidden FC layers; the classifier is added

Layer kinds and their options (defaults) are in LAYER_OPTIONS; `fc` entries may also be plain ints (units).
The per-kind checks and arithmetic live in core/models/layers.py; this module composes them.
Module names follow core/models/zoo.py's cnn: a layer is numbered by the conv block it follows (conv1 bn1 relu1
pool1 conv2 ...; layers before the first conv get 0, a repeat in one block gets _2), under `features`; the
classifier is `classifier` = flatten, fc1, fc1_relu, fc1_dropout, ..., then the head `fc{K+1}` (K hidden
layers) or `out` (none). So a cnn preset's spec builds a model with the very same state-dict keys.

`summarize(spec)` computes every layer's output shape, parameters and multiply-adds without running anything,
and flags an impossible layer (empty output, kernel larger than its padded input, p >= 1, zero channels...)
on that layer. `build_model("custom", n, **spec)` refuses such a spec with a ConfigError naming the layer.
`spec_from_preset` turns a cnn (or mlp) preset into a spec, so the builder page can start from any of them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from core.config import ModelConfig, TrainConfig
from core.errors import ConfigError
from core.lessons.presets import get_preset
from core.models import zoo  # noqa: F401  (spec_from_preset reads the zoo's cnn and mlp entries; they register first)
from core.models.layers import (  # noqa: F401 - LAYER_OPTIONS, FC_OPTIONS, POOL_MODES: the spec format
    ACTIVATIONS,
    FC_OPTIONS,
    LAYER_OPTIONS,
    POOL_MODES,
    check_fc,
    check_values,
    fill,
    is_int,
    layer_math,
    maker,
    one_of,
    too_big,
)
from core.models.registry import CIFAR_SIZE, register_model, registered

# A small default network: two conv blocks with batch norm, one hidden FC layer.
DEFAULT_LAYERS: tuple[dict[str, Any], ...] = (
    {"kind": "conv", "out": 32, "kernel": 3, "stride": 1, "padding": 1}, {"kind": "bn"}, {"kind": "act", "fn": "relu"},
    {"kind": "pool", "mode": "max", "size": 2},
    {"kind": "conv", "out": 64, "kernel": 3, "stride": 1, "padding": 1}, {"kind": "bn"}, {"kind": "act", "fn": "relu"},
    {"kind": "pool", "mode": "max", "size": 2},
)
DEFAULT_FC: tuple[dict[str, Any], ...] = ({"units": 256, "dropout": 0.0, "act": "relu"},)


class LayerError(NamedTuple):
    """A layer that cannot work. index: its position in spec["layers"], or len(layers) + j for fc entry j."""

    index: int
    name: str  # conv2, pool3, fc1, ...
    message: str

    def __str__(self) -> str:
        return f"layer {self.index + 1} ({self.name}): {self.message}"


@dataclass(frozen=True)
class LayerRow:
    """One module of the network, as the summary table shows it. Shapes leave out the batch dimension."""

    index: int | None  # spec position (see LayerError); None for modules added automatically (flatten, head)
    name: str  # conv1, bn1, relu1, pool1, gap, flatten, fc1, fc1_relu, fc1_dropout, out / fc{K+1}
    path: str  # qualified module name: features.conv1, classifier.fc1
    kind: str  # conv | bn | act | pool | gap | dropout | flatten | fc | head
    options: Mapping[str, Any]  # the layer's options with defaults filled in
    in_shape: tuple[int, ...] | None  # (C, H, W) or (features,); None once an earlier layer broke the shapes
    out_shape: tuple[int, ...] | None
    params: int | None  # trainable parameters (BN running statistics are buffers, not counted)
    macs: int | None  # multiply-adds for one image (see summarize)
    detail: str  # e.g. "3→32, 3×3, stride 1, pad 1"

    @property
    def shape_label(self) -> str:
        return "?" if self.out_shape is None else "(B, " + ", ".join(map(str, self.out_shape)) + ")"


@dataclass(frozen=True)
class Summary:
    """The per-layer table of a spec and its totals (computed, nothing run). Not ok when `errors` is non-empty;
    rows after the first broken layer then have unknown (None) shapes and the totals count the known rows."""

    rows: tuple[LayerRow, ...]
    errors: tuple[LayerError, ...]
    input_shape: tuple[int, int, int]
    num_classes: int

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        return sum(r.params or 0 for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs or 0 for r in self.rows)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.rows[-1].out_shape if self.rows else None

    def message(self) -> str:
        """Every error on one line each ("" when ok)."""
        return "\n".join(map(str, self.errors))

    def table(self) -> list[dict[str, Any]]:
        """Plain rows for a dataframe: layer, kind, details, output shape, parameters, multiply-adds."""
        return [dict(layer=r.name, kind=r.kind, details=r.detail, output=r.shape_label, params=r.params,
                     macs=r.macs) for r in self.rows]



def _spec_parts(spec: Mapping[str, Any]) -> tuple[Sequence[Any], Sequence[Any]]:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a custom model spec must be an object with 'layers' and 'fc', got {type(spec).__name__}")
    unknown = sorted(set(spec) - {"layers", "fc"})
    if unknown:
        raise ConfigError(f"unknown key(s) in the custom model spec: {', '.join(map(repr, unknown))}; it has 'layers' and 'fc'")
    layers, fc = spec.get("layers", DEFAULT_LAYERS), spec.get("fc", DEFAULT_FC)
    for key, value in (("layers", layers), ("fc", fc)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"the custom model's {key!r} must be a list, got {type(value).__name__}")
    return layers, fc


# --- the analysis (summary) and the plan the model is built from ---------------------------------------------


def _analyse(spec: Mapping[str, Any], input_shape: Sequence[int], num_classes: int
             ) -> tuple[Summary, list[Callable[[], nn.Module] | None]]:
    """Rows, errors and, per row, a factory for its module (None where the row is broken)."""
    raw_layers, raw_fc = _spec_parts(spec)
    c, h, w = (int(v) for v in input_shape)
    shape: tuple[int, ...] | None = (c, h, w)
    rows: list[LayerRow] = []
    makers: list[Callable[[], nn.Module] | None] = []
    errors: list[LayerError] = []
    used: set[str] = set()
    block = 0

    def unique(base: str) -> str:
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        return name

    def add(index: int | None, name: str, section: str, kind: str, options: dict[str, Any],
            in_shape: tuple[int, ...] | None, out: tuple[int, ...] | None, params: int | None, macs: int | None,
            detail: str, make: Callable[[], nn.Module] | None) -> None:
        rows.append(LayerRow(index, name, f"{section}.{name}", kind, options, in_shape, out, params, macs, detail))
        makers.append(make)

    for i, raw in enumerate(raw_layers):
        problems: list[str] = []
        kind = raw.get("kind") if isinstance(raw, Mapping) else None
        if not isinstance(kind, str) or kind not in LAYER_OPTIONS:
            name = unique(f"layer{i + 1}")
            what = f"kind {kind!r}" if isinstance(raw, Mapping) else f"{raw!r}"
            errors.append(LayerError(i, name, f"{what} is not a layer; use an object with kind one of "
                                              f"{', '.join(LAYER_OPTIONS)}"))
            add(i, name, "features", str(kind), {}, shape, None, None, None, "", None)
            shape = None
            continue
        layer = fill(kind, raw, LAYER_OPTIONS[kind], problems)
        check_values(layer, problems)
        if kind == "conv":
            block += 1
        base = (layer["fn"] if one_of(layer["fn"], ACTIVATIONS) else "act") if kind == "act" else kind
        name = unique(base if kind == "gap" else f"{base}{block}")
        in_shape, out, params, macs, detail, make = shape, None, None, None, "", None
        channels = shape[0] if shape else None
        if not problems and shape is not None:
            out, params, macs, detail, make = layer_math(layer, shape, problems)
        for message in problems:
            errors.append(LayerError(i, name, message))
        if problems:
            out, params, macs, make = None, None, None, None
            if kind == "conv" and channels is not None and is_int(layer["out"]) and layer["out"] >= 1:
                detail = f"{channels}→{layer['out']}"
        add(i, name, "features", kind, layer, in_shape, out, params, macs, detail, make)
        shape = out

    n_layers = len(raw_layers)
    flat = None if shape is None else (shape[0] * shape[1] * shape[2],)
    add(None, unique("flatten"), "classifier", "flatten", {}, shape, flat, 0, 0, "", nn.Flatten)
    width = flat[0] if flat else None
    for j, raw in enumerate(raw_fc, start=1):
        problems = []
        fc = check_fc(raw, problems)
        index, name = n_layers + j - 1, unique(f"fc{j}")
        if not problems and width is not None:
            problems += too_big(width * fc["units"] + fc["units"])
        for message in problems:
            errors.append(LayerError(index, name, message))
        ok = not problems and width is not None
        units = fc["units"] if not problems else None
        params = width * units + units if ok else None
        detail = f"{width if width is not None else '?'}→{units if units is not None else '?'}"
        add(index, name, "classifier", "fc", fc, None if width is None else (width,), (units,) if ok else None,
            params, width * units if ok else None, detail, maker(nn.Linear, width, units) if ok else None)
        act_out = (units,) if ok else None
        add(index, unique(f"{name}_{fc['act']}"), "classifier", "act", {"kind": "act", "fn": fc["act"], "slope": 0.01},
            act_out, act_out, 0 if ok else None, 0 if ok else None, "",
            maker(ACTIVATIONS[fc["act"]], 0.01) if ok else None)
        if fc["dropout"] and not problems:
            add(index, unique(f"{name}_dropout"), "classifier", "dropout", {"kind": "dropout", "p": fc["dropout"]},
                act_out, act_out, 0 if ok else None, 0 if ok else None, f"p={fc['dropout']:g}",
                maker(nn.Dropout, fc["dropout"]) if ok else None)
        width = units if ok else None
    head = unique(f"fc{len(raw_fc) + 1}" if raw_fc else "out")
    for message in too_big(width * num_classes + num_classes) if width is not None else []:
        errors.append(LayerError(n_layers + len(raw_fc), head, message))
        width = None
    ok = width is not None
    add(None, head, "classifier", "head", {"units": num_classes}, None if width is None else (width,),
        (num_classes,) if ok else None, width * num_classes + num_classes if ok else None,
        width * num_classes if ok else None, f"{width if ok else '?'}→{num_classes} classes",
        maker(nn.Linear, width, num_classes) if ok else None)
    summary = Summary(tuple(rows), tuple(errors), (int(input_shape[0]), int(input_shape[1]), int(input_shape[2])),
                      num_classes)
    return summary, makers


def summarize(spec: Mapping[str, Any], input_shape: Sequence[int] = (3, CIFAR_SIZE, CIFAR_SIZE),
              num_classes: int = 100) -> Summary:
    """The per-layer table of `spec` for one image of `input_shape` (C, H, W), computed analytically.

    Multiply-adds (MACs) per image: conv out_h·out_w·out_c·(in_c/groups)·k·k, linear in·out (biases are adds,
    not counted); batch norm, activations, pooling, dropout and flatten count 0 - they are elementwise or
    comparisons, negligible next to the convs, and batch norm folds into the conv at inference.
    A structurally broken spec (not an object, 'layers' not a list) raises ConfigError; every problem of a
    single layer is reported in `Summary.errors` on that layer instead.
    """
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3 and all(is_int(v) and v >= 1
                                                                                         for v in input_shape)):
        raise ConfigError(f"input_shape must be (channels, height, width) of positive whole numbers, got {input_shape!r}")
    return _analyse(spec, input_shape, num_classes)[0]


# --- the model ------------------------------------------------------------------------------------------------

class CustomCNN(nn.Module):
    """`features` (the spec's layers) then `classifier` (flatten, hidden FC layers, head) - cnn's layout."""

    def __init__(self, spec: Mapping[str, Any], num_classes: int) -> None:
        super().__init__()
        summary, makers = _analyse(spec, (3, CIFAR_SIZE, CIFAR_SIZE), num_classes)
        if not summary.ok:
            first = summary.errors[0]
            more = f" (and {len(summary.errors) - 1} more problem(s))" if len(summary.errors) > 1 else ""
            raise ConfigError(f"custom model: {first}{more}")
        self.summary = summary
        parts: dict[str, OrderedDict[str, nn.Module]] = {"features": OrderedDict(), "classifier": OrderedDict()}
        for row, make in zip(summary.rows, makers, strict=True):
            assert make is not None  # every row of an ok summary has a module
            parts[row.path.split(".")[0]][row.name] = make()
        self.features = nn.Sequential(parts["features"])
        self.classifier = nn.Sequential(parts["classifier"])
        self.head_name = summary.rows[-1].path
        self.flat_features = next(r.out_shape[0] for r in summary.rows if r.kind == "flatten")  # type: ignore[index]
        cam = _cam_row(summary.rows)
        if cam is not None:  # no conv: no feature maps (core.models.last_conv then says so)
            self.cam_layer = cam

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) -> (B, num_classes)
        return self.classifier(self.features(x))


def _cam_row(rows: Sequence[LayerRow]) -> str | None:
    """Grad-CAM's layer: the last activation after the last conv, before any pooling (else that conv)."""
    convs = [i for i, r in enumerate(rows) if r.kind == "conv"]
    if not convs:
        return None
    cam = rows[convs[-1]].path
    for r in rows[convs[-1] + 1:]:
        if r.kind in ("pool", "gap", "flatten"):
            break
        if r.kind == "act":
            cam = r.path
    return cam


@register_model("custom", "Your own CNN from the builder: conv/BN/activation/pool/dropout layers, then FC layers.")
def custom(num_classes: int, layers: Sequence[Mapping[str, Any]] = DEFAULT_LAYERS,
           fc: Sequence[Any] = DEFAULT_FC) -> nn.Module:
    return CustomCNN({"layers": layers, "fc": fc}, num_classes)


# --- specs from presets -----------------------------------------------------------------------------------------

def spec_from_preset(source: Any) -> dict[str, list[dict[str, Any]]]:
    """A builder spec for a preset name, Preset, TrainConfig or ModelConfig of model cnn, mlp or custom.

    cnn: per width a conv (kernel_size/stride/padding), bn if batch_norm, relu, and a 2×2 pool after the layers
    in pool_after; gap if global_pool; fc → one hidden layer with the dropout (fc=0 with dropout: a dropout
    layer before the classifier). mlp: no layers, its hidden sizes as fc. custom: its spec with defaults filled.
    The result is plain data (lists and dicts); `ModelConfig("custom", spec)` uses it.
    """
    model = _model_config(source)
    options = {**registered(model.name).defaults, **model.options}
    if model.name in ("cnn", "mlp"):  # the model's own checks (ConfigError naming the option), nothing allocated
        with torch.device("meta"):
            registered(model.name).builder(1, **options)
    if model.name == "cnn":
        layers: list[dict[str, Any]] = []
        for i, width in enumerate(_seq(options["widths"]), start=1):
            layers.append({"kind": "conv", "out": width, "kernel": options["kernel_size"], "stride": options["stride"],
                           "padding": options["padding"], "groups": 1, "bias": True})
            if options["batch_norm"]:
                layers.append({"kind": "bn", "momentum": 0.1, "affine": True, "eps": 1e-5})
            layers.append({"kind": "act", "fn": "relu", "slope": 0.01})
            if options["pool"] != "none" and i in _seq(options["pool_after"]):
                layers.append({"kind": "pool", "mode": options["pool"], "size": 2, "stride": 2})
        if options["global_pool"]:
            layers.append({"kind": "gap", "mode": "avg"})
        fc_units, dropout = options["fc"], float(options["dropout"])
        if not fc_units and dropout:
            layers.append({"kind": "dropout", "p": dropout})
        fc = [{"units": fc_units, "dropout": dropout, "act": "relu"}] if fc_units else []
        return {"layers": layers, "fc": fc}
    if model.name == "mlp":
        return {"layers": [], "fc": [{"units": h, "dropout": float(options["dropout"]), "act": "relu"}
                                     for h in _seq(options["hidden"])]}
    if model.name == "custom":
        return normalize_spec({"layers": options["layers"], "fc": options["fc"]})
    raise ConfigError(f"the builder can start from a cnn, mlp or custom model, not {model.name!r}; choose a CNN "
                      "preset (cnn, cnn-128, cnn-bn, ...)")


def normalize_spec(spec: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The spec with every default filled in, as plain lists/dicts; ConfigError naming the first bad layer."""
    summary = summarize(spec)
    if not summary.ok:
        raise ConfigError(f"custom model: {summary.errors[0]}")
    layers = [dict(r.options) for r in summary.rows if r.index is not None and r.path.startswith("features.")]
    fc = [{k: v for k, v in r.options.items() if k != "kind"} for r in summary.rows if r.kind == "fc"]
    return {"layers": layers, "fc": fc}


def _seq(value: Any) -> list[Any]:
    return [value] if is_int(value) else list(value)


def _model_config(source: Any) -> ModelConfig:
    if isinstance(source, str):
        source = get_preset(source)
    source = getattr(source, "config", source)  # a Preset
    if isinstance(source, TrainConfig):
        source = source.model
    if not isinstance(source, ModelConfig):
        raise ConfigError(f"expected a preset name, preset, TrainConfig or ModelConfig, got {type(source).__name__}")
    return source
