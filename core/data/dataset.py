"""The in-memory dataset type and what every loader shares: decoded caches, the per-process memo, the data root,
per-channel statistics and stratified subsets.

A `Dataset`'s tensors are shared between callers and must never be modified in place (index or `.clone()` them).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from core.errors import DataError

Progress = Callable[[int, "int | None"], None]  # (done, total or None): bytes downloaded or images decoded
CACHE_VERSION = 1


@dataclass(frozen=True, eq=False)
class Dataset:
    """Both splits of one dataset, as CPU tensors. Shared and cached: never modify the tensors in place."""

    name: str  # "cifar100", "cifar10", "synthetic", "folder:/abs/path"
    train_x: torch.Tensor  # (N, 3, 32, 32) uint8, contiguous
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor  # (M, 3, 32, 32) uint8
    test_y: torch.Tensor  # (M,) int64
    classes: tuple[str, ...]  # fine class names, index = label
    mean: tuple[float, float, float]  # per-channel mean of the FULL train split, pixels in [0, 1]
    std: tuple[float, float, float]  # per-channel (population) std, same images
    coarse_classes: tuple[str, ...] | None = None  # CIFAR-100's 20 superclasses
    train_coarse: torch.Tensor | None = None  # (N,) int64
    test_coarse: torch.Tensor | None = None  # (M,) int64
    skipped: int = 0  # unreadable image files left out (folder datasets)

    def __post_init__(self) -> None:  # a wrong shape here is a bug in a loader, not a user error
        for x, y in ((self.train_x, self.train_y), (self.test_x, self.test_y)):
            assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3, (x.dtype, x.shape)
            assert y.dtype == torch.int64 and y.shape == (x.shape[0],), (y.dtype, y.shape)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])


@dataclass(frozen=True)
class DatasetStatus:
    """Whether a dataset can be loaded without a download, and what to do if not (for the sidebar and CLI)."""

    ready: bool
    message: str  # what is there / what to do
    path: str  # where the files are (ready) or where the archive should go (not ready)
    archive: str | None = None  # e.g. "cifar-100-python.tar.gz"
    url: str | None = None
    size_mb: float | None = None  # archive size, megabytes (10**6 bytes)



def data_root(override: str | Path | None = None) -> Path:
    """Where datasets live: `override`, else $CIFAR_LAB_DATA, else ./data (absolute, not created)."""
    root = override if override not in (None, "") else os.environ.get("CIFAR_LAB_DATA") or "data"
    return Path(root).expanduser().resolve()


# --- small shared helpers (also used by core/data/folder.py) ------------------------------------------------

def channel_stats(x: torch.Tensor) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Exact per-channel mean and population std of (N, 3, H, W) uint8 images, in [0, 1] units."""
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(3):  # a 256-bin histogram per channel: exact, float64, and no float copy of the images
        hist = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)
        mean = float((hist * values).sum() / hist.sum())
        means.append(mean)
        stds.append(math.sqrt(float((hist * (values - mean) ** 2).sum() / hist.sum())))
    return (means[0], means[1], means[2]), (stds[0], stds[1], stds[2])


def save_cache(path: Path, ds: Dataset, signature: Any) -> bool:
    """Write a dataset's tensors next to its source files (atomically); False when the folder is read-only."""
    payload = {"version": CACHE_VERSION, "signature": signature, "classes": list(ds.classes),
               "coarse_classes": list(ds.coarse_classes) if ds.coarse_classes else None,
               "mean": list(ds.mean), "std": list(ds.std), "skipped": ds.skipped,
               **{k: getattr(ds, k) for k in ("train_x", "train_y", "test_x", "test_y", "train_coarse", "test_coarse")}}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        os.replace(tmp, path)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


def load_cache(path: Path, name: str, signature: Any) -> Dataset | None:
    """The dataset cached at `path` if it was made from the same source files, else None."""
    try:
        d = torch.load(path, weights_only=True)
        if d.get("version") != CACHE_VERSION or d.get("signature") != signature:
            return None
        coarse = d["coarse_classes"]
        return Dataset(name, d["train_x"], d["train_y"], d["test_x"], d["test_y"], tuple(d["classes"]),
                       tuple(d["mean"]), tuple(d["std"]), tuple(coarse) if coarse else None,
                       d["train_coarse"], d["test_coarse"], int(d["skipped"]))
    except FileNotFoundError:
        return None
    except Exception:  # a stale, truncated or foreign cache file is only a cache: rebuild it
        return None


_MEMORY: OrderedDict[tuple, Dataset] = OrderedDict()
_MEMORY_SIZE = 4  # full datasets kept per process (CIFAR: ~180 MB each)
_LOCK = threading.Lock()  # one loader at a time, so two app sessions never decode the same files twice


def memoized(key: tuple, build: Callable[[], Dataset]) -> Dataset:
    """`build()` once per key per process; keys include file signatures, so changed files are reloaded."""
    with _LOCK:
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            return _MEMORY[key]
        ds = build()
        _MEMORY[key] = ds
        while len(_MEMORY) > _MEMORY_SIZE:
            _MEMORY.popitem(last=False)
        return ds


def clear_memory_cache() -> None:
    """Forget the datasets held in this process (tests; freeing memory)."""
    with _LOCK:
        _MEMORY.clear()




# --- subsets -------------------------------------------------------------------------------------------------

def _stratified_indices(y: torch.Tensor, n: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """n // num_classes random indices per class (all of a smaller class), in a seeded random order."""
    if n < num_classes:
        raise DataError(f"a subset needs at least one image per class: ask for at least {num_classes} "
                        f"images, not {n}")
    per_class = n // num_classes
    perm = torch.randperm(len(y), generator=gen)
    by_class = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, random within each class
    counts = torch.bincount(y, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(y)) - starts[y[by_class]]  # position of each image within its class group
    chosen = by_class[rank < per_class]
    return chosen[torch.randperm(len(chosen), generator=gen)]


def subset_size(labels: torch.Tensor, n: int | None, num_classes: int) -> int:
    """How many images `stratified_subset` keeps of a split with these labels when asked for `n` (None: all):
    n // num_classes per class, all of a smaller class - so 125 of 10 balanced classes is 120."""
    if n is None or n >= len(labels):
        return len(labels)
    if n < num_classes:
        raise DataError(f"a subset needs at least one image per class: ask for at least {num_classes} "
                        f"images, not {n}")
    return int(torch.bincount(labels, minlength=num_classes).clamp(max=n // num_classes).sum())


def stratified_subset(ds: Dataset, train: int | None = None, test: int | None = None, seed: int = 0) -> Dataset:
    """The same number of images per class in each split (`None`, or at least the split size: unchanged).

    Deterministic for a seed and independent of torch's global RNG. mean/std stay the full split's.
    """
    changes: dict[str, torch.Tensor] = {}
    for split, n, offset in (("train", train, 0), ("test", test, 1)):
        y: torch.Tensor = getattr(ds, f"{split}_y")
        if n is None or n >= len(y):
            continue
        gen = torch.Generator().manual_seed(2 * seed + offset)  # one stream per split
        idx = _stratified_indices(y, n, ds.num_classes, gen)
        changes[f"{split}_x"] = getattr(ds, f"{split}_x")[idx].contiguous()
        changes[f"{split}_y"] = y[idx]
        coarse = getattr(ds, f"{split}_coarse")
        if coarse is not None:
            changes[f"{split}_coarse"] = coarse[idx]
    return replace(ds, **changes) if changes else ds
