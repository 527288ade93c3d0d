"""A class on one GPU, measured in one short run (scripts/gpu_class.py): CUDA graphs, a packed device, the whole
report on real CIFAR-10, and best-scratch beside airbench94.

  graphs    the report's base CNN (preset `cnn`, batch 256) on CIFAR-10: epoch seconds eager vs graphed
            (config.cuda_graphs off / on), in this process through core.train.engine.train; the best epoch
            after the first (which holds the capture and cuDNN's autotuning) is reported.
  packed    8 base-CNN runs submitted at once to a fresh run library vs one run alone: wall time from the first
            submit to the last finish, with the queue's default packing (CIFAR_LAB_MAX_PER_DEVICE unset: by memory
            on CUDA), the most runs seen training at once, each run's own seconds.
  report    every preset submitted at once (packed), on CIFAR-10: per preset status, test accuracy, the report's
            number (CIFAR-100, for reference), wall seconds, training images/s; the total wall time.
  airbench  best-scratch in this process, test accuracy after every epoch against elapsed seconds, beside
            airbench94's published 94.01% in 3.83 s on an A100, and that time scaled to the chip (see `scaled`).

Data: CIFAR-10's JPEG copy as an image folder (`--folder`, what queued trainer processes load by name), or a tensor
file from scripts/cifar_tensors.py (`--tensors`) for the in-process items; `--tiny` uses the synthetic set and
tiny models so the whole script runs on a CPU in about a minute. Results go to OUT/gpu_class.json after every item
(a cut-off run keeps what it measured) and the log to OUT/gpu_class.log, OUT = $OUT or ./bench-results.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from core.config import TrainConfig, apply_overrides
from core.data.dataset import Dataset
from core.lessons.presets import PRESETS, get_preset, preset_config
from core.runs.library import open_library
from core.train import engine

ITEMS = ("graphs", "airbench", "packed", "report")  # the longest last: a cut-off run keeps the others
# airbench94 (github.com/KellerJordan/cifar10-airbench), as published: 94.01% mean test accuracy in 3.83 s on
# one NVIDIA A100. Datasheet rates used to scale its time to another chip.
AIRBENCH = {"acc": 0.9401, "seconds": 3.83, "chip": "NVIDIA A100 (SXM4)"}
CHIPS = {  # dense bf16 TFLOP/s, HBM TB/s (vendor datasheets)
    "A100": (312.0, 2.04), "H100": (989.0, 3.35), "H200": (989.0, 4.8)}
TINY_MODEL = {"widths": (4, 4, 8, 8), "fc": 32}


@dataclass(frozen=True)
class Sizes:
    """How much of each item to run: `full()` fits ~10 minutes on one H200, `tiny()` about a minute on a CPU."""

    subset: int | None = None  # training images (None: all 50,000)
    test_subset: int | None = None
    graph_epochs: int = 3
    packed_runs: int = 8
    packed_epochs: int = 5
    report_epochs: int | None = None  # None: every preset's own epoch count
    airbench_epochs: int | None = None  # None: best-scratch's own (40)
    tiny: bool = False

    @classmethod
    def full(cls) -> Sizes:
        return cls()

    @classmethod
    def tiny_sizes(cls) -> Sizes:
        return cls(subset=100, test_subset=50, graph_epochs=2, packed_runs=2, packed_epochs=1, report_epochs=1,
                   airbench_epochs=2, tiny=True)


def config_for(name: str, sizes: Sizes, dataset: str, device: str, epochs: int | None = None,
               **overrides: Any) -> TrainConfig:
    """Preset `name` on `dataset`, at these sizes; pretrained models start from `weights` (no network here)."""
    config = preset_config(name, dataset=dataset, subset=sizes.subset, test_subset=sizes.test_subset,
                           device=device, **({"epochs": epochs} if epochs else {}))
    entry_options = dict(config.model.options)
    changes: dict[str, Any] = dict(overrides)
    if config.model.name.endswith("_imagenet") and "model.weights" not in changes:
        changes["model.weights"] = "none"
    if sizes.tiny:  # seconds on a CPU: tiny networks, tiny batches, 32x32 even for the 224 models
        changes.update({"batch_size": 50, "eval_batch_size": 100})
        if config.model.name == "cnn":
            changes.update({f"model.{k}": v for k, v in TINY_MODEL.items()})
        elif config.model.name == "mlp":
            changes["model.hidden"] = (32,)
        elif "image_size" in entry_options or config.model.name.endswith("_imagenet"):
            changes["model.image_size"] = 32
        if config.model.name == "resnet9":
            changes["model.width"] = 4
    return apply_overrides(config, changes)


def log(out: Path, message: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {message}"
    print(line, flush=True)
    with open(out / "gpu_class.log", "a", encoding="utf-8") as f:
        f.write(line + "\n")


# ---- the items ----------------------------------------------------------------------------------------

def graphs_item(ds: Dataset, sizes: Sizes, device: str, out: Path) -> dict[str, Any]:
    """Base-CNN epochs eager vs graphed, in this process."""
    result: dict[str, Any] = {}
    for arm, graphed in (("eager", False), ("graphed", True)):
        config = config_for("cnn", sizes, ds.name, device, epochs=sizes.graph_epochs, cuda_graphs=graphed)
        events = list(engine.train(config, dataset=ds))
        epochs = [e for e in events if e.event == "epoch"]
        steady = epochs[1:] or epochs
        best = min(steady, key=lambda e: e.seconds)
        result[arm] = dict(epoch_s=round(best.seconds, 4), first_epoch_s=round(epochs[0].seconds, 3),
                           images_per_s=round(best.images_per_s), test_acc=round(epochs[-1].test_acc, 4),
                           notes=[e.message for e in events if e.event == "note"], status=events[-1].status)
        log(out, f"graphs: {arm}: epoch {best.seconds:.3f} s, {best.images_per_s:,.0f} img/s, notes "
                 f"{result[arm]['notes']}")
    result["speedup"] = round(result["eager"]["epoch_s"] / max(1e-9, result["graphed"]["epoch_s"]), 2)
    return result


def run_queue(lib: Any, configs: list[tuple[str, TrainConfig]], out: Path, what: str,
              data_root: str | None) -> dict[str, Any]:
    """Submit every (name, config) at once, wait for all to end; wall time, most at once, every run's row."""
    t0 = time.time()
    ids = [(name, lib.submit(cfg, name=name, preset=name if name in PRESETS else None, started_by="cli",
                             data_dir=data_root)) for name, cfg in configs]
    most, last_report = 0, 0.0
    while True:
        runs = [lib.get(i) for _, i in ids]
        most = max(most, sum(r.status == "running" for r in runs))
        if all(not r.active for r in runs):
            break
        if time.time() - last_report > 15:
            log(out, f"{what}: {sum(r.status == 'completed' for r in runs)}/{len(runs)} done, "
                     f"{sum(r.status == 'running' for r in runs)} running")
            last_report = time.time()
        lib.recover()  # what a page does on every poll: also kicks the queue
        time.sleep(0.25)
    wall = max(r.finished or t0 for r in runs) - t0
    rows = []
    for (name, run_id), run in zip(ids, runs, strict=True):
        curve = lib.curves(run_id)
        rows.append(dict(name=name, id=run_id, status=run.status, reason=run.reason, test_acc=run.test_acc,
                         seconds=round(run.seconds or 0.0, 2),
                         started=run.started, finished=run.finished,
                         images_per_s=round(sum(c.images_per_s for c in curve) / len(curve)) if curve else None))
    return dict(wall_s=round(wall, 2), most_at_once=most, runs=rows)


def packed_item(dataset: str, sizes: Sizes, device: str, out: Path, data_root: str | None) -> dict[str, Any]:
    """8 base-CNN runs submitted at once vs one alone, through a fresh run library."""
    lib = open_library(Path(tempfile.mkdtemp(prefix="gpu-class-runs-")))
    cfg = config_for("cnn", sizes, dataset, device, epochs=sizes.packed_epochs)
    alone = run_queue(lib, [("cnn alone", cfg)], out, "packed (one alone)", data_root)
    log(out, f"packed: one alone {alone['wall_s']} s")
    many = run_queue(lib, [(f"cnn #{i + 1}", apply_overrides(cfg, {"seed": i})) for i in range(sizes.packed_runs)],
                     out, f"packed ({sizes.packed_runs} at once)", data_root)
    ratio = many["wall_s"] / max(1e-9, alone["wall_s"])
    log(out, f"packed: {sizes.packed_runs} at once {many['wall_s']} s ({ratio:.2f}x one alone), most at once "
             f"{many['most_at_once']}")
    return dict(alone=alone, many=many, ratio=round(ratio, 2), runs=sizes.packed_runs)


def report_item(dataset: str, sizes: Sizes, device: str, out: Path, data_root: str | None,
                mobilenet_weights: str | None) -> dict[str, Any]:
    """Every preset, submitted at once, on CIFAR-10."""
    lib = open_library(Path(tempfile.mkdtemp(prefix="gpu-class-report-")))
    configs = []
    for name in PRESETS:
        extra = {"model.weights": mobilenet_weights} if name == "mobilenet-pretrained" and mobilenet_weights else {}
        configs.append((name, config_for(name, sizes, dataset, device, epochs=sizes.report_epochs, **extra)))
    result = run_queue(lib, configs, out, "report", data_root)
    for row, (name, cfg) in zip(result["runs"], configs, strict=True):
        row.update(report_acc=get_preset(name).report_acc, epochs=cfg.epochs, weights=cfg.model.options.get("weights"))
        log(out, f"report: {name}: {row['status']} acc {row['test_acc']} (report {row['report_acc']}) "
                 f"{row['seconds']} s {row['images_per_s']} img/s {row['reason']}")
    log(out, f"report: total wall {result['wall_s']} s, most at once {result['most_at_once']}")
    return result


def scaled(seconds: float, chip: str) -> dict[str, float] | None:
    """airbench's A100 time scaled to `chip`: by dense bf16 rate (if it were compute-bound) and by memory
    bandwidth (if it were memory-bound); the truth lies between for a network this small."""
    for key, (tflops, tbs) in CHIPS.items():
        if key in chip:
            a_tflops, a_tbs = CHIPS["A100"]
            return {"by_bf16_rate_s": round(seconds * a_tflops / tflops, 2),
                    "by_bandwidth_s": round(seconds * a_tbs / tbs, 2)}
    return None


def airbench_item(ds: Dataset, sizes: Sizes, device: str, out: Path) -> dict[str, Any]:
    """best-scratch's accuracy against elapsed time, beside airbench94's published point."""
    config = config_for("best-scratch", sizes, ds.name, device, epochs=sizes.airbench_epochs)
    t0 = time.perf_counter()
    curve = []
    for e in engine.train(config, dataset=ds):
        if e.event == "epoch":
            curve.append(dict(epoch=e.epoch, elapsed_s=round(time.perf_counter() - t0, 2), test_acc=round(e.test_acc, 4)))
    chip = torch.cuda.get_device_name() if torch.cuda.is_available() and device != "cpu" else "CPU"
    best = max(curve, key=lambda c: c["test_acc"]) if curve else None
    first_94 = next((c for c in curve if c["test_acc"] >= AIRBENCH["acc"]), None)
    log(out, f"airbench: best-scratch {best} (first at >= 94.01%: {first_94}); airbench94 {AIRBENCH}")
    return dict(curve=curve, best=best, first_at_airbench_acc=first_94, airbench=AIRBENCH, chip=chip,
                airbench_scaled_to_chip=scaled(AIRBENCH["seconds"], chip), epochs=config.epochs)


# ---- the script ---------------------------------------------------------------------------------------

def environment(device: str) -> dict[str, Any]:
    info: dict[str, Any] = dict(torch=torch.__version__, python=sys.version.split()[0], device=device,
                                cpu_count=os.cpu_count())
    if torch.cuda.is_available() and device != "cpu":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def run_all(items: list[str], ds: Dataset, queue_dataset: str, sizes: Sizes, device: str, out: Path,
            data_root: str | None, mobilenet_weights: str | None = None) -> dict[str, Any]:
    """Run the items in order; each one's result (or its error) is written to OUT/gpu_class.json at once."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = dict(environment=environment(device), sizes=asdict(sizes), started=time.time())
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "graphs": lambda: graphs_item(ds, sizes, device, out),
        "packed": lambda: packed_item(queue_dataset, sizes, device, out, data_root),
        "report": lambda: report_item(queue_dataset, sizes, device, out, data_root, mobilenet_weights),
        "airbench": lambda: airbench_item(ds, sizes, device, out),
    }
    t_all = time.time()
    for item in items:
        t = time.time()
        log(out, f"--- {item}")
        try:
            results[item] = jobs[item]()
        except Exception as e:  # noqa: BLE001 - one failing item must not cost the others
            traceback.print_exc()
            results[item] = dict(error=f"{type(e).__name__}: {e}")
            log(out, f"{item} failed: {type(e).__name__}: {e}")
        results[item]["item_wall_s"] = round(time.time() - t, 2)
        results["total_wall_s"] = round(time.time() - t_all, 2)
        (out / "gpu_class.json").write_text(json.dumps(results, indent=1, default=str))
    return results
