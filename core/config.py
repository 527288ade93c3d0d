"""Frozen configuration of a training run: data, augmentation, model, optimizer/schedule and the run itself.

Every value has a unit in its name or comment. Configs validate themselves on construction and raise
ConfigError with a message that names the field and the allowed values. `apply_overrides` turns a preset plus
a few changes (`{"lr": 1e-3, "epochs": 5}`) into a new config; `to_dict` / `from_dict` round-trip through JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.errors import ConfigError

BUILTIN_DATASETS = ("cifar100", "cifar10", "synthetic")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
CROP_MODES = ("zero", "reflect")
DEVICES = ("auto", "cpu", "cuda", "mps")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_prob(name: str, value: float) -> None:
    _check(isinstance(value, (int, float)) and 0.0 <= value <= 1.0, f"{name} must be a probability in [0, 1], got {value!r}")


def _freeze(value: Any) -> Any:
    """Lists become tuples (recursively) so a config read back from JSON equals the one written."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _freeze(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class AugmentConfig:
    """Random, per-image augmentations applied to each training batch (see core/data/augment.py)."""

    flip_p: float = 0.0  # probability of a horizontal flip
    crop_padding: int = 0  # pixels padded on each side before a random crop back to full size; 0 = no crop
    crop_mode: str = "zero"  # how the padding is filled: "zero" (black) or "reflect"
    erase_p: float = 0.0  # probability of cutting out one square (Cutout / random erasing)
    erase_size: int = 8  # side of the erased square, pixels
    brightness: float = 0.0  # jitter strength: a factor drawn from [1 - b, 1 + b] per image
    contrast: float = 0.0  # same, for contrast
    saturation: float = 0.0  # same, for saturation

    def __post_init__(self) -> None:
        _check_prob("flip_p", self.flip_p)
        _check_prob("erase_p", self.erase_p)
        _check(isinstance(self.crop_padding, int) and 0 <= self.crop_padding <= 16,
               f"crop_padding must be a whole number of pixels in 0..16, got {self.crop_padding!r}")
        _check(self.crop_mode in CROP_MODES, f"crop_mode must be one of {CROP_MODES}, got {self.crop_mode!r}")
        _check(isinstance(self.erase_size, int) and 1 <= self.erase_size <= 32,
               f"erase_size must be a whole number of pixels in 1..32, got {self.erase_size!r}")
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and 0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.flip_p or self.crop_padding or self.erase_p or self.brightness or self.contrast
                    or self.saturation)

    def describe(self) -> str:
        """A short human label, e.g. 'flip 0.5 + crop 4 (reflect)'."""
        parts = []
        if self.flip_p:
            parts.append(f"flip {self.flip_p:g}")
        if self.crop_padding:
            parts.append(f"crop {self.crop_padding}" + (" (reflect)" if self.crop_mode == "reflect" else ""))
        if self.erase_p:
            parts.append(f"erase {self.erase_size}px {self.erase_p:g}")
        jitter = [f"{n[0]}{getattr(self, n):g}" for n in ("brightness", "contrast", "saturation") if getattr(self, n)]
        if jitter:
            parts.append("jitter " + "/".join(jitter))
        return " + ".join(parts) if parts else "none"


@dataclass(frozen=True)
class DataConfig:
    """Which images, how many, and how they are augmented."""

    dataset: str = "cifar100"  # cifar100 | cifar10 | synthetic | folder:PATH
    subset: int | None = None  # training images kept (stratified: the same number per class); None = all
    test_subset: int | None = None  # test images kept (stratified); None = all
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        _check(isinstance(self.dataset, str) and (self.dataset in BUILTIN_DATASETS or
                                                  (self.dataset.startswith("folder:") and len(self.dataset) > 7)),
               f"dataset must be one of {BUILTIN_DATASETS} or folder:PATH, got {self.dataset!r}")
        for name in ("subset", "test_subset"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, int) and value > 0),
                   f"{name} must be a positive number of images (or empty for all), got {value!r}")
        if isinstance(self.augment, Mapping):  # tolerate a plain dict (from JSON)
            object.__setattr__(self, "augment", AugmentConfig(**self.augment))


@dataclass(frozen=True)
class ModelConfig:
    """A registered model (core/models/zoo.py) and its options, e.g. cnn with widths=(128, 128, 128, 256)."""

    name: str = "cnn"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(isinstance(self.name, str) and bool(self.name), f"model name must be a non-empty string, got {self.name!r}")
        _check(isinstance(self.options, Mapping), f"model options must be a mapping, got {type(self.options).__name__}")
        object.__setattr__(self, "options", _freeze(dict(self.options)))

    def __hash__(self) -> int:  # options is a dict; hash its JSON so configs can be dict keys / cache keys
        return hash((self.name, json.dumps(self.options, sort_keys=True, default=str)))


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer, learning-rate schedule and loss settings."""

    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-4  # peak learning rate
    momentum: float = 0.9  # SGD only
    nesterov: bool = False  # SGD only
    weight_decay: float = 0.0  # L2 (SGD, Adam) or decoupled (AdamW)
    schedule: str = "constant"  # constant | step | cosine | onecycle
    warmup_epochs: float = 0.0  # linear warm-up length, epochs (one-cycle: the rising half)
    step_epochs: int = 10  # step schedule: multiply the LR by step_gamma every this many epochs
    step_gamma: float = 0.1
    label_smoothing: float = 0.0  # cross-entropy label smoothing, in [0, 1)

    def __post_init__(self) -> None:
        _check(self.name in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.name!r}")
        _check(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 100,
               f"lr must be a positive number (at most 100), got {self.lr!r}")
        _check(0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1), got {self.momentum!r}")
        _check(self.weight_decay >= 0.0, f"weight_decay must be >= 0, got {self.weight_decay!r}")
        _check(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _check(self.warmup_epochs >= 0.0, f"warmup_epochs must be >= 0, got {self.warmup_epochs!r}")
        _check(isinstance(self.step_epochs, int) and self.step_epochs >= 1,
               f"step_epochs must be a whole number >= 1, got {self.step_epochs!r}")
        _check(0.0 < self.step_gamma <= 1.0, f"step_gamma must be in (0, 1], got {self.step_gamma!r}")
        _check(0.0 <= self.label_smoothing < 1.0, f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        _check(not (self.nesterov and self.name == "sgd" and self.momentum == 0),
               "nesterov needs momentum > 0")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. Same config + same seed on CPU = same metrics."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 256  # images per optimizer step
    epochs: int = 20  # passes over the training set
    seed: int = 0  # weights, data order, augmentation
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | cuda:N | mps
    amp: bool = True  # bf16 autocast on CUDA (and on the CPU, see cpu_amp)
    cpu_amp: bool = True  # also on CPUs that do bf16 natively (AMX / AVX512-BF16): 1.6-3.6x faster here, same
    #                       accuracy (docs/PERFORMANCE.md); results then depend on the CPU model. Eval stays fp32.
    channels_last: bool = True  # NHWC memory format (CUDA and CPU: faster for the zoo's conv nets on both)
    compile: bool = False  # torch.compile the model (CUDA only; falls back to eager when it fails)
    cuda_graphs: bool = True  # capture the whole training step as a CUDA graph (CUDA only; eager if capture fails)
    eval_batch_size: int = 1024  # images per evaluation forward pass
    log_every: int = 10  # optimizer steps between progress events (and host syncs)

    def __post_init__(self) -> None:
        for name, kind in (("data", DataConfig), ("model", ModelConfig), ("optim", OptimConfig)):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, _from_mapping(kind, value, name))
        _check(isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65536,
               f"batch_size must be a whole number in 1..65536, got {self.batch_size!r}")
        _check(isinstance(self.epochs, int) and 1 <= self.epochs <= 10000,
               f"epochs must be a whole number in 1..10000, got {self.epochs!r}")
        _check(isinstance(self.seed, int) and self.seed >= 0, f"seed must be a whole number >= 0, got {self.seed!r}")
        _check(isinstance(self.device, str) and (self.device in DEVICES or self.device.startswith("cuda:")),
               f"device must be one of {DEVICES} or cuda:N, got {self.device!r}")
        _check(isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
               f"eval_batch_size must be a whole number >= 1, got {self.eval_batch_size!r}")
        _check(isinstance(self.log_every, int) and self.log_every >= 1,
               f"log_every must be a whole number >= 1, got {self.log_every!r}")


# --- JSON round trip ---------------------------------------------------------------------------------------

def to_dict(config: TrainConfig) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists when dumped)."""
    return dataclasses.asdict(config)


def _from_mapping(kind: type, data: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown field(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    values = dict(data)
    for f in fields(kind):  # nested dataclasses
        if f.name in values and isinstance(values[f.name], Mapping) and f.name in ("augment", "data", "optim"):
            sub = {"augment": AugmentConfig, "data": DataConfig, "optim": OptimConfig}[f.name]
            values[f.name] = _from_mapping(sub, values[f.name], f"{where}.{f.name}")
        elif f.name in values and isinstance(values[f.name], list):
            values[f.name] = _freeze(values[f.name])
    try:
        return kind(**values)
    except TypeError as e:  # wrong types that the checks did not catch
        raise ConfigError(f"invalid {where}: {e}") from None


def from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Inverse of to_dict; unknown or invalid fields raise ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
    return _from_mapping(TrainConfig, data, "config")


def to_json(config: TrainConfig) -> str:
    return json.dumps(to_dict(config), sort_keys=True)


def from_json(text: str) -> TrainConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"config is not valid JSON: {e}") from None
    return from_dict(data)


# --- overrides: "lr" or "optim.lr" -> new config -------------------------------------------------------

# Short names that are not a unique leaf field, or read better: alias -> dotted path.
ALIASES = {
    "optimizer": "optim.name",
    "model": "model.name",
    "dataset": "data.dataset",
    "augment": "data.augment",
}


def _leaf_paths() -> dict[str, str]:
    """Every leaf field name that appears exactly once in the tree -> its dotted path."""
    seen: dict[str, list[str]] = {}

    def walk(kind: type, prefix: str) -> None:
        for f in fields(kind):
            path = f"{prefix}{f.name}"
            sub = {"data": DataConfig, "optim": OptimConfig, "augment": AugmentConfig}.get(f.name)
            if sub is not None:
                walk(sub, path + ".")
            else:
                seen.setdefault(f.name, []).append(path)

    walk(TrainConfig, "")
    return {name: paths[0] for name, paths in seen.items() if len(paths) == 1}


LEAF_PATHS = _leaf_paths()


def resolve_key(key: str) -> str:
    """'lr' -> 'optim.lr'; 'optim.lr' stays; 'model.widths' addresses a model option."""
    if key in ALIASES:
        return ALIASES[key]
    if key in LEAF_PATHS:
        return LEAF_PATHS[key]
    if "." in key:
        return key
    known = sorted(set(LEAF_PATHS) | set(ALIASES))
    raise ConfigError(f"unknown setting {key!r}; known: {', '.join(known)} (or model.<option>)")


def _set(obj: Any, parts: list[str], value: Any, full: str) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(obj, ModelConfig) and head not in ("name", "options"):
        # model.<option>: a model option such as widths or batch_norm
        options = dict(obj.options)
        if rest:
            raise ConfigError(f"model option {head!r} cannot be addressed deeper ({full!r})")
        if value is None:
            options.pop(head, None)
        else:
            options[head] = value
        return replace(obj, options=options)
    names = {f.name for f in fields(obj)}
    if head not in names:
        raise ConfigError(f"unknown setting {full!r}")
    if rest:
        return replace(obj, **{head: _set(getattr(obj, head), rest, value, full)})
    if isinstance(value, Mapping) and dataclasses.is_dataclass(getattr(obj, head)):
        value = _from_mapping(type(getattr(obj, head)), value, full)
    return replace(obj, **{head: _freeze(value)})


def parse_value(text: str) -> Any:
    """An override's value written as text: '3' -> 3, '1e-3' -> 0.001, 'true' -> True, '[1,2]' -> [1, 2],
    'none' -> None, else the string (apply_overrides then says what a setting accepts)."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """A new config with each override applied, e.g. {"lr": 1e-3, "epochs": 5, "model.widths": (64,)*4}."""
    for key, value in overrides.items():
        path = resolve_key(key)
        config = _set(config, path.split("."), value, key)
    return config


def get_value(config: TrainConfig, key: str) -> Any:
    """Read a setting by the same names apply_overrides accepts."""
    obj: Any = config
    for part in resolve_key(key).split("."):
        if isinstance(obj, ModelConfig) and part not in ("name", "options"):
            return obj.options.get(part)
        obj = getattr(obj, part)
    return obj
