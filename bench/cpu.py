"""`python -m core bench`: the lab's engine against what a student writes, in one process, on this machine.

The baseline is the torchvision tutorial pipeline: a Dataset that keeps HWC uint8 images (as
torchvision.datasets.CIFAR100 does) and turns each one into a PIL image passed through
RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize, a shuffling DataLoader with worker
processes (2, as in PyTorch's CIFAR tutorial), and the textbook loop (zero_grad, forward, loss, backward, step,
`loss.item()` every step) with the same model, optimizer and batch size as the lab. The lab is core.data.augment on
resident uint8 tensors (core.train.batches) and core.train.engine.train itself (timed by bench.common.time_engine).

Measured: (a) augmentation alone (normalized batches produced per second), (b) end-to-end training images/s for
the report's base CNN, the 128/128/128/256 + BN CNN and the CIFAR ResNet18, all with flip + crop. Arms
alternate, each is repeated; medians and their ratio are reported with the machine, its load and its measured
matmul rate (`python -m core bench --help` for the knobs; docs/PERFORMANCE.md for results).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from bench import common as bench
from bench import profile as bench_profile
from core.config import AugmentConfig, TrainConfig
from core.data.dataset import Dataset
from core.lessons.presets import FLIP_CROP, preset_config
from core.models.catalog import build_for_config
from core.train import setup
from core.train.batches import TrainBatches, resident

# --- the models compared -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchModel:
    key: str
    label: str
    config: TrainConfig
    steps: int  # timed steps per measurement (full plan); the heavy models get fewer


def bench_models() -> dict[str, BenchModel]:
    """The report's base CNN, the 128/128/128/256 + BN CNN and the CIFAR ResNet18, each with flip + crop, the
    report's Adam 1e-4 and batch 256 (what their presets say)."""
    wide = preset_config("cnn-bn")
    wide = replace(wide, data=replace(wide.data, augment=FLIP_CROP))
    return {m.key: m for m in (
        BenchModel("base", "base CNN", preset_config("cnn-flip-crop"), steps=6),
        BenchModel("wide", "128/128/128/256+BN CNN", wide, steps=2),
        BenchModel("resnet18", "CIFAR ResNet18", preset_config("resnet18-scratch"), steps=2),
    )}


# --- the student's pipeline ------------------------------------------------------------------------------------

class StudentCIFAR(TorchDataset):
    """torchvision.datasets.CIFAR100's __getitem__: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, images_hwc: np.ndarray, targets: Sequence[int], transform: Any) -> None:
        self.data, self.targets, self.transform = images_hwc, list(targets), transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.data[i])
        return self.transform(img), self.targets[i]


def student_transform(mean: Sequence[float], std: Sequence[float]) -> Any:
    return T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])


def student_dataset(ds: Dataset) -> StudentCIFAR:
    hwc = np.ascontiguousarray(ds.train_x.permute(0, 2, 3, 1).numpy())  # (N, 32, 32, 3) uint8, like CIFAR100.data
    return StudentCIFAR(hwc, ds.train_y.tolist(), student_transform(ds.mean, ds.std))


def student_loader(sds: StudentCIFAR, batch_size: int, workers: int, seed: int = 0) -> DataLoader:
    return DataLoader(sds, batch_size=batch_size, shuffle=True, num_workers=workers,
                      generator=torch.Generator().manual_seed(seed))


def time_student_augment(sds: StudentCIFAR, batch_size: int, batches: int, workers: int,
                         clock: bench.Clock = time.perf_counter) -> float:
    """Images/s the DataLoader delivers, after its first batch (worker start-up is not counted)."""
    it = iter(student_loader(sds, batch_size, workers))
    try:
        next(it)
        t0 = clock()
        n = 0
        for _ in range(batches):
            x, _y = next(it)
            n += len(x)
        return n / (clock() - t0)
    finally:
        del it  # shuts the workers down


def time_student_training(config: TrainConfig, ds: Dataset, sds: StudentCIFAR, *, warmup: int,
                          steps: int, workers: int, clock: bench.Clock = time.perf_counter) -> float:
    """Training images/s of the textbook loop over the student's DataLoader (warm-up steps not timed)."""
    torch.manual_seed(config.seed)
    model = build_for_config(config, ds.num_classes, load_pretrained=False)  # fp32, NCHW, on the CPU
    optimizer = setup.build_optimizer(model, config, fused=False)  # what torch.optim.X(...) gives by default
    criterion = nn.CrossEntropyLoss(label_smoothing=config.optim.label_smoothing)
    model.train()
    running_loss, t0 = 0.0, None
    it = iter(student_loader(sds, config.batch_size, workers, config.seed))
    try:
        for i, (x, y) in enumerate(it):
            if i == warmup:
                t0 = clock()
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if i + 1 == warmup + steps:
                break
        assert t0 is not None, "the dataset is smaller than warm-up + timed steps"
        return steps * config.batch_size / (clock() - t0)
    finally:
        del it


# --- the lab's pipeline ----------------------------------------------------------------------------------------

def time_lab_augment(ds: Dataset, cfg: AugmentConfig, batch_size: int, *, min_seconds: float = 0.5,
                     device: torch.device | str = "cpu", seed: int = 0, clock: bench.Clock = time.perf_counter) -> float:
    """Normalized, augmented images per second exactly as the engine makes them (core.train.batches.TrainBatches
    over the resident uint8 images), in groups of 8 batches until `min_seconds` have passed, after one warm-up
    batch."""
    device = torch.device(device)
    batches = TrainBatches(resident(ds.train_x, device), resident(ds.train_y, device), batch_size, cfg, ds.mean,
                           ds.std, seed, device=device)
    batches(0)
    bench.sync(device)
    t0, n, b = clock(), 0, 1
    while True:
        for _ in range(8):
            n += len(batches(b)[0])
            b += 1
        bench.sync(device)
        elapsed = clock() - t0
        if elapsed >= min_seconds:
            return n / elapsed


def time_lab_training(config: TrainConfig, ds: Dataset, *, warmup: int, steps: int,
                      bf16: bool = False, clock: bench.Clock = time.perf_counter) -> float:
    """Training images/s of core.train.engine.train itself on the CPU (bench.common.time_engine)."""
    cfg = bench.bench_config(config, device="cpu", epochs=1, log_every=1)
    return bench.time_engine(cfg, ds, warmup_steps=warmup, steps=steps, bf16_on_cpu=bf16, clock=clock).images_per_s


# --- the plan and the run ----------------------------------------------------------------------------------------

@dataclass
class Plan:
    models: tuple[str, ...] = ("base", "wide", "resnet18")
    reps: int = 3
    warmup: int = 1
    steps: dict[str, int] = field(default_factory=dict)  # per model; missing = BenchModel.steps
    batch_size: int | None = None  # None = each preset's (256)
    workers: int = 2
    aug_batches: int = 8  # baseline batches timed for "augmentation alone"
    aug_min_seconds: float = 0.5
    bf16: bool = True  # also time the lab with CPU bf16 autocast (only where the CPU has native bf16)
    matmul_seconds: float = 0.6
    profile_steps: int = 2  # steps of the first model profiled per arm (bench/profile.py); 0 = no profile

    @classmethod
    def named(cls, quick: bool = False, tiny: bool = False) -> Plan:
        if tiny:  # seconds: for tests and for checking that the command works at all
            return cls(models=("base",), reps=1, steps={"base": 1}, batch_size=16, workers=0, aug_batches=2,
                       aug_min_seconds=0.05, matmul_seconds=0.05, profile_steps=1)
        if quick:
            return cls(models=("base",), reps=3, steps={"base": 3}, aug_batches=6)
        return cls()


def run(plan: Plan, progress: bench.Progress | None = bench.say) -> dict[str, Any]:
    """Measure everything in `plan`; returns a JSON-ready report (see format_report)."""
    say = progress or (lambda _line: None)
    info = bench.machine_info()
    say(f"machine: {bench.describe_machine(info)}")
    peak = {"fp32": bench.matmul_gflops("cpu", torch.float32, seconds=plan.matmul_seconds)}
    bf16_arm = plan.bf16 and setup.cpu_has_native_bf16()
    if bf16_arm:
        peak["bf16"] = bench.matmul_gflops("cpu", torch.bfloat16, seconds=plan.matmul_seconds)
    say("matmul: " + ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in peak.items()))
    catalogue = bench_models()
    unknown = [m for m in plan.models if m not in catalogue]
    if unknown:
        raise ValueError(f"unknown bench model(s) {unknown}; known: {list(catalogue)}")
    report: dict[str, Any] = {"machine": info, "matmul_gflops": peak, "plan": asdict(plan), "models": []}

    # (a) augmentation alone, at the base CNN's batch size
    first = catalogue[plan.models[0]].config
    batch = plan.batch_size or first.batch_size
    ds = bench.synthetic_dataset(batch * (plan.aug_batches + 1), 10, seed=0)
    sds = student_dataset(ds)
    say(f"(a) augmentation alone, {FLIP_CROP.describe()}, batch {batch}:")
    vals = bench.alternate([
        ("baseline", lambda: time_student_augment(sds, batch, plan.aug_batches, plan.workers)),
        ("lab", lambda: time_lab_augment(ds, FLIP_CROP, batch, min_seconds=plan.aug_min_seconds)),
    ], plan.reps, say)
    report["augment"] = _summary(vals, batch=batch, what=FLIP_CROP.describe())

    # (b) end to end
    rows = [_end_to_end(catalogue[key], plan, bf16_arm, say) for key in plan.models]
    # The yardstick again at the end: on a shared machine the rate moves with the neighbours' load; the better
    # of the two is what this CPU can do, and the fractions are taken against it.
    report["matmul_gflops_runs"] = {}
    for kind, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if kind in peak:
            again = bench.matmul_gflops("cpu", dtype, seconds=plan.matmul_seconds)
            report["matmul_gflops_runs"][kind] = [peak[kind], again]
            peak[kind] = max(peak[kind], again)
    for row in rows:
        for arm in ("baseline", "lab", "lab_bf16"):
            if arm in row:
                row[f"{arm}_fp32_peak_fraction"] = row[arm] * row["train_flops"] / 1e9 / peak["fp32"]
        if "lab_bf16" in row and peak.get("bf16"):  # a bf16 arm is judged against the bf16 matmul rate
            row["lab_bf16_bf16_peak_fraction"] = row["lab_bf16"] * row["train_flops"] / 1e9 / peak["bf16"]
    report["models"] = rows
    if plan.profile_steps:
        report["profile"] = _profile(catalogue[plan.models[0]], plan, bf16_arm, say)
    report["load_average_after"] = bench.load_average()
    return report


def _end_to_end(m: BenchModel, plan: Plan, bf16_arm: bool, say: bench.Progress) -> dict[str, Any]:
    cfg = replace(m.config, batch_size=plan.batch_size) if plan.batch_size else m.config
    steps = plan.steps.get(m.key, m.steps)
    ds = bench.synthetic_dataset(cfg.batch_size * (plan.warmup + steps), 100, seed=1)
    sds = student_dataset(ds)
    macs = bench.config_macs(cfg, ds.num_classes)
    say(f"(b) end-to-end {m.label}, batch {cfg.batch_size}, {steps} timed steps after {plan.warmup}:")
    arms = [("baseline", lambda: time_student_training(cfg, ds, sds, warmup=plan.warmup, steps=steps,
                                                        workers=plan.workers)),
            ("lab", lambda: time_lab_training(cfg, ds, warmup=plan.warmup, steps=steps))]
    if bf16_arm:
        arms.append(("lab_bf16", lambda: time_lab_training(cfg, ds, warmup=plan.warmup, steps=steps, bf16=True)))
    vals = bench.alternate(arms, plan.reps, say)
    return _summary(vals, key=m.key, label=m.label, batch=cfg.batch_size, steps=steps, forward_macs=macs,
                    train_flops=bench.train_flops_per_image(macs))


def _profile(m: BenchModel, plan: Plan, bf16_arm: bool, say: bench.Progress) -> dict[str, Any]:
    """(c) the per-step profile of the first model, per arm of the lab: op family -> share of the step."""
    cfg = bench.bench_config(m.config, device="cpu", epochs=1, **({"batch_size": plan.batch_size}
                                                                   if plan.batch_size else {}))
    ds = bench.synthetic_dataset(cfg.batch_size * (plan.warmup + plan.profile_steps + 1), 100, seed=2)
    say(f"(c) profile of {plan.profile_steps} step(s) of the {m.label}, per arm:")
    arms = {"fp32": False, **({"bf16": True} if bf16_arm else {})}
    shares = {arm: bench_profile.profile_steps(cfg, ds, bf16_on_cpu=on, warmup=plan.warmup, steps=plan.profile_steps)
              for arm, on in arms.items()}
    return {"model": m.label, "steps": plan.profile_steps, "shares": shares}


def _summary(vals: dict[str, list[float]], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(extra)
    for arm, v in vals.items():
        out[arm] = bench.median(v)
        out[f"{arm}_runs"] = [round(x, 1) for x in v]
    base = out.get("baseline") or 0.0
    for arm in vals:
        if arm != "baseline":
            out["ratio" if arm == "lab" else f"ratio_{arm[4:]}"] = out[arm] / base if base else float("nan")
    return out


# --- output --------------------------------------------------------------------------------------------------

def ratio_lines(report: dict[str, Any]) -> list[str]:
    """e.g. 'end-to-end base CNN: lab 2,900 img/s, baseline 1,250 img/s, ratio 2.3×'."""
    a = report["augment"]
    lines = [f"augmentation alone ({a['what']}): lab {a['lab']:,.0f} img/s, baseline {a['baseline']:,.0f} img/s, "
             f"ratio {a['ratio']:.1f}×"]
    for r in report["models"]:
        lines.append(f"end-to-end {r['label']}: lab {r['lab']:,.0f} img/s, baseline {r['baseline']:,.0f} img/s, "
                     f"ratio {r['ratio']:.1f}×")
        if "lab_bf16" in r:
            lines.append(f"end-to-end {r['label']} (lab, CPU bf16 on): lab {r['lab_bf16']:,.0f} img/s, baseline "
                         f"{r['baseline']:,.0f} img/s, ratio {r['ratio_bf16']:.1f}×")
    return lines


def format_report(report: dict[str, Any]) -> str:
    info, peak = report["machine"], report["matmul_gflops"]
    plan = report["plan"]
    head = [f"machine: {bench.describe_machine(info)}",
            f"load average after: {'/'.join(f'{v:.1f}' for v in report.get('load_average_after') or ())}",
            "measured matmul rate (best of start and end): "
            + ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in peak.items()),
            f"baseline: PIL RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize, DataLoader "
            f"num_workers={plan['workers']}; medians of {plan['reps']} alternating runs", ""]
    rows = [("what", "baseline img/s", "lab img/s", "ratio", "lab bf16 img/s", "ratio", "GFLOP/img",
             "lab % fp32 peak", "lab bf16 % bf16 peak")]
    a = report["augment"]
    rows.append((f"augmentation ({a['what']})", f"{a['baseline']:,.0f}", f"{a['lab']:,.0f}", f"{a['ratio']:.1f}×",
                 "", "", "", "", ""))
    for r in report["models"]:
        bf = r.get("lab_bf16")
        rows.append((f"end-to-end {r['label']}", f"{r['baseline']:,.0f}", f"{r['lab']:,.0f}", f"{r['ratio']:.2f}×",
                     f"{bf:,.0f}" if bf else "—", f"{r['ratio_bf16']:.2f}×" if bf else "—",
                     f"{r['train_flops'] / 1e9:.2f}", f"{r['lab_fp32_peak_fraction']:.0%}",
                     f"{r['lab_bf16_bf16_peak_fraction']:.0%}" if "lab_bf16_bf16_peak_fraction" in r else "—"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    prof = report.get("profile")
    profile = ([f"per-step profile, {prof['model']} ({prof['steps']} step(s) after the warm-up, torch.profiler "
                "self CPU time):", *bench_profile.format_profile(prof["shares"]), ""] if prof else [])
    return "\n".join(head + table + [""] + profile + ratio_lines(report))
