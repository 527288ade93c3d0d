"""Tiny stand-ins for real data, written in the official on-disk formats, for any test to reuse.

- `write_fake_cifar(root, "cifar100" | "cifar10", ...)`: the python-pickle CIFAR layout under root/, with
  random pixels; returns the arrays it wrote so a test can compare exactly.
- `write_fake_archive(dir, ...)`: the same files packed as the official .tar.gz; returns its path and md5.
- `write_image_folder(root, {"cat": 3, ...}, ...)`: root/train/<class>/*.png|jpg and root/test/<class>/*.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.config import DataConfig, ModelConfig, TrainConfig

CIFAR100_COARSE = 20


@dataclass(frozen=True)
class FakeCifar:
    folder: Path  # e.g. root/cifar-100-python
    train_x: np.ndarray  # (N, 3, 32, 32) uint8, in file order
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    coarse_classes: tuple[str, ...] | None = None
    train_coarse: np.ndarray | None = None
    test_coarse: np.ndarray | None = None


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # bytes keys, as the Python-2 originals have


def _split(rng: np.random.Generator, classes: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.permutation(np.repeat(np.arange(classes), per_class)).astype(np.int64)
    x = rng.integers(0, 256, size=(len(y), 3, 32, 32), dtype=np.uint8)
    return x, y


def write_fake_cifar(root: str | Path, which: str = "cifar100", n_train_per_class: int = 2,
                     n_test_per_class: int = 1, seed: int = 0) -> FakeCifar:
    """Write root/cifar-100-python/{train,test,meta} or root/cifar-10-batches-py/{data_batch_1..5,test_batch,
    batches.meta} exactly as the official archives hold them: b'data' (N, 3072) uint8 rows of R, G, B planes."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    if which == "cifar100":
        classes = tuple(f"fine{i:02d}" for i in range(100))
        coarse_classes = tuple(f"coarse{i:02d}" for i in range(CIFAR100_COARSE))
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        train_x, train_y = _split(rng, 100, n_train_per_class)
        test_x, test_y = _split(rng, 100, n_test_per_class)
        train_c, test_c = train_y // 5, test_y // 5  # fake superclasses: five fine classes each
        for name, x, y, c in (("train", train_x, train_y, train_c), ("test", test_x, test_y, test_c)):
            _dump(folder / name, {b"filenames": [f"{i}.png".encode() for i in range(len(y))],
                                  b"batch_label": name.encode(), b"fine_labels": y.tolist(),
                                  b"coarse_labels": c.tolist(), b"data": x.reshape(len(y), 3072)})
        _dump(folder / "meta", {b"fine_label_names": [n.encode() for n in classes],
                                b"coarse_label_names": [n.encode() for n in coarse_classes]})
        return FakeCifar(folder, train_x, train_y, test_x, test_y, classes, coarse_classes, train_c, test_c)
    if which != "cifar10":
        raise ValueError(which)
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = _split(rng, 10, n_train_per_class)
    test_x, test_y = _split(rng, 10, n_test_per_class)
    bounds = np.linspace(0, len(train_y), 6).astype(int)  # five batches, as evenly as the count allows
    for b in range(5):
        x, y = train_x[bounds[b]:bounds[b + 1]], train_y[bounds[b]:bounds[b + 1]]
        _dump(folder / f"data_batch_{b + 1}", {b"batch_label": b"training batch", b"labels": y.tolist(),
                                               b"data": x.reshape(len(y), 3072)})
    _dump(folder / "test_batch", {b"batch_label": b"testing batch", b"labels": test_y.tolist(),
                                  b"data": test_x.reshape(len(test_y), 3072)})
    _dump(folder / "batches.meta", {b"label_names": [n.encode() for n in classes], b"num_vis": 3072})
    return FakeCifar(folder, train_x, train_y, test_x, test_y, classes)


def write_fake_archive(directory: str | Path, which: str = "cifar100", **kwargs) -> tuple[Path, str, FakeCifar]:
    """The fake dataset packed like the official .tar.gz in `directory`: (archive path, its md5, contents)."""
    directory = Path(directory)
    staging = directory / "staging"
    fake = write_fake_cifar(staging, which, **kwargs)
    archive = directory / ("cifar-100-python.tar.gz" if which == "cifar100" else "cifar-10-python.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(fake.folder, arcname=fake.folder.name)
    return archive, hashlib.md5(archive.read_bytes()).hexdigest(), fake


def write_image_folder(root: str | Path, counts: dict[str, tuple[int, int]], size: int = 32,
                       fmt: str = "png", seed: int = 0) -> dict[str, dict[str, list[np.ndarray]]]:
    """root/{train,test}/<class>/<i>.<fmt>: counts maps class -> (train images, test images) of size x size
    random RGB pixels. Returns {split: {class: [(size, size, 3) uint8 arrays in file-name order]}}."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, list[np.ndarray]]] = {"train": {}, "test": {}}
    for name, (n_train, n_test) in counts.items():
        for split, n in (("train", n_train), ("test", n_test)):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            written[split][name] = []
            for i in range(n):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(d / f"{i:04d}.{fmt}")
                written[split][name].append(pixels)
    return written


def tiny_config(**kw) -> TrainConfig:
    """A run config that trains in about a second on the CPU: a 4/4/8/8 CNN on 200 synthetic images, 2 epochs."""
    base = dict(data=DataConfig(dataset="synthetic", subset=200, test_subset=100),
                model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 32}), batch_size=50, epochs=2, device="cpu")
    return TrainConfig(**{**base, **kw})
