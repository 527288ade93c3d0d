"""How a run is set up: the device, the model, optimizer, loss, precision, memory layout and data on the device.

`prepare(config, dataset, device)` builds a `RunSetup` - everything core.train.engine's loop, the learning-rate
finder and the benchmarks train with - in the one order that fixes the starting weights (the seed, then the
model). Around it, the choices it makes: `resolve_device` / `available_devices`; `build_optimizer` (torch's fused
single-kernel optimizers where they exist); `use_amp` (bf16 autocast: CUDA by config.amp, the CPU only when asked
for and native) and `use_channels_last`; `inplace_relus` (the training copy's ReLUs overwrite their input);
`input_stats` (what inputs are normalized with); `run_dataset` (the
config's split of the data). The batches themselves come from core.train.batches.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from core.config import TrainConfig
from core.data.dataset import Dataset, stratified_subset
from core.data.loading import load
from core.errors import ConfigError
from core.models.catalog import build_for_config, get_entry
from core.models.registry import IMAGENET_MEAN, IMAGENET_STD
from core.train.batches import TrainBatches, resident
from core.train.graphs import plain_groups

# bf16 autocast on the CPU changes numerics (and, unlike fp32, results then depend on the CPU model). The config's
# `cpu_amp` decides (on by default: 1.6-3.6x faster with the same accuracy, docs/PERFORMANCE.md); this environment
# variable set to "0" turns it off for a whole process (benchmarks, or results comparable across CPUs). It is used
# only where the CPU does bf16 natively (AMX / AVX512-BF16): emulated bf16 is slower than fp32.
CPU_BF16_ENV = "CIFAR_LAB_CPU_BF16"


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda > mps > cpu; asking for a device that is not there is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but no CUDA GPU is available here; choose auto or cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} GPU(s) here")
        return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was asked for but Apple's MPS backend is not available; choose auto or cpu")
    return torch.device(name)


def available_devices() -> list[tuple[str, str]]:
    """(device, human label) for every device torch can train on here, CPU last."""
    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append((f"cuda:{i}", f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append(("mps", "Apple GPU (MPS)"))
    out.append(("cpu", f"CPU ({os.cpu_count()} cores)"))  # not this process's threads: runs train in their own
    return out


def build_optimizer(model: nn.Module, config: TrainConfig, *, fused: bool | None = None) -> torch.optim.Optimizer:
    """The config's optimizer over the trainable parameters. fused=None: torch's single-kernel ("fused")
    implementation when the parameters live on the CPU or a CUDA GPU and this torch has one for the optimizer
    (same algorithm, float rounding aside; on the 2-core CPU the Adam step of the base CNN's 17M parameters
    went from ~300-430 ms to ~40-100 ms), else the default one. fused=False: never."""
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters (is everything frozen?)")
    if o.name == "sgd":
        kind, options = torch.optim.SGD, dict(lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                                              weight_decay=o.weight_decay)
    elif o.name == "adamw":
        kind, options = torch.optim.AdamW, dict(lr=o.lr, weight_decay=o.weight_decay)
    else:
        kind, options = torch.optim.Adam, dict(lr=o.lr, weight_decay=o.weight_decay)
    if fused is None:
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    if fused and has_fused_kernel(kind):
        try:
            return kind(params, **options, fused=True)
        except (RuntimeError, ValueError, TypeError):  # an older torch or a device/dtype without the kernel
            pass
    return kind(params, **options)


def rng_states(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The global CPU RNG state and that of `device` (dropout draws from these)."""
    if device.type == "cuda":
        return torch.get_rng_state(), torch.cuda.get_rng_state(device)
    if device.type == "mps" and hasattr(torch, "mps"):
        return torch.get_rng_state(), torch.mps.get_rng_state()
    return torch.get_rng_state(), None


def set_rng_states(device: torch.device, states: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    """Put back what rng_states returned (a device state saved on another kind of device is left alone)."""
    torch.set_rng_state(states[0])
    if states[1] is not None:
        if device.type == "cuda":
            torch.cuda.set_rng_state(states[1], device)
        elif device.type == "mps":
            torch.mps.set_rng_state(states[1])


@functools.lru_cache(maxsize=8)
def has_fused_kernel(kind: type) -> bool:
    """Whether this torch's optimizer class takes fused=True (a single-kernel step)."""
    return "fused" in inspect.signature(kind.__init__).parameters


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 in hardware (AMX-BF16 or AVX512-BF16; read from /proc/cpuinfo, so
    Linux only): there bf16 autocast runs matmuls and convolutions several times faster than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"amx_bf16", "avx512_bf16"} & flags)
    except OSError:
        pass
    return False


def cpu_bf16_requested(config: TrainConfig) -> bool:
    """Whether a CPU run of `config` asks for bf16 autocast: config.amp and config.cpu_amp, unless the
    CIFAR_LAB_CPU_BF16 environment variable says 0 / false / off."""
    if not (config.amp and config.cpu_amp):
        return False
    return os.environ.get(CPU_BF16_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def use_amp(config: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast for this run: on CUDA when config.amp; on the CPU when asked for and native (see above)."""
    if device.type == "cuda":
        return bool(config.amp)
    if device.type == "cpu":
        return cpu_bf16_requested(config) and cpu_has_native_bf16()
    return False


def use_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """NHWC for this run: CUDA and CPU (faster for the zoo's conv nets on both), when config.channels_last."""
    return bool(config.channels_last) and device.type in ("cuda", "cpu")


# A ReLU may overwrite its input when the module before it does not keep its own output for the backward pass:
# a convolution, linear layer or batch norm keeps its input (and, for batch norm, its statistics), never its
# output. Autograd's version counters would catch a wrong choice, but only as an error in the middle of a run, so
# the list is closed: a ReLU after anything else (a sigmoid, a custom block) stays as built.
INPLACE_SAFE_BEFORE = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)


def inplace_relus(model: nn.Module) -> int:
    """Make each ReLU that directly follows a conv / linear / batch-norm module in an nn.Sequential in-place;
    returns how many. The values and gradients are the same; the step saves writing a new activation tensor per
    layer (measured: clamp_min from 2.9% to 0.5% of a bf16 step of the 128-wide CNN, docs/PERFORMANCE.md).
    Only the training copy of a model gets this: core.explain loads fresh, non-inplace models, as Captum needs."""
    changed = 0
    for seq in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        children = list(seq.children())
        for before, module in zip(children, children[1:]):
            if type(module) is nn.ReLU and not module.inplace and isinstance(before, INPLACE_SAFE_BEFORE):
                module.inplace = True
                changed += 1
    return changed


def input_stats(config: TrainConfig, dataset: Dataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std the inputs are normalized with: ImageNet's for pretrained models, else the dataset's."""
    if get_entry(config.model.name).input_norm == "imagenet":
        return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)
    return tuple(dataset.mean), tuple(dataset.std)


def run_dataset(config: TrainConfig, dataset: Dataset | None = None, data_root: str | Path | None = None,
                *, download: bool = False, progress: Callable[[int, int | None], None] | None = None
                ) -> Dataset:
    """The images a run of `config` trains and tests on: loaded (DataError when missing), or the config's
    stratified subset of a dataset already in memory."""
    if dataset is None:
        return load(config.data, data_root, download=download, progress=progress, seed=config.seed)
    return stratified_subset(dataset, config.data.subset, config.data.test_subset, seed=config.seed)


@dataclass
class RunSetup:
    """What a run trains with, all on its device: a plain record that prepare() fills once."""

    config: TrainConfig
    device: torch.device
    dataset: Dataset
    model: nn.Module  # on `device`, in `memory_format`
    optimizer: torch.optim.Optimizer
    criterion: nn.Module  # cross-entropy with the config's label smoothing
    bf16: bool  # autocast the training forward pass to bfloat16 (use_amp)
    memory_format: torch.memory_format  # channels_last (NHWC) or contiguous (NCHW), model and inputs alike
    mean: tuple[float, ...]  # per-channel normalization, [0, 1] pixel units
    std: tuple[float, ...]
    batches: TrainBatches  # the training batches (resident uint8 split, seeded order and augmentation)
    test_x: torch.Tensor  # (M, 3, H, W) uint8, resident where it fits
    test_y: torch.Tensor  # (M,) int64

    @property
    def steps_per_epoch(self) -> int:
        return self.batches.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.batches.steps_per_epoch * self.config.epochs

    @property
    def channels_last(self) -> bool:
        return self.memory_format == torch.channels_last


def prepare(config: TrainConfig, dataset: Dataset, device: torch.device, *,
            checkpoint: dict[str, Any] | None = None, fused: bool | None = None) -> RunSetup:
    """Model, optimizer, loss and data of a run of `config` on `device`. Seeds torch's global RNG with
    config.seed first: the starting weights and the dropout stream that continues from them are the run's.
    checkpoint: a loaded checkpoint whose model and optimizer states replace the fresh ones (pretrained
    weights are then not loaded). fused: as build_optimizer."""
    torch.manual_seed(config.seed)  # weight init and dropout; data order and augmentation have their own generators
    model = build_for_config(config, dataset.num_classes, load_pretrained=checkpoint is None)
    inplace_relus(model)
    bf16 = use_amp(config, device)
    memory_format = torch.channels_last if use_channels_last(config, device) else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    optimizer = build_optimizer(model, config, fused=fused)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        plain_groups(optimizer)  # a graphed run saved a device-tensor lr; a capture sets it again where it applies
    mean, std = input_stats(config, dataset)
    batches = TrainBatches(resident(dataset.train_x, device), resident(dataset.train_y, device), config.batch_size,
                           config.data.augment, mean, std, config.seed, device=device, memory_format=memory_format)
    return RunSetup(config=config, device=device, dataset=dataset, model=model, optimizer=optimizer,
                    criterion=nn.CrossEntropyLoss(label_smoothing=config.optim.label_smoothing), bf16=bf16,
                    memory_format=memory_format, mean=mean, std=std, batches=batches,
                    test_x=resident(dataset.test_x, device), test_y=resident(dataset.test_y, device))
