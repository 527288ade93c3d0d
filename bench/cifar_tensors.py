"""Convert an image-folder dataset (CIFAR-10's JPEG copy: `folder:/work/cifar10`) into one tensor file, and read
it back as a core Dataset.

    python3 scripts/cifar_tensors.py folder:/work/cifar10 cifar10.pt     # ~176 MiB of uint8 for 60,000 images
    python3 scripts/cifar_tensors.py /tmp/cifar10 /tmp/cifar10.pt        # "folder:" may be left out

The file holds train_x (N, 3, 32, 32) uint8, train_y (N,) int64, test_x, test_y, classes and the name of the
source, decoded by core's own folder loader (so the pixels are exactly what `folder:PATH` trains on). The GPU
script (scripts/gpu_class.py) reads it with `load_tensors`, skipping the JPEG decode. CIFAR-10 does not
compress (a .pt is 176 MiB; the JPEG tarball is 19.6 MB), so what travels to a GPU machine within its 64 MiB
limit is the tarball, converted there in seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from core.data.dataset import Dataset, channel_stats
from core.data.loading import FOLDER_PREFIX, load_dataset
from core.errors import DataError

FORMAT = "cifar-lab-tensors/1"


def convert(source: str, out: str | Path, data_root: str | Path | None = None) -> Dataset:
    """Decode `source` (folder:PATH or a folder's path) with core's loader and save it to `out`; returns it."""
    name = source if source.startswith(FOLDER_PREFIX) else FOLDER_PREFIX + str(Path(source).resolve())
    with tempfile.TemporaryDirectory() as scratch:  # the loader's decode cache goes here unless a root is given
        ds = load_dataset(name, data_root or scratch)
    torch.save({"format": FORMAT, "source": name, "classes": list(ds.classes), "train_x": ds.train_x,
                "train_y": ds.train_y, "test_x": ds.test_x, "test_y": ds.test_y}, out)
    return ds


def load_tensors(path: str | Path) -> Dataset:
    """The Dataset saved by `convert` (DataError when the file is not one)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as e:
        raise DataError(f"cannot read the tensor file {path}: {e}; make it with scripts/cifar_tensors.py") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path} is not a tensor file written by scripts/cifar_tensors.py (format {FORMAT})")
    mean, std = channel_stats(data["train_x"])
    return Dataset(name=data["source"], train_x=data["train_x"], train_y=data["train_y"], test_x=data["test_x"],
                   test_y=data["test_y"], classes=tuple(data["classes"]), mean=mean, std=std)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cifar_tensors.py", description=__doc__.splitlines()[0])
    p.add_argument("source", help="folder:PATH (or PATH) laid out as PATH/train/<class>/*, PATH/test/<class>/*")
    p.add_argument("out", help="the .pt file to write")
    args = p.parse_args(argv)
    try:
        ds = convert(args.source, args.out)
    except DataError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    size = Path(args.out).stat().st_size / 2**20
    sys.stdout.write(f"wrote {args.out}: {len(ds.train_x)} training + {len(ds.test_x)} test images, "
                     f"{ds.num_classes} classes, {size:.0f} MiB\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())  # python -m bench.cifar_tensors
