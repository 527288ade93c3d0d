"""The CNN builder: a `custom` model composed from plain-data layers, and its analytic per-layer summary.

A spec is JSON-able data, stored in a run's config as the model's options, `ModelConfig("custom", spec)`:

    {"layers": [{"kind": "conv", "out": 32, "kernel": 3, "stride": 1, "padding": 1},
                {"kind": "bn", "momentum": 0.1, "affine": True},
                {"kind": "act", "fn": "relu"},
                {"kind": "pool", "mode": "max", "size": 2},
                {"kind": "dropout", "p": 0.1}, ...],
     "fc": [{"units": 256, "dropout": 0.5, "act": "relu"}, ...]}   # hidden FC layers; the classifier is added

Layer kinds and their options (defaults) are in LAYER_OPTIONS; `fc` entries may also be plain ints (units).
Module names follow core/models.py's cnn: a layer is numbered by the conv block it follows (conv1 bn1 relu1
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
from core.models import CIFAR_SIZE, get_entry, register_model

# kind -> option defaults. conv `padding` None = kernel // 2 ("same" size for odd kernels at stride 1);
# pool `stride` None = its size. Activation `slope` is leaky_relu's negative slope (ignored by the others).
LAYER_OPTIONS: dict[str, dict[str, Any]] = {
    "conv": {"out": None, "kernel": 3, "stride": 1, "padding": None, "groups": 1, "bias": True},
    "bn": {"momentum": 0.1, "affine": True, "eps": 1e-5},
    "act": {"fn": "relu", "slope": 0.01},
    "pool": {"mode": "max", "size": 2, "stride": None},
    "gap": {"mode": "avg"},  # global pooling to 1×1
    "dropout": {"p": 0.5},
}
FC_OPTIONS: dict[str, Any] = {"units": None, "dropout": 0.0, "act": "relu"}
ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {  # each call makes its own, non-inplace module
    "relu": lambda slope: nn.ReLU(),
    "leaky_relu": lambda slope: nn.LeakyReLU(slope),
    "gelu": lambda slope: nn.GELU(),
    "silu": lambda slope: nn.SiLU(),
    "elu": lambda slope: nn.ELU(),
    "tanh": lambda slope: nn.Tanh(),
    "sigmoid": lambda slope: nn.Sigmoid(),
}
POOL_MODES = ("max", "avg")
MAX_CHANNELS, MAX_UNITS = 8192, 65536

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


# --- spec checks --------------------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _one_of(value: Any, choices: Any) -> bool:
    return isinstance(value, str) and value in choices


def _fill(kind: str, raw: Mapping[str, Any], defaults: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(defaults) - {"kind"})
    if unknown:
        problems.append(f"unknown option(s) {', '.join(map(repr, unknown))} for a {kind} layer; its options are "
                        f"{', '.join(defaults)}")
    return {"kind": kind, **{k: raw.get(k, v) for k, v in defaults.items()}}


def _check_values(layer: dict[str, Any], problems: list[str]) -> None:
    """Value checks that do not depend on the input shape. Fills `padding`/`stride` defaults in place."""
    kind = layer["kind"]

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    if kind == "conv":
        out, k, s = layer["out"], layer["kernel"], layer["stride"]
        need(_is_int(out) and 1 <= out <= MAX_CHANNELS,
             f"out (channels) must be a whole number in 1..{MAX_CHANNELS}, got {out!r}")
        need(_is_int(k) and 1 <= k <= 31, f"kernel must be a whole number in 1..31, got {k!r}")
        need(_is_int(s) and 1 <= s <= 16, f"stride must be a whole number in 1..16, got {s!r}")
        if layer["padding"] is None and _is_int(k):
            layer["padding"] = k // 2
        p, g = layer["padding"], layer["groups"]
        need(p is None or (_is_int(p) and 0 <= p <= 15), f"padding must be a whole number in 0..15, got {p!r}")
        need(_is_int(g) and g >= 1, f"groups must be a whole number >= 1, got {g!r}")
        need(isinstance(layer["bias"], bool), f"bias must be true or false, got {layer['bias']!r}")
    elif kind == "bn":
        m, e = layer["momentum"], layer["eps"]
        need(m is None or (_is_num(m) and 0 < m <= 1), f"momentum must be in (0, 1] (or none for a running "
                                                       f"average), got {m!r}")
        need(_is_num(e) and e > 0, f"eps must be a positive number, got {e!r}")
        need(isinstance(layer["affine"], bool), f"affine must be true or false, got {layer['affine']!r}")
    elif kind == "act":
        need(_one_of(layer["fn"], ACTIVATIONS), f"activation must be one of {', '.join(ACTIVATIONS)}, got {layer['fn']!r}")
        need(_is_num(layer["slope"]) and layer["slope"] >= 0, f"slope must be a number >= 0, got {layer['slope']!r}")
    elif kind in ("pool", "gap"):
        need(_one_of(layer["mode"], POOL_MODES), f"mode must be one of {', '.join(POOL_MODES)}, got {layer['mode']!r}")
        if kind == "pool":
            size = layer["size"]
            need(_is_int(size) and 1 <= size <= 32, f"size must be a whole number in 1..32, got {size!r}")
            if layer["stride"] is None and _is_int(size):
                layer["stride"] = size
            need(_is_int(layer["stride"]) and 1 <= layer["stride"] <= 32,
                 f"stride must be a whole number in 1..32, got {layer['stride']!r}")
    elif kind == "dropout":
        p = layer["p"]
        need(_is_num(p) and 0 <= p < 1, f"p must be a probability in [0, 1) (1 would zero everything), got {p!r}")


def _check_fc(entry: Any, problems: list[str]) -> dict[str, Any]:
    if _is_int(entry):
        entry = {"units": entry}
    if not isinstance(entry, Mapping):
        problems.append(f"an fc entry must be a number of units or an object like {{'units': 256}}, got {entry!r}")
        return {"kind": "fc", **FC_OPTIONS}
    fc = _fill("fc", entry, FC_OPTIONS, problems)
    u, p, act = fc["units"], fc["dropout"], fc["act"]
    if not (_is_int(u) and 1 <= u <= MAX_UNITS):
        problems.append(f"units must be a whole number in 1..{MAX_UNITS}, got {u!r}")
    if not (_is_num(p) and 0 <= p < 1):
        problems.append(f"dropout must be a probability in [0, 1) (1 would zero everything), got {p!r}")
    if not _one_of(act, ACTIVATIONS):
        problems.append(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    return fc


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

def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


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
            detail: str, maker: Callable[[], nn.Module] | None) -> None:
        rows.append(LayerRow(index, name, f"{section}.{name}", kind, options, in_shape, out, params, macs, detail))
        makers.append(maker)

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
        layer = _fill(kind, raw, LAYER_OPTIONS[kind], problems)
        _check_values(layer, problems)
        if kind == "conv":
            block += 1
        base = (layer["fn"] if _one_of(layer["fn"], ACTIVATIONS) else "act") if kind == "act" else kind
        name = unique(base if kind == "gap" else f"{base}{block}")
        in_shape, out, params, macs, detail, maker = shape, None, None, None, "", None
        channels = shape[0] if shape else None
        if not problems and shape is not None:
            out, params, macs, detail, maker = _layer(layer, shape, problems)
        for message in problems:
            errors.append(LayerError(i, name, message))
        if problems:
            out, params, macs, maker = None, None, None, None
            if kind == "conv" and channels is not None and _is_int(layer["out"]) and layer["out"] >= 1:
                detail = f"{channels}→{layer['out']}"
        add(i, name, "features", kind, layer, in_shape, out, params, macs, detail, maker)
        shape = out

    n_layers = len(raw_layers)
    flat = None if shape is None else (shape[0] * shape[1] * shape[2],)
    add(None, unique("flatten"), "classifier", "flatten", {}, shape, flat, 0, 0, "", nn.Flatten)
    width = flat[0] if flat else None
    for j, raw in enumerate(raw_fc, start=1):
        problems = []
        fc = _check_fc(raw, problems)
        index, name = n_layers + j - 1, unique(f"fc{j}")
        for message in problems:
            errors.append(LayerError(index, name, message))
        ok = not problems and width is not None
        units = fc["units"] if not problems else None
        params = width * units + units if ok else None
        detail = f"{width if width is not None else '?'}→{units if units is not None else '?'}"
        add(index, name, "classifier", "fc", fc, None if width is None else (width,), (units,) if ok else None,
            params, width * units if ok else None, detail, _maker(nn.Linear, width, units) if ok else None)
        act_out = (units,) if ok else None
        add(index, unique(f"{name}_{fc['act']}"), "classifier", "act", {"kind": "act", "fn": fc["act"], "slope": 0.01},
            act_out, act_out, 0 if ok else None, 0 if ok else None, "",
            _maker(ACTIVATIONS[fc["act"]], 0.01) if ok else None)
        if fc["dropout"] and not problems:
            add(index, unique(f"{name}_dropout"), "classifier", "dropout", {"kind": "dropout", "p": fc["dropout"]},
                act_out, act_out, 0 if ok else None, 0 if ok else None, f"p={fc['dropout']:g}",
                _maker(nn.Dropout, fc["dropout"]) if ok else None)
        width = units if ok else None
    head = unique(f"fc{len(raw_fc) + 1}" if raw_fc else "out")
    ok = width is not None
    add(None, head, "classifier", "head", {"units": num_classes}, None if width is None else (width,),
        (num_classes,) if ok else None, width * num_classes + num_classes if ok else None,
        width * num_classes if ok else None, f"{width if ok else '?'}→{num_classes} classes",
        _maker(nn.Linear, width, num_classes) if ok else None)
    summary = Summary(tuple(rows), tuple(errors), (int(input_shape[0]), int(input_shape[1]), int(input_shape[2])),
                      num_classes)
    return summary, makers


def _maker(factory: Callable[..., nn.Module], *args: Any) -> Callable[[], nn.Module]:
    return lambda: factory(*args)


def _layer(layer: dict[str, Any], shape: tuple[int, ...], problems: list[str]
           ) -> tuple[tuple[int, ...] | None, int | None, int | None, str, Callable[[], nn.Module] | None]:
    """(output shape, parameters, MACs, detail, module factory) of one valid-valued layer on an input `shape`."""
    kind, (c, h, w) = layer["kind"], shape
    if kind == "conv":
        out, k, s, p, g = layer["out"], layer["kernel"], layer["stride"], layer["padding"], layer["groups"]
        detail = f"{c}→{out}, {k}×{k}, stride {s}, pad {p}" + (f", groups {g}" if g > 1 else "")
        if c % g or out % g:
            problems.append(f"groups={g} must divide both its input channels ({c}) and out ({out})")
        if h + 2 * p < k or w + 2 * p < k:
            problems.append(f"its {k}×{k} kernel is larger than its padded {h + 2 * p}×{w + 2 * p} input "
                            f"({h}×{w} + padding {p}): use a smaller kernel, more padding, or fewer pools/strides "
                            "before it")
        if problems:
            return None, None, None, detail, None
        oh, ow = _out_size(h, k, s, p), _out_size(w, k, s, p)
        params = out * (c // g) * k * k + (out if layer["bias"] else 0)
        macs = oh * ow * out * (c // g) * k * k
        return ((out, oh, ow), params, macs, detail,
                _maker(lambda: nn.Conv2d(c, out, k, stride=s, padding=p, groups=g, bias=layer["bias"])))
    if kind == "bn":
        momentum, affine, eps = layer["momentum"], layer["affine"], layer["eps"]
        detail = f"{c} channels" + ("" if affine else ", no affine") + (
            "" if momentum == 0.1 else ", cumulative average" if momentum is None else f", momentum {momentum:g}")
        return shape, 2 * c if affine else 0, 0, detail, _maker(
            lambda: nn.BatchNorm2d(c, eps=eps, momentum=momentum, affine=affine))
    if kind == "act":
        detail = f"slope {layer['slope']:g}" if layer["fn"] == "leaky_relu" else ""
        return shape, 0, 0, detail, _maker(ACTIVATIONS[layer["fn"]], layer["slope"])
    if kind == "pool":
        size, s, mode = layer["size"], layer["stride"], layer["mode"]
        detail = f"{mode} {size}×{size}, stride {s}"
        if h < size or w < size:
            problems.append(f"a {size}×{size} pool cannot run on its {h}×{w} input (the output would be empty); "
                            "remove the pool, make it smaller, or use fewer pools/strides before it")
            return None, None, None, detail, None
        pool = nn.MaxPool2d if mode == "max" else nn.AvgPool2d
        return (c, _out_size(h, size, s, 0), _out_size(w, size, s, 0)), 0, 0, detail, _maker(pool, size, s)
    if kind == "gap":
        pool = nn.AdaptiveMaxPool2d if layer["mode"] == "max" else nn.AdaptiveAvgPool2d
        return (c, 1, 1), 0, 0, f"global {layer['mode']} → 1×1", _maker(pool, 1)
    # dropout
    return shape, 0, 0, f"p={layer['p']:g}", _maker(nn.Dropout, float(layer["p"]))


def summarize(spec: Mapping[str, Any], input_shape: Sequence[int] = (3, CIFAR_SIZE, CIFAR_SIZE),
              num_classes: int = 100) -> Summary:
    """The per-layer table of `spec` for one image of `input_shape` (C, H, W), computed analytically.

    Multiply-adds (MACs) per image: conv out_h·out_w·out_c·(in_c/groups)·k·k, linear in·out (biases are adds,
    not counted); batch norm, activations, pooling, dropout and flatten count 0 - they are elementwise or
    comparisons, negligible next to the convs, and batch norm folds into the conv at inference.
    A structurally broken spec (not an object, 'layers' not a list) raises ConfigError; every problem of a
    single layer is reported in `Summary.errors` on that layer instead.
    """
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3 and all(_is_int(v) and v >= 1
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
    options = {**get_entry(model.name).defaults, **model.options}
    if model.name in ("cnn", "mlp"):  # the model's own checks (ConfigError naming the option), nothing allocated
        with torch.device("meta"):
            get_entry(model.name).builder(1, **options)
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
    return [value] if _is_int(value) else list(value)


def _model_config(source: Any) -> ModelConfig:
    if isinstance(source, str):
        from core.presets import get_preset  # deferred: presets imports config only, but keep builder light

        source = get_preset(source)
    source = getattr(source, "config", source)  # a Preset
    if isinstance(source, TrainConfig):
        source = source.model
    if not isinstance(source, ModelConfig):
        raise ConfigError(f"expected a preset name, preset, TrainConfig or ModelConfig, got {type(source).__name__}")
    return source
