"""Datasets as in-memory uint8 tensors: CIFAR-100/10 (official pickles), a synthetic set, and image folders.

`load_dataset(name)` returns a `Dataset` with the full splits; `load(cfg)` also applies the config's stratified
subsets. CIFAR pickles are decoded once into `<folder>/cifar-lab-cache.pt` so later processes start fast, and
each process keeps its last few datasets in memory: the tensors of a returned `Dataset` are shared between
callers and must never be modified in place (index or `.clone()` them instead). Image folders live in
core/folder_data.py. `download` fetches an official archive, checks its md5 and unpacks it under `data_root()`.
"""

from __future__ import annotations

import http.client
import math
import os
import pickle
import shutil
import tarfile
import threading
import urllib.error
import urllib.request
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import DataConfig
from core.errors import DataError

Progress = Callable[[int, "int | None"], None]  # (done, total or None): bytes downloaded or images decoded
CACHE_VERSION = 1
CIFAR_CACHE_NAME = "cifar-lab-cache.pt"
DOWNLOAD_CHUNK = 1 << 20  # bytes read per progress report


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


@dataclass(frozen=True)
class CifarSpec:
    """Where an official CIFAR archive comes from and what it unpacks to."""

    title: str
    url: str
    archive: str
    md5: str
    folder: str  # what the archive unpacks to, under the data root
    size_mb: float
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: bytes  # fine labels
    names_key: bytes  # fine label names, in meta_file
    env: str  # prefix of the environment overrides <env>_URL and <env>_MD5 (mirrors, tests)

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


SPECS: dict[str, CifarSpec] = {
    "cifar100": CifarSpec("CIFAR-100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                          "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python",
                          169.0, ("train",), "test", "meta", b"fine_labels", b"fine_label_names",
                          "CIFAR_LAB_CIFAR100"),
    "cifar10": CifarSpec("CIFAR-10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                         "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py",
                         170.5, tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
                         b"labels", b"label_names", "CIFAR_LAB_CIFAR10"),
}


def _url(spec: CifarSpec) -> str:
    return os.environ.get(f"{spec.env}_URL") or spec.url


def _md5(spec: CifarSpec) -> str:
    return os.environ.get(f"{spec.env}_MD5") or spec.md5


def data_root(override: str | Path | None = None) -> Path:
    """Where datasets live: `override`, else $CIFAR_LAB_DATA, else ./data (absolute, not created)."""
    root = override if override not in (None, "") else os.environ.get("CIFAR_LAB_DATA") or "data"
    return Path(root).expanduser().resolve()


# --- small shared helpers (also used by core/folder_data.py) ------------------------------------------------

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


# --- loading -------------------------------------------------------------------------------------------------

def load_dataset(name: str, root: str | Path | None = None, *, download: bool = False,
                 progress: Progress | None = None) -> Dataset:
    """The full train and test splits of `name` (cifar100 | cifar10 | synthetic | folder:PATH).

    CIFAR: read from `data_root(root)`; an archive already there is checked and unpacked without network;
    otherwise `download=True` fetches it (progress gets bytes) and `download=False` raises DataError.
    Folders: progress gets (images decoded, total) on the first load.
    """
    if name == "synthetic":
        from core.synthetic_data import make_synthetic  # imported here: it builds on this module

        return memoized(("synthetic",), make_synthetic)
    if name.startswith("folder:") and len(name) > 7:
        from core.folder_data import load_folder  # imported here: folder_data builds on this module

        return load_folder(name[7:], data_root(root), progress=progress)
    spec = _spec(name)
    root_dir = data_root(root)
    folder = root_dir / spec.folder
    if not _extracted(spec, folder):
        if download or (root_dir / spec.archive).exists():
            _download(spec, root_dir, progress)
        else:
            raise DataError(f"dataset {name} is not in {root_dir}: download it from the app's sidebar, run "
                            f"`python -m core download {name}`, or put {spec.archive} there")
    signature = [[f, (folder / f).stat().st_size, (folder / f).stat().st_mtime_ns] for f in spec.files]
    return memoized((name, str(folder), str(signature)), lambda: _load_cifar(name, spec, folder, signature))


def load(cfg: DataConfig, root: str | Path | None = None, *, download: bool = False, progress: Progress | None = None,
         seed: int = 0) -> Dataset:
    """`load_dataset(cfg.dataset)` cut to `cfg.subset` / `cfg.test_subset` (a core.config.DataConfig).

    mean/std stay those of the full train split, so a model sees the same normalization at every size.
    """
    ds = load_dataset(cfg.dataset, root, download=download, progress=progress)
    return stratified_subset(ds, cfg.subset, cfg.test_subset, seed=seed)


def _spec(name: str) -> CifarSpec:
    if name not in SPECS:
        raise DataError(f"unknown dataset {name!r}: use cifar100, cifar10, synthetic or folder:PATH "
                        "(PATH holding train/<class>/ and test/<class>/ image folders)")
    return SPECS[name]


def _extracted(spec: CifarSpec, folder: Path) -> bool:
    return all((folder / f).is_file() for f in spec.files)


def _read_pickle(path: Path) -> dict:
    # The official CIFAR format is a Python-2 pickle; only open files you trust (as with any pickle).
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _load_cifar(name: str, spec: CifarSpec, folder: Path, signature: list) -> Dataset:
    cache = folder / CIFAR_CACHE_NAME
    ds = load_cache(cache, name, signature)
    if ds is not None:
        return ds
    try:
        train = [_read_pickle(folder / f) for f in spec.train_files]
        test = _read_pickle(folder / spec.test_file)
        meta = _read_pickle(folder / spec.meta_file)

        def images(parts: list[dict]) -> torch.Tensor:  # (N, 3072) rows of R, G, B planes -> (N, 3, 32, 32)
            data = np.concatenate([np.asarray(p[b"data"], dtype=np.uint8) for p in parts])
            return torch.from_numpy(np.ascontiguousarray(data.reshape(-1, 3, 32, 32)))

        def labels(parts: list[dict], key: bytes) -> torch.Tensor:
            return torch.tensor([y for p in parts for y in p[key]], dtype=torch.int64)

        train_x, test_x = images(train), images([test])
        train_y, test_y = labels(train, spec.label_key), labels([test], spec.label_key)
        classes = tuple(n.decode() for n in meta[spec.names_key])
        coarse = None
        if name == "cifar100":
            coarse = (tuple(n.decode() for n in meta[b"coarse_label_names"]),
                      labels(train, b"coarse_labels"), labels([test], b"coarse_labels"))
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError) as e:
        raise DataError(f"the {spec.title} files in {folder} are unreadable ({type(e).__name__}: {e}): delete "
                        f"that folder and load again (it is re-extracted from {spec.archive} or downloaded)") from None
    mean, std = channel_stats(train_x)
    ds = Dataset(name, train_x, train_y, test_x, test_y, classes, mean, std, *(coarse or (None, None, None)))
    save_cache(cache, ds, signature)  # best effort: a read-only data folder just means slower starts
    return ds


# --- download ------------------------------------------------------------------------------------------------

def download(name: str, root: str | Path | None = None, progress: Progress | None = None) -> Path:
    """Make `name` (cifar100 | cifar10) loadable: fetch its archive unless it is already in the data root,
    check the md5, unpack. Returns the unpacked folder. progress gets (bytes done, total bytes or None)."""
    return _download(_spec(name), data_root(root), progress)


_DOWNLOAD_LOCK = threading.Lock()  # two app sessions clicking "download" fetch the archive once


def _download(spec: CifarSpec, root_dir: Path, progress: Progress | None) -> Path:
    """download(), also reachable from load_dataset, whose `download` flag hides the function's name."""
    with _DOWNLOAD_LOCK:
        return _download_locked(spec, root_dir, progress)


def _download_locked(spec: CifarSpec, root_dir: Path, progress: Progress | None) -> Path:
    folder = root_dir / spec.folder
    if _extracted(spec, folder):
        return folder
    archive = root_dir / spec.archive
    fresh = not archive.exists()
    if fresh:
        _fetch(spec, _url(spec), archive, root_dir, progress)
    from torchvision.datasets.utils import calculate_md5, extract_archive

    expected = _md5(spec)
    actual = calculate_md5(str(archive))
    if actual != expected:
        if fresh:
            archive.unlink(missing_ok=True)
        raise DataError(f"{archive} has the wrong checksum (md5 {actual}, expected {expected}): it is corrupt or "
                        "truncated. " + ("It was deleted; download it again." if fresh
                                         else "Delete it and download it again."))
    tmp = root_dir / f".extract-{spec.folder}-{os.getpid()}"
    try:
        extract_archive(str(archive), str(tmp))
        missing = [f for f in spec.files if not (tmp / spec.folder / f).is_file()]
        if missing:
            raise DataError(f"{archive} does not hold {spec.folder}/{missing[0]}: it is not the {spec.title} "
                            f"archive. Delete it and download {_url(spec)} again.")
        folder.mkdir(parents=True, exist_ok=True)
        for f in spec.files:  # move file by file: never replace a folder the user may have put things in
            os.replace(tmp / spec.folder / f, folder / f)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"could not unpack {archive} ({type(e).__name__}: {e}): the archive is corrupt or "
                        f"truncated, or {root_dir} is full or read-only. Delete it and download it again.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _fetch(spec: CifarSpec, url: str, archive: Path, root_dir: Path, progress: Progress | None) -> None:
    """Stream `url` to `archive` through a .part file, so an interrupted download never looks complete."""
    part = archive.with_name(f"{archive.name}.{os.getpid()}.part")  # per process: a CLI and the app may race
    try:
        root_dir.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if progress:
                progress(0, total)
            while chunk := response.read(DOWNLOAD_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        os.replace(part, archive)
    # URLError and timeouts are OSErrors; HTTPException: the connection broke mid-file; ValueError: a bad URL
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DataError(f"could not download {spec.title} from {url} ({reason}). No network? Download {url} on "
                        f"another machine and put {spec.archive} in {root_dir}, or extract it there so that "
                        f"{root_dir / spec.folder / spec.train_files[0]} exists.") from None


# --- status --------------------------------------------------------------------------------------------------

def dataset_status(name: str, root: str | Path | None = None) -> DatasetStatus:
    """What is on disk for `name` and what to do next; cheap (no decoding, no network)."""
    if name == "synthetic":
        return DatasetStatus(True, "synthetic patterns are generated in memory (no files needed)", "")
    root_dir = data_root(root)
    if name.startswith("folder:") and len(name) > 7:
        from core.folder_data import folder_status

        return folder_status(name[7:], root_dir)
    spec = _spec(name)
    folder, archive = root_dir / spec.folder, root_dir / spec.archive
    common = {"archive": spec.archive, "url": _url(spec), "size_mb": spec.size_mb}
    if _extracted(spec, folder):
        cached = " (decoded cache present)" if (folder / CIFAR_CACHE_NAME).exists() else ""
        return DatasetStatus(True, f"{spec.title} is ready in {folder}{cached}", str(folder), **common)
    if archive.exists():
        return DatasetStatus(False, f"{spec.archive} is in {root_dir}: it is checked and unpacked on the first "
                             "load (no network needed)", str(root_dir), **common)
    return DatasetStatus(False, f"{spec.title} is not in {root_dir}: download it ({spec.size_mb:.0f} MB), or put "
                         f"{spec.archive} from {_url(spec)} there", str(root_dir), **common)


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
