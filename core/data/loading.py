"""Datasets by name: `load_dataset(name)` (cifar100 | cifar10 | synthetic | folder:PATH) with the full splits,
`load(cfg)` cut to a config's stratified subsets, `dataset_status(name)` for the sidebar and the CLI, and
`dataset_facts(name)`: its classes, split sizes and published statistics without decoding an image.

Each source lives in its own module (cifar.py, folder.py, synthetic.py); this one only dispatches on the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.config import DataConfig
from core.data.cifar import SPECS, cifar_status, load_cifar
from core.data.dataset import Dataset, DatasetStatus, Progress, data_root, memoized, stratified_subset
from core.data.folder import folder_status, folder_summary, load_folder
from core.data.synthetic import SYNTHETIC_CLASSES, TEST_PER_CLASS, TRAIN_PER_CLASS, make_synthetic
from core.errors import DataError

FOLDER_PREFIX = "folder:"


def load_dataset(name: str, root: str | Path | None = None, *, download: bool = False,
                 progress: Progress | None = None) -> Dataset:
    """The full train and test splits of `name` (cifar100 | cifar10 | synthetic | folder:PATH).

    CIFAR: read from `data_root(root)`; an archive already there is checked and unpacked without network;
    otherwise `download=True` fetches it (progress gets bytes) and `download=False` raises DataError.
    Folders: progress gets (images decoded, total) on the first load.
    """
    if name == "synthetic":
        return memoized(("synthetic",), make_synthetic)
    if name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX):
        return load_folder(name[len(FOLDER_PREFIX):], data_root(root), progress=progress)
    return load_cifar(name, root, download=download, progress=progress)


def load(cfg: DataConfig, root: str | Path | None = None, *, download: bool = False, progress: Progress | None = None,
         seed: int = 0) -> Dataset:
    """`load_dataset(cfg.dataset)` cut to `cfg.subset` / `cfg.test_subset` (a core.config.DataConfig).

    mean/std stay those of the full train split, so a model sees the same normalization at every size.
    """
    ds = load_dataset(cfg.dataset, root, download=download, progress=progress)
    return stratified_subset(ds, cfg.subset, cfg.test_subset, seed=seed)


def dataset_status(name: str, root: str | Path | None = None) -> DatasetStatus:
    """What is on disk for `name` and what to do next; cheap (no decoding, no network)."""
    if name == "synthetic":
        return DatasetStatus(True, "synthetic patterns are generated in memory (no files needed)", "")
    if name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX):
        return folder_status(name[len(FOLDER_PREFIX):], data_root(root))
    return cifar_status(name, root)


@dataclass(frozen=True)
class DatasetFacts:
    """What is known of a dataset by its name alone: no image decoded, nothing downloaded."""

    num_classes: int
    train_images: int  # the whole training split
    test_images: int
    mean: tuple[float, float, float] | None  # published per-channel statistics (CIFAR); None: known once loaded
    std: tuple[float, float, float] | None


def dataset_facts(name: str) -> DatasetFacts:
    """The classes, split sizes and published statistics of `name` (cifar100 | cifar10 | synthetic |
    folder:PATH). A folder's are read off its file listing (about a second for 60,000 files); DataError when it
    is not a dataset, or for an unknown name."""
    if name in SPECS:
        spec = SPECS[name]
        return DatasetFacts(spec.classes, spec.train_images, spec.test_images, spec.mean, spec.std)
    if name == "synthetic":
        n = len(SYNTHETIC_CLASSES)
        return DatasetFacts(n, n * TRAIN_PER_CLASS, n * TEST_PER_CLASS, None, None)
    if name.startswith(FOLDER_PREFIX) and len(name) > len(FOLDER_PREFIX):
        s = folder_summary(name[len(FOLDER_PREFIX):])
        return DatasetFacts(len(s.classes), s.train_images, s.test_images, None, None)
    raise DataError(f"unknown dataset {name!r}: use cifar100, cifar10, synthetic or folder:PATH (PATH holding "
                    "train/<class>/ and test/<class>/ image folders)")
