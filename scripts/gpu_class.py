"""A class on one GPU: CUDA graphs, 8 packed runs vs one, every preset on CIFAR-10, best-scratch vs airbench94.
What is measured and how: bench/gpu_class.py. JSON + log in $OUT (else ./bench-results).

    # on the GPU machine (~10 minutes on one H200), CIFAR-10's JPEG tarball carried in .gpu-data/:
    PYTHONUNBUFFERED=1 python3 scripts/gpu_class.py --tar .gpu-data/cifar10-jpeg.tar.gz \
        --mobilenet-weights .gpu-data/mobilenet_v2_imagenet_features.pth
    python3 scripts/gpu_class.py --folder /work/cifar10 --items graphs,airbench   # some items, a local folder
    python3 scripts/gpu_class.py --tensors cifar10.pt --items graphs              # in-process items only
    python3 scripts/gpu_class.py --tiny --device cpu                              # ~a minute on a CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: `core` is next to scripts/

from bench import gpu_class  # noqa: E402 - after the path is set
from bench.cifar_tensors import load_tensors  # noqa: E402
from core.data.loading import load_dataset  # noqa: E402
from core.runs.packing import MAX_PER_DEVICE_ENV  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_class.py", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="synthetic data, tiny models: checks the script in a minute")
    p.add_argument("--items", default=",".join(gpu_class.ITEMS), help=f"comma-separated, of {gpu_class.ITEMS}")
    p.add_argument("--folder", help="CIFAR-10 as an image folder (train/<class>/*, test/<class>/*)")
    p.add_argument("--tar", help="CIFAR-10's JPEG tarball (../shared/data/cifar10-jpeg.tar.gz): extracted to /tmp")
    p.add_argument("--tensors", help="a tensor file from scripts/cifar_tensors.py, for the in-process items")
    p.add_argument("--mobilenet-weights", help="MobileNetV2 ImageNet features (.pth) for mobilenet-pretrained")
    p.add_argument("--report-epochs", type=int, help="cap every preset's epochs in the report item (default: theirs)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=os.environ.get("OUT") or "bench-results")
    args = p.parse_args(argv)
    items = [i.strip() for i in args.items.split(",") if i.strip()]
    unknown = sorted(set(items) - set(gpu_class.ITEMS))
    if unknown:
        p.error(f"unknown item(s) {', '.join(unknown)}: choose from {', '.join(gpu_class.ITEMS)}")
    os.environ.setdefault("OMP_NUM_THREADS", "2")  # up to 16 trainer processes share the machine's cores
    data_root = tempfile.mkdtemp(prefix="gpu-class-data-")  # the folder loader's decode cache, shared by trainers
    if args.tiny:
        sizes, queue_dataset = gpu_class.Sizes.tiny_sizes(), "synthetic"
        os.environ.setdefault(MAX_PER_DEVICE_ENV, "2")  # a CPU defaults to one run at a time: pack two
    else:
        sizes = dataclasses.replace(gpu_class.Sizes.full(), report_epochs=args.report_epochs)
        folder = args.folder
        if args.tar:
            folder = tempfile.mkdtemp(prefix="cifar10-jpeg-")
            with tarfile.open(args.tar) as tar:
                tar.extractall(folder, filter="data")
        if folder is None:
            p.error("give the data: --folder PATH or --tar FILE (or --tiny)")
        queue_dataset = "folder:" + str(Path(folder).resolve())
    if args.tensors:
        ds = load_tensors(args.tensors)
    else:
        ds = load_dataset(queue_dataset, data_root)
    gpu_class.run_all(items, ds, queue_dataset, sizes, args.device, Path(args.out), data_root,
                      mobilenet_weights=str(Path(args.mobilenet_weights).resolve()) if args.mobilenet_weights else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
