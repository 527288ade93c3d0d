"""The builder's layer kinds: their options and defaults, value checks, and each layer's output shape,
parameters, multiply-adds and module - the per-layer arithmetic behind core/models/builder.py's summary.

Checks append human messages to a `problems` list instead of raising, so the summary can flag every problem on
the layer that has it; core/models/builder.py turns them into LayerErrors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

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
MAX_LAYER_PARAMS = 1 << 30  # 4 GiB of float32 weights in one layer: flag it instead of running out of memory

def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def one_of(value: Any, choices: Any) -> bool:
    return isinstance(value, str) and value in choices


def fill(kind: str, raw: Mapping[str, Any], defaults: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(defaults) - {"kind"})
    if unknown:
        problems.append(f"unknown option(s) {', '.join(map(repr, unknown))} for a {kind} layer; its options are "
                        f"{', '.join(defaults)}")
    return {"kind": kind, **{k: raw.get(k, v) for k, v in defaults.items()}}


def check_values(layer: dict[str, Any], problems: list[str]) -> None:
    """Value checks that do not depend on the input shape. Fills `padding`/`stride` defaults in place."""
    kind = layer["kind"]

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    if kind == "conv":
        out, k, s = layer["out"], layer["kernel"], layer["stride"]
        need(is_int(out) and 1 <= out <= MAX_CHANNELS,
             f"out (channels) must be a whole number in 1..{MAX_CHANNELS}, got {out!r}")
        need(is_int(k) and 1 <= k <= 31, f"kernel must be a whole number in 1..31, got {k!r}")
        need(is_int(s) and 1 <= s <= 16, f"stride must be a whole number in 1..16, got {s!r}")
        if layer["padding"] is None and is_int(k):
            layer["padding"] = k // 2
        p, g = layer["padding"], layer["groups"]
        need(p is None or (is_int(p) and 0 <= p <= 15), f"padding must be a whole number in 0..15, got {p!r}")
        need(is_int(g) and g >= 1, f"groups must be a whole number >= 1, got {g!r}")
        need(isinstance(layer["bias"], bool), f"bias must be true or false, got {layer['bias']!r}")
    elif kind == "bn":
        m, e = layer["momentum"], layer["eps"]
        need(m is None or (is_num(m) and 0 < m <= 1), f"momentum must be in (0, 1] (or none for a running "
                                                       f"average), got {m!r}")
        need(is_num(e) and e > 0, f"eps must be a positive number, got {e!r}")
        need(isinstance(layer["affine"], bool), f"affine must be true or false, got {layer['affine']!r}")
    elif kind == "act":
        need(one_of(layer["fn"], ACTIVATIONS), f"activation must be one of {', '.join(ACTIVATIONS)}, got {layer['fn']!r}")
        need(is_num(layer["slope"]) and layer["slope"] >= 0, f"slope must be a number >= 0, got {layer['slope']!r}")
    elif kind in ("pool", "gap"):
        need(one_of(layer["mode"], POOL_MODES), f"mode must be one of {', '.join(POOL_MODES)}, got {layer['mode']!r}")
        if kind == "pool":
            size = layer["size"]
            need(is_int(size) and 1 <= size <= 32, f"size must be a whole number in 1..32, got {size!r}")
            if layer["stride"] is None and is_int(size):
                layer["stride"] = size
            need(is_int(layer["stride"]) and 1 <= layer["stride"] <= 32,
                 f"stride must be a whole number in 1..32, got {layer['stride']!r}")
    elif kind == "dropout":
        p = layer["p"]
        need(is_num(p) and 0 <= p < 1, f"p must be a probability in [0, 1) (1 would zero everything), got {p!r}")


def check_fc(entry: Any, problems: list[str]) -> dict[str, Any]:
    if is_int(entry):
        entry = {"units": entry}
    if not isinstance(entry, Mapping):
        problems.append(f"an fc entry must be a number of units or an object like {{'units': 256}}, got {entry!r}")
        return {"kind": "fc", **FC_OPTIONS}
    fc = fill("fc", entry, FC_OPTIONS, problems)
    u, p, act = fc["units"], fc["dropout"], fc["act"]
    if not (is_int(u) and 1 <= u <= MAX_UNITS):
        problems.append(f"units must be a whole number in 1..{MAX_UNITS}, got {u!r}")
    if not (is_num(p) and 0 <= p < 1):
        problems.append(f"dropout must be a probability in [0, 1) (1 would zero everything), got {p!r}")
    if not one_of(act, ACTIVATIONS):
        problems.append(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    return fc


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def too_big(params: int) -> list[str]:
    """A problem when one layer alone would hold more than MAX_LAYER_PARAMS parameters."""
    if params <= MAX_LAYER_PARAMS:
        return []
    return [f"this layer alone would have {params:,} parameters ({params * 4 / 2**30:.0f} GiB): add pooling or "
            "strides before it, or use fewer channels/units"]


def maker(factory: Callable[..., nn.Module], *args: Any) -> Callable[[], nn.Module]:
    return lambda: factory(*args)


def layer_math(layer: dict[str, Any], shape: tuple[int, ...], problems: list[str]
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
        params = out * (c // g) * k * k + (out if layer["bias"] else 0)
        problems += too_big(params)
        if problems:
            return None, None, None, detail, None
        oh, ow = out_size(h, k, s, p), out_size(w, k, s, p)
        macs = oh * ow * out * (c // g) * k * k
        return ((out, oh, ow), params, macs, detail,
                maker(lambda: nn.Conv2d(c, out, k, stride=s, padding=p, groups=g, bias=layer["bias"])))
    if kind == "bn":
        momentum, affine, eps = layer["momentum"], layer["affine"], layer["eps"]
        detail = f"{c} channels" + ("" if affine else ", no affine") + (
            "" if momentum == 0.1 else ", cumulative average" if momentum is None else f", momentum {momentum:g}")
        return shape, 2 * c if affine else 0, 0, detail, maker(
            lambda: nn.BatchNorm2d(c, eps=eps, momentum=momentum, affine=affine))
    if kind == "act":
        detail = f"slope {layer['slope']:g}" if layer["fn"] == "leaky_relu" else ""
        return shape, 0, 0, detail, maker(ACTIVATIONS[layer["fn"]], layer["slope"])
    if kind == "pool":
        size, s, mode = layer["size"], layer["stride"], layer["mode"]
        detail = f"{mode} {size}×{size}, stride {s}"
        if h < size or w < size:
            problems.append(f"a {size}×{size} pool cannot run on its {h}×{w} input (the output would be empty); "
                            "remove the pool, make it smaller, or use fewer pools/strides before it")
            return None, None, None, detail, None
        pool = nn.MaxPool2d if mode == "max" else nn.AvgPool2d
        return (c, out_size(h, size, s, 0), out_size(w, size, s, 0)), 0, 0, detail, maker(pool, size, s)
    if kind == "gap":
        pool = nn.AdaptiveMaxPool2d if layer["mode"] == "max" else nn.AdaptiveAvgPool2d
        return (c, 1, 1), 0, 0, f"global {layer['mode']} → 1×1", maker(pool, 1)
    # dropout
    return shape, 0, 0, f"p={layer['p']:g}", maker(nn.Dropout, float(layer["p"]))
