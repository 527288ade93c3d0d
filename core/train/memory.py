"""How much device memory one training run needs: parameters, gradients, optimizer state, the activations kept
for the backward pass at the run's batch size, the resident dataset and the process's own overhead.

The activations are measured, not guessed: `probe_activation_bytes` runs the config's real model forward on
PyTorch's meta device (shapes only: no arithmetic, no allocation, any batch size in milliseconds) and adds up
every tensor autograd saves for the backward pass. The rest is counted from the parameter shapes and the
optimizer. `estimate_run_memory` adds a safety margin (the caching allocator's rounding and fragmentation,
transient buffers of the backward pass, cuDNN workspaces) and a fixed per-process overhead (a CUDA context, or
torch itself on the CPU). The run queue (core/runs/packing.py) admits runs onto a device by this figure.

Activations are counted in fp32 even for bf16 runs: autocast keeps fp32 copies of some inputs, and an
overestimate only packs fewer runs, while an underestimate would run out of memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn as nn

from core.config import TrainConfig, from_json, to_json
from core.models.catalog import build_for_config

MIB = 2**20
SAFETY_MARGIN = 1.3  # x the counted bytes: allocator rounding/fragmentation, backward transients, workspaces
PROCESS_OVERHEAD = {"cuda": 768 * MIB, "cpu": 384 * MIB, "mps": 384 * MIB}  # CUDA context + kernels; torch
# Images and classes a dataset would hold before subsetting, when the config alone does not say (image folders:
# assumed CIFAR-sized; the figure only decides packing, the real run measures itself).
DATASET_SIZES = {"cifar10": (50_000, 10_000, 10), "cifar100": (50_000, 10_000, 100),
                 "synthetic": (5_000, 1_000, 10)}
DEFAULT_DATASET_SIZE = (50_000, 10_000, 100)
IMAGE_BYTES = 3 * 32 * 32  # one uint8 image, as every dataset of the lab stores it


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one run needs on its device; `total` is what admission counts."""

    params: int  # weights (all parameters and buffers)
    grads: int  # gradients of the trainable parameters
    optimizer: int  # optimizer state (Adam: two moments; SGD with momentum: one buffer)
    activations: int  # tensors saved for backward at the run's batch size (measured on the meta device)
    data: int  # the resident training + test images and labels
    overhead: int  # per process: CUDA context or torch on the CPU
    total: int  # (params + grads + optimizer + activations + data) x SAFETY_MARGIN + overhead

    @property
    def checkpoint(self) -> int:
        """Bytes of one checkpoint of the run: its weights and the optimizer's state (what last.pt holds)."""
        return self.params + self.optimizer

    def describe(self) -> str:
        gib = 2**30
        return (f"about {self.total / gib:.2f} GiB (weights {self.params / MIB:.0f} MiB, gradients and optimizer "
                f"{(self.grads + self.optimizer) / MIB:.0f} MiB, activations {self.activations / MIB:.0f} MiB, "
                f"data {self.data / MIB:.0f} MiB, process {self.overhead / MIB:.0f} MiB, x{SAFETY_MARGIN:g} margin)")


def dataset_size(config: TrainConfig) -> tuple[int, int, int]:
    """(training images, test images, classes) the run will hold, from its dataset name and subsets."""
    n_train, n_test, classes = DATASET_SIZES.get(config.data.dataset, DEFAULT_DATASET_SIZE)
    if config.data.subset is not None:
        n_train = min(n_train, config.data.subset)
    if config.data.test_subset is not None:
        n_test = min(n_test, config.data.test_subset)
    return n_train, n_test, classes


def probe_activation_bytes(model: nn.Module, batch: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for backward when `model` runs on `batch` (meta or real tensors).
    A tensor saved by several ops (a ReLU's output saved by the ReLU and the next convolution) counts once;
    the parameters and buffers an op saves are not activations (they are counted as weights)."""
    seen: dict[int, int] = {}
    keep: list[torch.Tensor] = []  # holds the saved tensors so their ids stay unique during the pass
    weights = {id(p) for p in model.parameters()} | {id(b) for b in model.buffers()}  # counted elsewhere

    def pack(t: torch.Tensor) -> torch.Tensor:
        base = t._base if t._base is not None else t
        if id(base) not in seen and id(base) not in weights:
            keep.append(base)
            seen[id(base)] = base.numel() * base.element_size()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(batch)
    # the logits and the loss's softmax are kept too (cross-entropy saves its input's log-softmax)
    return sum(seen.values()) + 2 * out.numel() * 4


def optimizer_state_bytes(config: TrainConfig, trainable_bytes: int) -> int:
    """Adam/AdamW keep two moments per trainable parameter; SGD one momentum buffer (none without momentum)."""
    o = config.optim
    if o.name in ("adam", "adamw"):
        return 2 * trainable_bytes
    return trainable_bytes if o.momentum > 0 else 0


def estimate_run_memory(config: TrainConfig, device_type: str = "cuda") -> MemoryEstimate:
    """The bytes a run of `config` needs on a device of `device_type` (cuda | cpu | mps); see the module doc.
    Cached per config: the queue asks for the same running runs' figures on every claim."""
    return _estimate(to_json(config), device_type)


@functools.lru_cache(maxsize=256)
def _estimate(config_json: str, device_type: str) -> MemoryEstimate:
    config = from_json(config_json)
    n_train, n_test, classes = dataset_size(config)
    with torch.device("meta"):
        model = build_for_config(config, classes, load_pretrained=False)
        batch = torch.empty(config.batch_size, 3, 32, 32)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    params += sum(b.numel() * b.element_size() for b in model.buffers())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    activations = probe_activation_bytes(model, batch)
    # evaluation runs without autograd; its batch of activations is smaller than training's unless the
    # evaluation batch is much larger, so take the larger of the two input batches
    eval_batch = config.eval_batch_size * IMAGE_BYTES * 4
    data = (n_train + n_test) * (IMAGE_BYTES + 8)
    counted = params + trainable + optimizer_state_bytes(config, trainable) + max(activations, eval_batch) + data
    overhead = PROCESS_OVERHEAD.get(device_type, PROCESS_OVERHEAD["cpu"])
    return MemoryEstimate(params=params, grads=trainable, optimizer=optimizer_state_bytes(config, trainable),
                          activations=activations, data=data, overhead=overhead,
                          total=int(counted * SAFETY_MARGIN) + overhead)
