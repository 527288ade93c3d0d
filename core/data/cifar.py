"""CIFAR-100 and CIFAR-10 from the official pickles: download with an md5 check, unpack, decode once into
`<folder>/cifar-lab-cache.pt` so later processes start fast, and report what is on disk.
"""

from __future__ import annotations

import http.client
import os
import pickle
import shutil
import tarfile
import threading
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.dataset import (
    Dataset,
    DatasetStatus,
    Progress,
    channel_stats,
    data_root,
    load_cache,
    memoized,
    save_cache,
)
from core.errors import DataError

CIFAR_CACHE_NAME = "cifar-lab-cache.pt"
DOWNLOAD_CHUNK = 1 << 20  # bytes read per progress report


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
    classes: int  # fine classes
    mean: tuple[float, float, float]  # the training set's published per-channel statistics, pixels in [0, 1]
    std: tuple[float, float, float]
    train_images: int = 50_000  # both archives hold 50,000 training images and 10,000 test images
    test_images: int = 10_000

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


SPECS: dict[str, CifarSpec] = {
    "cifar100": CifarSpec("CIFAR-100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                          "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python",
                          169.0, ("train",), "test", "meta", b"fine_labels", b"fine_label_names",
                          "CIFAR_LAB_CIFAR100", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "cifar10": CifarSpec("CIFAR-10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                         "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py",
                         170.5, tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
                         b"labels", b"label_names", "CIFAR_LAB_CIFAR10", 10, (0.4914, 0.4822, 0.4465),
                         (0.2470, 0.2435, 0.2616)),
}


def _url(spec: CifarSpec) -> str:
    return os.environ.get(f"{spec.env}_URL") or spec.url


def _md5(spec: CifarSpec) -> str:
    return os.environ.get(f"{spec.env}_MD5") or spec.md5



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
    # deferred: torchvision takes seconds to import (~7 s on a busy 2-core box) and only a download needs it here
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


def load_cifar(name: str, root: str | Path | None = None, *, download: bool = False,
               progress: Progress | None = None) -> Dataset:
    """CIFAR `name` from `data_root(root)`: an archive already there is checked and unpacked without network;
    otherwise `download=True` fetches it (progress gets bytes) and `download=False` raises DataError."""
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


def cifar_status(name: str, root: str | Path | None = None) -> DatasetStatus:
    """What is on disk for CIFAR `name` and what to do next; cheap (no decoding, no network)."""
    root_dir = data_root(root)
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
