"""The one training batch iterator: `TrainBatches` (airbench's CifarLoader is the model), and the seeds behind it.

The whole split sits on the device as uint8 (`resident`); each epoch draws its own seeded permutation (the data
order) and its own seeded augmentation generator, both derived from the run's seed and the epoch number, so a
run resumed at epoch e, batch b sees exactly the batches it would have seen. A batch is: index the uint8 rows
(`rows`), then augment + normalize on the device (core.data.augment.train_batch: the ops the augmentation preview
shows). core.train.engine, the learning-rate finder (index-addressable: `batches(i)`), the augmentation preview
(`augmentation_generator`) and the CPU bench all draw their batches here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from core.config import AugmentConfig
from core.data import augment as aug
from core.train.schedule import steps_per_epoch

Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs (B, 3, H, W) float32 normalized, targets (B,) int64)

# Per-epoch seeds derived from the run's seed: epoch e of seed s orders its data with s·PERM_SEED_STRIDE + e and
# augments with s·PERM_SEED_STRIDE + AUG_SEED_OFFSET + e. A large prime stride keeps the streams of neighbouring
# seeds apart for any realistic epoch count; the offset keeps the augmentation stream apart from the data order.
PERM_SEED_STRIDE = 1_000_003
AUG_SEED_OFFSET = 7_919


def permutation_seed(seed: int, epoch: int) -> int:
    """The seed of the data order of `epoch` (1-based) in a run with `seed`."""
    return seed * PERM_SEED_STRIDE + epoch


def augmentation_seed(seed: int, epoch: int) -> int:
    """The seed of the augmentation generator of `epoch` (1-based) in a run with `seed`."""
    return seed * PERM_SEED_STRIDE + AUG_SEED_OFFSET + epoch


def augmentation_generator(seed: int, epoch: int = 1, device: torch.device | str = "cpu") -> torch.Generator:
    """The augmentation generator a run with `seed` starts `epoch` (1-based) with, on `device`."""
    return aug.make_generator(augmentation_seed(seed, epoch), device)


def epoch_permutation(n: int, seed: int, device: torch.device) -> torch.Tensor:
    """The epoch's data order (n,) int64 on `device`: drawn on the CPU from `seed` (the same order on every
    device, so a run's batches do not depend on where it trains) and copied once per epoch."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm.to(device, non_blocking=True) if device.type == "cuda" else perm.to(device)


def rows(t: torch.Tensor, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    """t[idx] on `device`; t may stay on the host (pinned) when the split did not fit the GPU. index_select, not
    t[idx]: the same bytes, ~15x faster for uint8 images on the CPU."""
    if t.device != idx.device:  # only when a split is not resident: the images stay on the host, labels not
        idx = idx.to(t.device, non_blocking=True)
    return t.index_select(0, idx).to(device, non_blocking=True)


def resident(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a whole split to the device when it fits comfortably (CIFAR's 50,000 images are 150 MB as uint8);
    otherwise keep it on the host (pinned, when CUDA is there) and copy each batch."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if t.numel() * t.element_size() < 0.25 * free:
            return t.to(device)
        return t.pin_memory()
    return t.to(device)


class TrainBatches:
    """Normalized, augmented training batches of uint8 images x (N, 3, H, W) with labels y (N,), epoch by epoch.

    batch_size: images per batch (the last batch of an epoch holds the remainder). augment: what
    core.data.augment.train_batch applies; mean/std: per-channel normalization in [0, 1] pixel units.
    seed: the run's seed (see permutation_seed / augmentation_seed). device: where batches are made (default:
    x's device; x and y may stay on the host when they did not fit, see `resident`). memory_format: the layout
    of the yielded inputs (channels_last for NHWC runs).

    Two ways in: `start_epoch(e, at=b)` then `next_batch()` until `position == steps_per_epoch` (the engine: it
    polls for a stop before each draw and checkpoints `generator`), or `batches(i)` for the i-th batch of the
    run, epochs cycling (the LR finder). Any start that skips batches draws the skipped batches' augmentation
    parameters again, so a batch never depends on how it was reached.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, augment: AugmentConfig,
                 mean: Sequence[float], std: Sequence[float], seed: int, *, device: torch.device | None = None,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.x, self.y = x, y  # (N, 3, H, W) uint8, (N,) int64
        self.batch_size, self.augment, self.mean, self.std, self.seed = batch_size, augment, mean, std, seed
        self.device = torch.device(device) if device is not None else x.device
        self.memory_format = memory_format
        self.steps_per_epoch = steps_per_epoch(len(x), batch_size)
        self.epoch = 0  # the epoch (1-based) being drawn; 0 before the first
        self.position = 0  # the next batch of that epoch to draw (0-based)
        self.generator: torch.Generator | None = None  # the epoch's augmentation stream (what a checkpoint saves)
        self._perm: torch.Tensor | None = None

    def start_epoch(self, epoch: int, at: int = 0, aug_state: torch.Tensor | None = None) -> None:
        """Begin `epoch` (1-based) at batch `at`. aug_state: the generator state a checkpoint saved at `at`
        (otherwise the skipped batches' parameters are drawn again)."""
        self._perm = epoch_permutation(len(self.x), permutation_seed(self.seed, epoch), self.x.device)
        self.generator = augmentation_generator(self.seed, epoch, self.device)
        self.epoch, self.position = epoch, 0
        if at > 0 and aug_state is not None:
            self.generator.set_state(aug_state)
            self.position = at
        self._skip_to(at)

    def _indices(self, b: int) -> torch.Tensor:
        assert self._perm is not None, "start_epoch first"
        return self._perm[b * self.batch_size:(b + 1) * self.batch_size]  # (B,) int64

    def _skip_to(self, b: int) -> None:
        """Fast-forward the generator: the same draws the skipped batches would have made."""
        while self.position < b:
            if self.augment.enabled:  # sample_params reads only the batch's shape and device
                n = len(self._indices(self.position))
                like = self.x[:n] if self.x.device == self.device else \
                    torch.empty((n, *self.x.shape[1:]), dtype=self.x.dtype, device=self.device)
                aug.sample_params(like, self.augment, self.generator)
            self.position += 1

    def next_batch(self) -> Batch:
        """The batch at `position` of the current epoch; advances `position`."""
        idx = self._indices(self.position)
        xb = aug.train_batch(rows(self.x, idx, self.device), self.augment, self.generator, self.mean, self.std)
        self.position += 1
        return xb.contiguous(memory_format=self.memory_format), rows(self.y, idx, self.device)

    def epoch_batches(self, epoch: int) -> Iterator[Batch]:
        """Every batch of `epoch`, in order."""
        self.start_epoch(epoch)
        while self.position < self.steps_per_epoch:
            yield self.next_batch()

    def __call__(self, i: int) -> Batch:
        """The i-th batch (0-based) of the run: epoch i // steps_per_epoch + 1. Sequential calls continue the
        epoch's generator; any other index restarts that epoch and fast-forwards."""
        epoch, b = i // self.steps_per_epoch + 1, i % self.steps_per_epoch
        if epoch != self.epoch or b < self.position:
            self.start_epoch(epoch)
        self._skip_to(b)
        return self.next_batch()
