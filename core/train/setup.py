"""Where and how a run computes: the device, the optimizer implementation, precision, memory layout, data order.

The choices core.train.engine makes before and around the step loop, kept apart so the loop reads in one sitting:
`resolve_device` / `available_devices`; `build_optimizer` (torch's fused single-kernel optimizers where they
exist); `use_amp` (bf16 autocast: CUDA by config.amp, the CPU only when asked for and native) and
`use_channels_last`; `epoch_permutation` (the seeded data order of an epoch) and the batch/residency helpers.
core.train.engine re-exports every public name here, so `from core.train.engine import build_optimizer` keeps working.
"""

from __future__ import annotations

import functools
import inspect
import os

import torch
import torch.nn as nn

from core.config import TrainConfig
from core.errors import ConfigError

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
    import os

    out.append(("cpu", f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"))
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
    if fused and _accepts_fused(kind):
        try:
            return kind(params, **options, fused=True)
        except (RuntimeError, ValueError, TypeError):  # an older torch or a device/dtype without the kernel
            pass
    return kind(params, **options)


@functools.lru_cache(maxsize=8)
def _accepts_fused(kind: type) -> bool:
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


def epoch_permutation(n: int, seed: int, device: torch.device) -> torch.Tensor:
    """The epoch's data order (n,) int64 on `device`: drawn on the CPU from `seed` (the same order on every
    device, so a run's batches do not depend on where it trains) and copied once per epoch."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm.to(device, non_blocking=True) if device.type == "cuda" else perm.to(device)


def _rows(t: torch.Tensor, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    """t[idx] on `device`; t may stay on the host (pinned) when the split did not fit the GPU."""
    if t.device != idx.device:  # only when a split is not resident: the images stay on the host, labels not
        idx = idx.to(t.device, non_blocking=True)
    return t.index_select(0, idx).to(device, non_blocking=True)


def _resident(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a whole split to the device when it fits comfortably (CIFAR's 50,000 images are 150 MB as uint8);
    otherwise keep it on the host (pinned, when CUDA is there) and copy each batch."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if t.numel() * t.element_size() < 0.25 * free:
            return t.to(device)
        return t.pin_memory()
    return t.to(device)
