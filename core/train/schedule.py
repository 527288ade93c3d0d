"""Learning-rate schedules as pure functions of the step, so a page can draw one before anything runs.

`lr_at(cfg, step, steps_per_epoch, epochs)` is what the engine sets on the optimizer before optimizer step
`step` (0-based); `schedule_curve` is the same function over a whole run; `run_steps_per_epoch` is how many
steps an epoch of a config takes on a dataset, as the engine counts them.
"""

from __future__ import annotations

import math

from core.config import OptimConfig, TrainConfig
from core.data.dataset import Dataset, subset_size
from core.data.loading import FOLDER_PREFIX, dataset_facts

ONECYCLE_START_DIV = 25.0  # one-cycle starts at lr / 25 ...
ONECYCLE_END_DIV = 1e4  # ... and anneals to lr / 10,000 (PyTorch's OneCycleLR defaults)


def lr_at(cfg: OptimConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Learning rate for 0-based optimizer step `step` of a run of `epochs` × `steps_per_epoch` steps."""
    total = max(1, steps_per_epoch * epochs)
    step = min(max(step, 0), total - 1)
    warmup = min(total - 1, int(round(cfg.warmup_epochs * steps_per_epoch)))
    peak = cfg.lr

    if cfg.schedule == "onecycle":
        # Rise linearly from peak/25 to peak over the warm-up (30% of the run when none is given),
        # then cosine-anneal to peak/1e4: Smith's one-cycle, as in PyTorch's OneCycleLR.
        warmup = warmup if cfg.warmup_epochs > 0 else int(0.3 * total)
        start, end = peak / ONECYCLE_START_DIV, peak / ONECYCLE_END_DIV
        if step < warmup:
            return start + (peak - start) * step / max(1, warmup)
        t = (step - warmup) / max(1, total - 1 - warmup)
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * t))

    if step < warmup:  # linear warm-up from ~0 to the schedule's value, for the other schedules
        return peak * (step + 1) / (warmup + 1)

    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        return peak * cfg.step_gamma ** (epoch // cfg.step_epochs)
    if cfg.schedule == "cosine":
        t = (step - warmup) / max(1, total - 1 - warmup)
        return peak * 0.5 * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def schedule_curve(cfg: OptimConfig, steps_per_epoch: int, epochs: int) -> list[float]:
    """The LR at every optimizer step of the run (for drawing the schedule before starting)."""
    return [lr_at(cfg, s, steps_per_epoch, epochs) for s in range(max(1, steps_per_epoch * epochs))]


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Optimizer steps per epoch: every image once; a last batch of a single image is dropped
    (batch norm cannot train on one image)."""
    full, rest = divmod(train_size, batch_size)
    return max(1, full + (1 if rest > 1 else 0))


def run_steps_per_epoch(config: TrainConfig, dataset: Dataset | None = None) -> int:
    """Optimizer steps per epoch of a run of `config`: the engine's count on `dataset` (the whole dataset, before
    the config's stratified subset). Without the dataset (not on this machine yet) its known training-set size
    (core.data.loading.dataset_facts: CIFAR, synthetic) stands in, cut to the subset; an image folder then counts
    the subset alone (1 when there is none), never listing its files here."""
    if dataset is not None:
        n = subset_size(dataset.train_y, config.data.subset, dataset.num_classes)
    else:
        name = config.data.dataset
        known = None if name.startswith(FOLDER_PREFIX) else dataset_facts(name).train_images
        sizes = [x for x in (config.data.subset, known) if x is not None]
        n = min(sizes) if sizes else 1
    return steps_per_epoch(n, config.batch_size)
