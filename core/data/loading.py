"""Datasets by name: `load_dataset(name)` (cifar100 | cifar10 | synthetic | folder:PATH) with the full splits,
`load(cfg)` cut to a config's stratified subsets, and `dataset_status(name)` for the sidebar and the CLI.

Each source lives in its own module (cifar.py, folder.py, synthetic.py); this one only dispatches on the name.
"""

from __future__ import annotations

from pathlib import Path

from core.config import DataConfig
from core.data.cifar import cifar_status, load_cifar
from core.data.dataset import Dataset, DatasetStatus, Progress, data_root, memoized, stratified_subset
from core.data.folder import folder_status, load_folder
from core.data.synthetic import make_synthetic

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
