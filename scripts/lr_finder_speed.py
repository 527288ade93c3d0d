"""How fast is the lab's LR range test against torch-lr-finder's? Same model, data, batch and schedule, each tool
at its defaults: the `cnn` preset (32/32/32/64 + FC 4096), batch 128, Adam, 1e-7 -> 10 exponentially over 100
steps, on the first --subset training images.

    pip install torch-lr-finder==0.2.2          # requirements-bench.txt (not needed by the app or the tests)
    nice -n 10 python3 scripts/lr_finder_speed.py --data folder:/work/cifar10 --subset 5000 --reps 3

Arms, alternating, each timed from "build the model" to "the model is restored" (the decoded images are shared):
- torch-lr-finder 0.2.2: a torchvision-style Dataset (PIL image -> ToTensor -> Normalize) in a DataLoader
  (shuffle, its default 0 workers), `LRFinder(model, optimizer, criterion).range_test(loader, end_lr=10,
  num_iter=100)`, then `reset()`; fp32 (its default: no amp backend).
- the lab, fp32: core.train.lr_finder.LRFinder.from_config(...).run() with CIFAR_LAB_CPU_BF16=0.
- the lab at its default: the same, with bf16 autocast where the CPU has it natively (the engine's default).
Both tools stop early when the loss blows up (torch-lr-finder at 5x its best, the lab at 4x); so that both do
the same work, --no-early-stop (the default here) turns both stops off and every arm runs all 100 steps. Prints
the median seconds and steps per arm and the lab's speed-up (seconds per step); --json for the whole record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bench.common import cpu_bf16, describe_machine, machine_info  # noqa: E402
from bench.cpu import StudentCIFAR  # noqa: E402
from core.data.dataset import Dataset, stratified_subset  # noqa: E402
from core.data.loading import load_dataset  # noqa: E402
from core.lessons.presets import preset_config  # noqa: E402
from core.models.catalog import build_for_config  # noqa: E402
from core.train.lr_finder import LRFinder  # noqa: E402
from core.train.setup import cpu_has_native_bf16  # noqa: E402

START_LR, END_LR, NUM_ITER, BATCH = 1e-7, 10.0, 100, 128


def time_torch_lr_finder(config, ds: Dataset, early_stop: bool) -> tuple[float, int]:
    """Seconds and steps of torch-lr-finder's range test, a student's data pipeline included."""
    from torch_lr_finder import LRFinder as TorchLRFinder  # the optional benchmark extra

    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    model = build_for_config(config, ds.num_classes, load_pretrained=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=START_LR)
    hwc = np.ascontiguousarray(ds.train_x.permute(0, 2, 3, 1).numpy())
    data = StudentCIFAR(hwc, ds.train_y.tolist(), T.Compose([T.ToTensor(), T.Normalize(ds.mean, ds.std)]))
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    finder = TorchLRFinder(model, optimizer, torch.nn.CrossEntropyLoss(), device="cpu")
    finder.range_test(loader, end_lr=END_LR, num_iter=NUM_ITER, step_mode="exp",
                      diverge_th=5 if early_stop else float("inf"))
    steps = len(finder.history["lr"])
    finder.reset()
    return time.perf_counter() - t0, steps


def time_lab(config, ds: Dataset, bf16: bool, early_stop: bool) -> tuple[float, int]:
    """Seconds and steps of the lab's range test (core.train.lr_finder), set-up and restore included."""
    with cpu_bf16(bf16):
        t0 = time.perf_counter()
        finder = LRFinder.from_config(config, ds, start_lr=START_LR, end_lr=END_LR, num_iter=NUM_ITER,
                                      diverge_factor=4.0 if early_stop else None)
        points = finder.run()
        return time.perf_counter() - t0, len(points)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="synthetic", help="synthetic | cifar10 | cifar100 | folder:PATH")
    p.add_argument("--subset", type=int, default=5000, help="training images used (default 5000)")
    p.add_argument("--reps", type=int, default=3, help="alternating repetitions per arm (default 3)")
    p.add_argument("--early-stop", action="store_true", help="keep each tool's divergence stop (steps differ)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    full = load_dataset(args.data)
    ds = stratified_subset(full, args.subset, 100, seed=0)
    config = replace(preset_config("cnn"), batch_size=BATCH, device="cpu")
    config = replace(config, data=replace(config.data, subset=None, test_subset=None))
    arms = {"torch-lr-finder 0.2.2 (fp32)": lambda: time_torch_lr_finder(config, ds, args.early_stop),
            "lab, fp32": lambda: time_lab(config, ds, False, args.early_stop)}
    if cpu_has_native_bf16():
        arms["lab, default (bf16 on this CPU)"] = lambda: time_lab(config, ds, True, args.early_stop)
    runs: dict[str, list[tuple[float, int]]] = {k: [] for k in arms}
    names = list(arms)
    for rep in range(args.reps):
        for name in (names if rep % 2 == 0 else names[::-1]):  # alternate: a busy neighbour slows all alike
            runs[name].append(arms[name]())
            print(f"  {name}: {runs[name][-1][0]:.1f} s, {runs[name][-1][1]} steps", file=sys.stderr)
    base_name = names[0]
    per_step = {k: statistics.median(s / max(1, n) for s, n in v) for k, v in runs.items()}
    record = {"machine": machine_info(), "data": args.data, "subset": len(ds.train_x), "batch": BATCH,
              "schedule": f"{START_LR:g} -> {END_LR:g}, exp, {NUM_ITER} steps", "early_stop": args.early_stop,
              "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
              "arms": {k: {"seconds": statistics.median(s for s, _ in v), "steps": [n for _, n in v],
                           "seconds_per_step": per_step[k], "speedup": per_step[base_name] / per_step[k]}
                       for k, v in runs.items()}}
    if args.json:
        print(json.dumps(record, indent=1))
        return 0
    print(f"machine: {describe_machine(record['machine'])}")
    print(f"{args.data}, {record['subset']} images, batch {BATCH}, {record['schedule']}, "
          f"early stop {'on' if args.early_stop else 'off'}; medians of {args.reps}")
    for k, a in record["arms"].items():
        print(f"{k:34s} {a['seconds']:6.1f} s  {a['seconds_per_step'] * 1000:6.0f} ms/step  "
              f"{a['speedup']:.2f}× torch-lr-finder")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
