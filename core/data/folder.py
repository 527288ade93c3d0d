"""Image-folder datasets (`folder:PATH`): PATH/train/<class>/* and PATH/test/<class>/*, decoded once to 32x32.

Classes are the sorted train subfolder names. Files with an image extension that cannot be decoded are
skipped and counted (Dataset.skipped); other files are ignored. The decoded tensors are cached in
PATH/.cifar-lab-cache.pt (or, when PATH is read-only, under <data root>/folder-cache/), keyed by a signature
of every image's path, size and mtime, so adding, removing or editing an image re-decodes the folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from core.data.dataset import (
    Dataset,
    DatasetStatus,
    Progress,
    channel_stats,
    load_cache,
    memoized,
    save_cache,
)
from core.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")  # compared lower-case
CACHE_NAME = ".cifar-lab-cache.pt"
SIZE = 32
CHUNK = 256  # images per decoding task
FAST_JPEG_BYTES = 16 << 10  # JPEGs smaller than this cannot be huge, so they are batch-decoded at full size

# torchvision 0.29 deprecates its image decoders (in favour of TorchCodec) and warns on every call; the fast path
# below falls back to PIL wherever they are missing, so the warning says nothing a user can act on.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)


def _layout(path: Path, problem: str) -> DataError:
    return DataError(f"{problem}. A folder dataset needs {path}/train/<class>/*.jpg and {path}/test/<class>/*.jpg "
                     "(one subfolder per class; jpg, jpeg, png, webp, bmp or gif)")


def _class_dirs(split_dir: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))


class Listing(NamedTuple):
    """Every image file of a folder dataset, train split first, each split by class then file name."""

    classes: list[str]
    paths: list[str]  # plain strings: 60,000 Path objects alone would cost a second
    labels: list[int]
    train: list[bool]
    signature: str  # sha1 of every file's split/class/name, size and mtime


def _check_layout(path: Path) -> list[str]:
    """The class names, once train/ and test/ exist and train/ has class subfolders."""
    for split in ("train", "test"):
        if not (path / split).is_dir():
            raise _layout(path, f"{path / split} is missing" if path.is_dir() else f"{path} does not exist")
    classes = _class_dirs(path / "train")
    if not classes:
        raise _layout(path, f"{path / 'train'} has no class subfolders")
    return classes


def _scan(path: Path) -> Listing:
    """List the images after checking the layout; DataError says what is wrong and what is expected."""
    classes = _check_layout(path)
    extra = sorted(set(_class_dirs(path / "test")) - set(classes))
    if extra:
        raise DataError(f"test class {extra[0]!r} has no folder in {path / 'train'}: every test class must also be "
                        "a train class (rename or remove that test folder)")
    listing = Listing(classes, [], [], [], "")
    lines: list[str] = []
    for split in ("train", "test"):
        for label, name in enumerate(classes):
            class_dir = path / split / name
            entries = sorted(os.scandir(class_dir), key=lambda e: e.name) if class_dir.is_dir() else []
            before = len(lines)
            for e in entries:  # hidden files (e.g. macOS "._x.jpg") are metadata, not images
                if e.name.startswith(".") or not e.name.lower().endswith(IMAGE_EXTENSIONS) or not e.is_file():
                    continue
                st = e.stat()
                listing.paths.append(e.path)
                listing.labels.append(label)
                listing.train.append(split == "train")
                lines.append(f"{split}/{name}/{e.name}\t{st.st_size}\t{st.st_mtime_ns}")
            if len(lines) == before:
                raise DataError(f"class {name!r} has no {split} images: put at least one image in {class_dir}")
    return listing._replace(signature=hashlib.sha1("\n".join(lines).encode()).hexdigest())


def _decode_pil(data: bytes) -> np.ndarray:
    """(3, 32, 32) uint8 from any image PIL reads: RGB, bilinear resize when not already 32x32."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft(None, (SIZE, SIZE))  # JPEG only: let libjpeg shrink big photos while decoding (fast)
        im = im.convert("RGB")
        if im.size != (SIZE, SIZE):
            im = im.resize((SIZE, SIZE), Image.BILINEAR)
        return np.asarray(im).transpose(2, 0, 1)


def _decode_chunk(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decode a chunk: ((n, 3, 32, 32) uint8, (n,) bool readable). Unreadable files are left as zeros."""
    out = np.zeros((len(paths), 3, SIZE, SIZE), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    blobs: list[bytes | None] = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                blobs.append(f.read())
        except OSError:
            blobs.append(None)
    # Fast path: small JPEGs in one torchvision call (pixel-identical to PIL's libjpeg, ~4x faster than one PIL
    # call per image, which matters for 60,000 CIFAR-sized files). Anything it cannot do falls back to PIL.
    fast = [i for i, (p, b) in enumerate(zip(paths, blobs))
            if b is not None and len(b) <= FAST_JPEG_BYTES and p.lower().endswith((".jpg", ".jpeg"))]
    if fast:
        try:
            from torchvision.io import (  # deferred: seconds to import; decoding only
                ImageReadMode,
                decode_jpeg,
            )

            tensors = decode_jpeg([torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8) for i in fast],
                                  mode=ImageReadMode.RGB)
            for i, t in zip(fast, tensors):
                if tuple(t.shape) == (3, SIZE, SIZE):
                    out[i], ok[i] = t.numpy(), True
        except Exception:  # one bad file fails the whole batch; PIL below sorts out which ones
            pass
    for i, b in enumerate(blobs):
        if ok[i] or b is None:
            continue
        with contextlib.suppress(Exception):  # any file PIL cannot decode is skipped and counted, never a crash
            out[i], ok[i] = _decode_pil(b), True
    return out, ok


def _decode_all(paths: list[str], progress: Progress | None) -> tuple[torch.Tensor, torch.Tensor]:
    chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
    images = np.zeros((len(paths), 3, SIZE, SIZE), dtype=np.uint8)  # (N, 3, 32, 32)
    ok = np.zeros(len(paths), dtype=bool)
    done = 0
    if progress:
        progress(0, len(paths))
    # Threads: file reads and the torchvision decoder release the GIL; workers return plain arrays
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for k, (chunk_images, chunk_ok) in enumerate(pool.map(_decode_chunk, chunks)):
            images[k * CHUNK:k * CHUNK + len(chunk_ok)] = chunk_images
            ok[k * CHUNK:k * CHUNK + len(chunk_ok)] = chunk_ok
            done += len(chunk_ok)
            if progress:
                progress(done, len(paths))
    return torch.from_numpy(images), torch.from_numpy(ok)


def _cache_paths(path: Path, root: Path) -> list[Path]:
    """Next to the images first; a per-folder file under the data root when the folder is read-only."""
    key = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    return [path / CACHE_NAME, root / "folder-cache" / f"{key}.pt"]


def load_folder(folder: str | Path, root: Path, progress: Progress | None = None) -> Dataset:
    """The dataset in `folder` (see module docstring); `root` is the data root for the fallback cache."""
    path = Path(folder).expanduser().resolve()
    name = f"folder:{path}"
    try:
        listing = _scan(path)
    except OSError as e:  # e.g. a class folder without read permission
        raise DataError(f"cannot read the image folder {path} ({e}): check its permissions") from None
    return memoized(("folder", str(path), listing.signature), lambda: _build(path, name, root, listing, progress))


def _build(path: Path, name: str, root: Path, listing: Listing, progress: Progress | None) -> Dataset:
    classes, signature = listing.classes, listing.signature
    caches = _cache_paths(path, root)
    for cache in caches:
        ds = load_cache(cache, name, signature)
        if ds is not None:
            return ds
    images, ok = _decode_all(listing.paths, progress)
    labels = torch.tensor(listing.labels, dtype=torch.int64)
    is_train = torch.tensor(listing.train, dtype=torch.bool)
    for split, mask in (("train", is_train), ("test", ~is_train)):
        counts = torch.bincount(labels[mask & ok], minlength=len(classes))
        if (counts == 0).any():
            bad = classes[int(torch.nonzero(counts == 0)[0])]
            raise DataError(f"class {bad!r} has no readable {split} images: every file in {path / split / bad} "
                            "failed to decode; replace them with valid images")
    train, test = is_train & ok, ~is_train & ok
    train_x = images[train].contiguous()
    mean, std = channel_stats(train_x)
    ds = Dataset(name, train_x, labels[train], images[test].contiguous(), labels[test], tuple(classes), mean, std,
                 skipped=int((~ok).sum()))
    for cache in caches:
        if save_cache(cache, ds, signature):
            break
    return ds


def folder_status(folder: str | Path, root: Path) -> DatasetStatus:
    """Cheap layout check (class folders only; files are looked at on load)."""
    path = Path(folder).expanduser().resolve()
    try:
        classes = _check_layout(path)
    except (DataError, OSError) as e:
        return DatasetStatus(False, str(e), str(path))
    cached = any(p.exists() for p in _cache_paths(path, root))
    more = "decoded cache present" if cached else "images are decoded on the first load"
    return DatasetStatus(True, f"{len(classes)} classes in {path} ({more})", str(path))


class FolderSummary(NamedTuple):
    """What a folder dataset holds, from its listing alone (no image is decoded)."""

    path: str
    classes: list[str]
    train_images: int
    test_images: int


def _stamp(path: Path) -> tuple:
    """The modification times of train/, test/ and every folder in them: adding, removing or renaming an image
    changes its folder's time, so an equal stamp means the same listing (about 20 stat calls for CIFAR-10, where
    listing its files takes a second). Editing an image in place leaves the stamp but changes no count."""
    stamp = []
    for split in ("train", "test"):
        stamp.append((split, "", (path / split).stat().st_mtime_ns))
        stamp += [(split, e.name, e.stat().st_mtime_ns) for e in os.scandir(path / split) if e.is_dir()]
    return tuple(sorted(stamp))


def folder_summary(folder: str | Path) -> FolderSummary:
    """Class names and images per split of a folder dataset; DataError (what is wrong, what is expected) when
    its layout is not a dataset's. Lists every file (about a second for 60,000 images), decodes none; a folder
    whose stamp (_stamp) has not changed since it was last listed is not listed again."""
    path = Path(folder).expanduser().resolve()
    try:
        stamp = _stamp(path)
    except OSError:  # not a dataset's layout: _scan says what is wrong
        return _summarize(path)
    return _summary_at(path, stamp)


@functools.lru_cache(maxsize=16)
def _summary_at(path: Path, stamp: tuple) -> FolderSummary:
    """The folder's summary as of `stamp`: listed once (errors are raised, not kept)."""
    return _summarize(path)


def _summarize(path: Path) -> FolderSummary:
    try:
        listing = _scan(path)
    except OSError as e:
        raise _layout(path, f"{path} cannot be read ({e.strerror})") from None
    train = sum(listing.train)
    return FolderSummary(str(path), listing.classes, train, len(listing.train) - train)
