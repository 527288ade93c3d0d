"""The GPU benchmark: full CIFAR-100-shaped epochs of the lab's engine, in one short run (scripts/gpu_bench.py).

Data: 50,000 + 10,000 random 32×32 uint8 images, 100 classes (speed does not depend on the pixels; accuracy is
meaningless on them). Every item goes through core.train.engine.train unchanged, with the preset's settings (flip +
crop on the device, bf16 autocast, channels-last, log_every, eval batch), and is timed from the run's events:

  base, wide, resnet18   2 epochs; epoch 2 is the steady epoch (training + evaluation of the 10,000 test
                         images), epoch 1 includes the one-off costs (cuDNN autotune, first allocations).
  resnet18_224           ImageNet ResNet18 (random weights) fine-tuned at 224×224: a fraction of an epoch after
                         10 warm-up steps, extrapolated to 50,000 images + a 10,000-image evaluation (says so).
  lr_finder              LRFinder.from_config on best-scratch, 100 steps (no early stop).
  best_scratch           the best-scratch preset (its 40 epochs) for a wall-time budget: epochs/s and the projected
                         full-run time; `--best-scratch` runs all its epochs (or until its budget).
  base_compile           the base CNN with torch.compile (optional, last: its warm-up takes tens of seconds).

Each item is independent: a failure prints its error and the run goes on. Results are printed as a table and
written (after every item, so a cut-off run keeps what it measured) to $OUT/gpu_bench.json, else
./bench-results/gpu_bench.json. The same functions run on the CPU with tiny sizes (tests/bench/test_bench.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from bench import common as bench
from core.config import TrainConfig
from core.data.dataset import Dataset
from core.lessons.presets import FLIP_CROP, preset_config
from core.train import setup
from core.train.lr_finder import LRFinder
from core.train.schedule import steps_per_epoch

CIFAR_TRAIN, CIFAR_TEST, CIFAR_CLASSES = 50_000, 10_000, 100
ITEMS = ("base", "wide", "resnet18", "resnet18_224", "lr_finder", "best_scratch", "base_compile")


@dataclass(frozen=True)
class Sizes:
    """How much of each item to run. `full()` fits ~3 minutes on one H100; `quick()` ~30 s; `tiny()` seconds
    on a CPU (tests)."""

    n_train: int = CIFAR_TRAIN
    n_test: int = CIFAR_TEST
    epochs: int = 2  # base/wide/resnet18: epoch 1 warms up, the last one is the steady epoch
    warmup_steps: int = 10  # not timed (resnet18_224, best_scratch)
    r224_fraction: float = 0.4  # of an epoch, for ResNet18 at 224
    r224_image_size: int = 224
    lr_steps: int = 100
    best_budget_s: float = 60.0  # long enough for all its epochs if the 2-minute target holds with room
    batch_size: int | None = None  # None = each preset's
    log_every: int | None = None  # None = each preset's (the app's default)

    @classmethod
    def full(cls) -> Sizes:
        return cls()

    @classmethod
    def quick(cls) -> Sizes:
        return cls(n_train=10_000, n_test=2_000, epochs=2, r224_fraction=0.3, lr_steps=20, best_budget_s=5.0)

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(n_train=48, n_test=16, epochs=2, warmup_steps=1, r224_fraction=0.5, r224_image_size=32,
                   lr_steps=3, best_budget_s=0.5, batch_size=8, log_every=1)


def _cfg(base: TrainConfig, sizes: Sizes, device: str, **overrides: Any) -> TrainConfig:
    cfg = bench.bench_config(base, device=device, **overrides)
    if sizes.batch_size:
        cfg = replace(cfg, batch_size=sizes.batch_size)
    if sizes.log_every:
        cfg = replace(cfg, log_every=sizes.log_every)
    return cfg


def _warmup(sizes: Sizes, cfg: TrainConfig) -> int:
    """Warm-up steps rounded up to a multiple of log_every (time_engine reads the clock at Step events)."""
    return max(1, math.ceil(sizes.warmup_steps / cfg.log_every)) * cfg.log_every


def _model_row(label: str, cfg: TrainConfig, ds: Dataset, t: bench.EngineTiming, peak: float | None,
               **extra: Any) -> dict[str, Any]:
    macs = bench.config_macs(cfg, ds.num_classes)
    last = t.epochs[-1] if t.epochs else {}
    ips = last.get("images_per_s") or t.images_per_s
    row = dict(label=label, model=cfg.model.name, batch=cfg.batch_size, compile=cfg.compile, status=t.status,
               forward_macs=macs, train_gflop_per_image=bench.train_flops_per_image(macs) / 1e9,
               setup_s=t.setup_seconds, epochs=t.epochs, train_images_per_s=ips,
               epoch_s=last.get("seconds"), first_epoch_s=t.epochs[0]["seconds"] if t.epochs else None,
               eval_s=(last["seconds"] - len(ds.train_x) / last["images_per_s"]) if last.get("images_per_s")
               else t.eval_seconds, notes=t.notes, **extra)
    row["achieved_tflops"] = ips * bench.train_flops_per_image(macs) / 1e12
    if peak:
        row["bf16_matmul_fraction"] = row["achieved_tflops"] * 1e3 / peak
    return row


def item_epochs(base: TrainConfig, label: str, ds: Dataset, sizes: Sizes, device: str,
                peak: float | None, **overrides: Any) -> dict[str, Any]:
    """`sizes.epochs` full epochs of `base` on ds; the last one is the steady epoch."""
    cfg = _cfg(base, sizes, device, epochs=sizes.epochs, **overrides)
    t = bench.time_engine(cfg, ds, warmup_steps=cfg.log_every, steps=None)
    return _model_row(label, cfg, ds, t, peak)


def item_resnet18_224(ds: Dataset, sizes: Sizes, device: str, peak: float | None) -> dict[str, Any]:
    """ImageNet ResNet18 (random weights: nothing downloaded) at 224: a fraction of an epoch, extrapolated."""
    base = preset_config("resnet18-pretrained-aug")
    base = replace(base, model=replace(base.model, options={**base.model.options, "weights": None,
                                                            "image_size": sizes.r224_image_size}))
    n_train = max(1, int(len(ds.train_x) * sizes.r224_fraction))
    n_test = max(1, int(len(ds.test_x) * sizes.r224_fraction))
    # the first n of each split (labels are already shuffled): a stratified subset would need >= 100 images
    part = dataclasses.replace(ds, train_x=ds.train_x[:n_train], train_y=ds.train_y[:n_train],
                               test_x=ds.test_x[:n_test], test_y=ds.test_y[:n_test])
    cfg = _cfg(base, sizes, device, epochs=1)
    spe = steps_per_epoch(n_train, cfg.batch_size)
    le = cfg.log_every
    warm = min(_warmup(sizes, cfg), max(le, (spe // 2) // le * le))  # leave at least half the steps to time
    t = bench.time_engine(cfg, part, warmup_steps=warm, steps=None)
    row = _model_row(f"ResNet18 @{sizes.r224_image_size} fine-tune (projected)", cfg, part, t, peak,
                     fraction=sizes.r224_fraction, measured_train_images=len(part.train_x),
                     measured_test_images=len(part.test_x))
    ips = t.images_per_s  # steady: after the warm-up steps
    eval_s = t.eval_seconds or 0.0
    row["train_images_per_s"] = ips
    row["achieved_tflops"] = ips * row["train_gflop_per_image"] / 1e3
    if peak:
        row["bf16_matmul_fraction"] = row["achieved_tflops"] * 1e3 / peak
    row["measured_s"], row["first_epoch_s"] = t.total_seconds, None
    row["epoch_s"] = (len(ds.train_x) / ips + eval_s * len(ds.test_x) / len(part.test_x)) if ips else None
    row["eval_s"] = eval_s * len(ds.test_x) / len(part.test_x)
    return row


def item_lr_finder(ds: Dataset, sizes: Sizes, device: str) -> dict[str, Any]:
    """core.train.lr_finder on the best-scratch preset: from_config (model, optimizer, data on the device), then
    `lr_steps` steps with the early stop switched off, so exactly that many steps are timed."""
    cfg = _cfg(preset_config("best-scratch"), sizes, device)
    dev = setup.resolve_device(device)
    bench.sync(dev)
    t0 = time.perf_counter()
    finder = LRFinder.from_config(cfg, ds, num_iter=sizes.lr_steps, diverge_factor=None)
    bench.sync(dev)
    t1 = time.perf_counter()
    try:
        finder.run()
    finally:
        finder.close()
    bench.sync(dev)
    t2 = time.perf_counter()
    steps = len(finder.points)
    return dict(label=f"LR finder best-scratch, {sizes.lr_steps} steps", model=cfg.model.name, batch=cfg.batch_size,
                setup_s=t1 - t0, run_s=t2 - t1, steps=steps, ms_per_step=1e3 * (t2 - t1) / max(1, steps),
                stop_reason=finder.stop_reason, epoch_s=None)


def item_best_scratch(ds: Dataset, sizes: Sizes, device: str, peak: float | None,
                      budget_s: float | None = None) -> dict[str, Any]:
    """The best-scratch preset as configured (40 epochs, one-cycle over all of them) until its wall budget:
    epochs/s and the projected time of all epochs (setup + first epoch + the rest at the steady pace)."""
    budget = sizes.best_budget_s if budget_s is None else budget_s
    cfg = _cfg(preset_config("best-scratch"), sizes, device)
    t = bench.time_engine(cfg, ds, warmup_steps=cfg.log_every, steps=None, stop_after_s=budget)
    row = _model_row(f"best-scratch ({cfg.epochs} epochs planned, {budget:g} s budget)", cfg, ds, t, peak)
    done = len(t.epochs)
    steady = [e["seconds"] for e in t.epochs[1:]] or [e["seconds"] for e in t.epochs]
    pace = bench.median(steady) if steady else None
    first_end = t.epochs[0]["at_s"] if t.epochs else None
    row.update(epochs_done=done, epochs_planned=cfg.epochs, budget_s=budget, wall_s=t.total_seconds,
               epochs_per_s=(1.0 / pace) if pace else None,
               completed=t.status == "completed",
               projected_total_s=(t.epochs[-1]["at_s"] if t.status == "completed" else
                                  (first_end + (cfg.epochs - 1) * pace) if pace and first_end else None))
    return row


# --- the run -------------------------------------------------------------------------------------------------

def run(items: tuple[str, ...] = ITEMS, sizes: Sizes | None = None, device: str = "auto",
        out_path: Path | None = None, best_budget_s: float | None = None,
        progress: bench.Progress | None = bench.say) -> dict[str, Any]:
    """Run the items in order; one failing item is reported and skipped. Returns (and writes) the report."""
    say = progress or (lambda _line: None)
    sizes = sizes or Sizes.full()
    dev = setup.resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    t_start = time.perf_counter()
    report: dict[str, Any] = {"machine": bench.machine_info(dev), "device": str(dev), "sizes": sizes.__dict__,
                              "items": {}, "errors": {}}
    say(f"machine: {bench.describe_machine(report['machine'])}")
    peak = None
    try:
        n = 4096 if dev.type == "cuda" else 256
        report["matmul_tflops"] = {k: bench.matmul_gflops(dev, dt, n=n, seconds=0.3) / 1e3
                                   for k, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
        peak = report["matmul_tflops"]["bf16"] * 1e3
        say("matmul: " + ", ".join(f"{k} {v:,.1f} TFLOP/s" for k, v in report["matmul_tflops"].items()))
    except Exception as e:  # noqa: BLE001 - the yardstick is optional
        report["errors"]["matmul"] = f"{type(e).__name__}: {e}"
    ds = bench.synthetic_dataset(sizes.n_train, sizes.n_test, CIFAR_CLASSES, seed=0, name="cifar100-shaped")
    wide = preset_config("cnn-bn")
    wide = replace(wide, data=replace(wide.data, augment=FLIP_CROP))
    table: dict[str, Callable[[], dict[str, Any]]] = {
        "base": lambda: item_epochs(preset_config("cnn-flip-crop"), "base CNN", ds, sizes, device, peak),
        "wide": lambda: item_epochs(wide, "128/128/128/256+BN CNN", ds, sizes, device, peak),
        "resnet18": lambda: item_epochs(preset_config("resnet18-scratch"), "ResNet18 @32", ds, sizes, device, peak),
        "resnet18_224": lambda: item_resnet18_224(ds, sizes, device, peak),
        "lr_finder": lambda: item_lr_finder(ds, sizes, device),
        "best_scratch": lambda: item_best_scratch(ds, sizes, device, peak, best_budget_s),
        "base_compile": lambda: item_epochs(preset_config("cnn-flip-crop"), "base CNN + torch.compile", ds, sizes,
                                            device, peak, compile=True),
    }
    for name in items:
        if name not in table:
            report["errors"][name] = f"unknown item; known: {', '.join(ITEMS)}"
            continue
        say(f"[{time.perf_counter() - t_start:6.1f} s] {name} ...")
        t0 = time.perf_counter()
        try:
            row = table[name]()
            row["item_wall_s"] = time.perf_counter() - t0
            report["items"][name] = row
            say(f"[{time.perf_counter() - t_start:6.1f} s] {summary_line(name, row)}")
        except Exception as e:  # noqa: BLE001 - one broken item must not cost the others
            report["errors"][name] = f"{type(e).__name__}: {e}"
            say(f"  {name} FAILED: {type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}")
        finally:
            gc.collect()
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        report["wall_s"] = time.perf_counter() - t_start
        if out_path is not None:
            write_json(report, out_path)
    return report


def summary_line(name: str, row: dict[str, Any]) -> str:
    if name == "lr_finder":
        return (f"{row['label']}: {row['steps']} steps in {row['run_s']:.2f} s ({row['ms_per_step']:.1f} ms/step), "
                f"setup {row['setup_s']:.2f} s")
    parts = [f"{row['label']}:"]
    if row.get("epoch_s") is not None:
        parts.append(f"epoch {row['epoch_s']:.2f} s")
    if row.get("train_images_per_s"):
        parts.append(f"train {row['train_images_per_s']:,.0f} img/s")
    if row.get("eval_s") is not None:
        parts.append(f"eval {row['eval_s']:.2f} s")
    if row.get("first_epoch_s") is not None and name not in ("resnet18_224",):
        parts.append(f"first epoch {row['first_epoch_s']:.2f} s")
    if row.get("achieved_tflops"):
        parts.append(f"{row['achieved_tflops']:.1f} TFLOP/s")
    if name == "best_scratch":
        parts.append(f"{row['epochs_done']}/{row['epochs_planned']} epochs in {row['wall_s']:.1f} s, projected "
                     f"{row['epochs_planned']} epochs: {_s(row.get('projected_total_s'))}")
    if row.get("status") not in (None, "completed", "timed", "stopped"):
        parts.append(f"status {row['status']}")
    return " ".join(parts)


def _s(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} s"


def format_table(report: dict[str, Any]) -> str:
    lines = [f"machine: {bench.describe_machine(report['machine'])}"]
    if "matmul_tflops" in report:
        lines.append("measured matmul: " + ", ".join(f"{k} {v:,.1f} TFLOP/s" for k, v in report["matmul_tflops"].items()))
    lines.append(f"{'item':46s} {'epoch s':>9s} {'train img/s':>12s} {'eval s':>8s} {'1st epoch s':>12s} "
                 f"{'TFLOP/s':>8s} {'% bf16 mm':>9s}")
    for name, row in report["items"].items():
        if name == "lr_finder":
            lines.append(f"{row['label']:46s} {row['ms_per_step']:9.1f} ms/step, {row['steps']} steps, setup "
                         f"{row['setup_s']:.1f} s")
            continue
        frac = row.get("bf16_matmul_fraction")
        lines.append(f"{row['label'][:46]:46s} {_num(row.get('epoch_s'), 9, 2)} "
                     f"{_num(row.get('train_images_per_s'), 12, 0)} {_num(row.get('eval_s'), 8, 2)} "
                     f"{_num(row.get('first_epoch_s'), 12, 2)} {_num(row.get('achieved_tflops'), 8, 1)} "
                     f"{(f'{frac:.0%}' if frac else '—'):>9s}")
        if name == "best_scratch":
            lines.append(f"{'':46s} {row['epochs_done']}/{row['epochs_planned']} epochs in {row['wall_s']:.1f} s; "
                         f"projected {row['epochs_planned']} epochs: {_s(row.get('projected_total_s'))}")
    for name, err in report["errors"].items():
        lines.append(f"{name}: FAILED {err}")
    lines.append(f"total wall time {report.get('wall_s', 0):.1f} s")
    return "\n".join(lines)


def _num(v: float | None, width: int, digits: int) -> str:
    return f"{'—':>{width}s}" if v is None else f"{v:>{width},.{digits}f}"


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(path)


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu_bench.json" if out else Path("bench-results") / "gpu_bench.json"


# --- command line (scripts/gpu_bench.py and `python -m core bench --gpu`) ---------------------------------------

def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="a ~30-second smoke run (smaller data, fewer steps)")
    p.add_argument("--tiny", action="store_true", help="seconds, any device: checks that every item works")
    p.add_argument("--best-scratch", action="store_true",
                   help="only the best-scratch preset: all its epochs, or until --budget seconds")
    p.add_argument("--budget", type=float, default=None, metavar="S",
                   help="best-scratch wall-time budget, seconds (default 60; 150 with --best-scratch)")
    p.add_argument("--items", default=None, metavar="A,B", help=f"which items, in order (default all: {','.join(ITEMS)})")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile item")
    p.add_argument("--device", default="auto", help="auto | cuda | cuda:N | cpu (default auto)")
    p.add_argument("--out", default=None, metavar="FILE", help="JSON path (default $OUT/gpu_bench.json, else "
                                                                "./bench-results/gpu_bench.json)")


def main_from_args(args: argparse.Namespace) -> int:
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuda available: {torch.cuda.is_available()}"
          + (f", device {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""), flush=True)
    sizes = Sizes.tiny() if args.tiny else Sizes.quick() if args.quick else Sizes.full()
    if args.best_scratch:
        items: tuple[str, ...] = ("best_scratch",)
        budget = 150.0 if args.budget is None else args.budget
    else:
        items = tuple(s.strip() for s in args.items.split(",")) if args.items else ITEMS
        if args.no_compile or args.quick:
            items = tuple(i for i in items if i != "base_compile")
        budget = args.budget
    out = Path(args.out) if args.out else default_out()
    report = run(items, sizes, args.device, out, best_budget_s=budget, progress=lambda s: print(s, flush=True))
    print()
    print(format_table(report))
    print(f"JSON: {out}")
    return 1 if report["errors"] and not report["items"] else 0
