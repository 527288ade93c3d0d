"""Benchmark building blocks shared by the CPU comparison (bench/cpu.py) and the GPU suite (bench/gpu.py).

Owns: the machine description printed with every table, the on-the-spot matrix-multiply rate (the yardstick for
"what fraction of this machine does a model reach"), forward MACs of a model counted with hooks, CIFAR-shaped
synthetic datasets of any size (speed does not depend on the pixels), and the timer of the lab's own training
loop: `time_engine` runs core.train.engine.train unchanged and reads the clock at its Step events.

Timing rules used everywhere: warm-up steps are never timed, every arm is repeated and the median is reported,
arms of one comparison alternate (A B, B A, A B, ...) so a busy neighbour slows both alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torchvision
from torch import nn

from core.config import TrainConfig
from core.data.dataset import Dataset
from core.models.catalog import build_for_config
from core.train import engine, setup
from core.train import events as ev

Progress = Callable[[str], None]  # one line of progress for the terminal
Clock = Callable[[], float]  # seconds: time.perf_counter, or a fake one that tests step through


# --- the machine -----------------------------------------------------------------------------------------------

def cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, float, float] | None:
    """1/5/15-minute load averages (None where the OS has none): > cores means others were using the CPU."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except (AttributeError, OSError):
        return None


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """What a result depends on: when, which CPU/GPU, how many cores and threads, which torch."""
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "python": platform.python_version(), "platform": platform.platform(terse=True),
        "load_average": load_average(), "cpu_native_bf16": setup.cpu_has_native_bf16(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
    }
    if device is not None and device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


def describe_machine(info: dict[str, Any]) -> str:
    """One line: 'Intel(R) Xeon(R) Processor, 2 cores, torch 2.14.1 (2 threads), load 4.1/3.9/3.5, 2026-...'."""
    load = info.get("load_average")
    parts = [info.get("gpu") or info["cpu"], f"{info['cores']} cores", f"torch {info['torch']} "
             f"({info['torch_threads']} threads)"]
    if info.get("cuda"):
        parts.append(f"CUDA {info['cuda']}")
    if info.get("omp_wait_policy") and not info.get("gpu"):
        parts.append(f"OMP_WAIT_POLICY {info['omp_wait_policy']}")
    if load:
        parts.append("load average " + "/".join(f"{v:.1f}" for v in load))
    parts.append(info["date"])
    return ", ".join(parts)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so the clock measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, n: int = 1024,
                  seconds: float = 0.6, bursts: int = 3, clock: Clock = time.perf_counter) -> float:
    """GFLOP/s of n×n @ n×n on `device` (2n³ FLOPs each), measured now: the best of `bursts` bursts of about
    `seconds` each (the best, not the median: the question is what the hardware can do), in groups of 4
    products between clock reads."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    sync(device)
    best = 0.0
    for _ in range(bursts):
        t0, k = clock(), 0
        while True:
            a @ b
            k += 1
            if k % 4 == 0:
                sync(device)
                elapsed = clock() - t0
                if elapsed >= seconds / bursts:
                    break
        best = max(best, 2 * n ** 3 * k / elapsed / 1e9)
    return best


# --- model arithmetic ------------------------------------------------------------------------------------------

def forward_macs(model: nn.Module, image_size: int = 32) -> int:
    """Multiply-accumulates of one forward pass of one (3, image_size, image_size) image through every Conv2d
    and Linear (the layers that matter; BN/ReLU/pooling are a rounding error), counted with forward hooks on the
    shapes that really flow, so an internal resize (the *_imagenet models) is included."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * m.in_features

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total


def train_flops_per_image(forward_mac_count: int) -> int:
    """FLOPs of one training image: forward + backward ≈ 3 forward passes, 2 FLOPs per multiply-accumulate."""
    return 3 * 2 * forward_mac_count


def config_macs(config: TrainConfig, num_classes: int) -> int:
    """Forward MACs per image of the config's model (random weights, nothing downloaded)."""
    model = build_for_config(config, num_classes, load_pretrained=False)
    return forward_macs(model)


# --- data --------------------------------------------------------------------------------------------------------

def synthetic_dataset(n_train: int, n_test: int, num_classes: int = 100, seed: int = 0,
                      name: str = "bench-synthetic") -> Dataset:
    """A CIFAR-shaped Dataset of random pixels and labels: (n_train, 3, 32, 32) uint8 and (n_train,) labels,
    every class present when n >= num_classes. The mean/std are the usual ones of uniform bytes (0.5, 0.289):
    computing them would cost a pass over the data and change nothing about speed."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        y = torch.arange(n, dtype=torch.int64) % num_classes  # balanced, then shuffled
        return x, y[torch.randperm(n, generator=g)]

    train_x, train_y = split(n_train)
    test_x, test_y = split(n_test)
    classes = tuple(f"class{i:03d}" for i in range(num_classes))
    mean, std = (0.498, 0.498, 0.498), (0.289, 0.289, 0.289)
    return Dataset(name, train_x, train_y, test_x, test_y, classes, mean, std)


# --- the lab's loop, timed ---------------------------------------------------------------------------------------

@dataclass
class EngineTiming:
    """What one timed engine run saw: steady-state throughput and where the epoch's time went."""

    images_per_s: float  # training images/s between the first timed Step and the last one
    timed_steps: int
    timed_seconds: float
    setup_seconds: float  # train() called -> RunStarted (model build, copies to the device)
    warmup_seconds: float  # RunStarted -> end of the warm-up steps (first-step costs, compile, cuDNN autotune)
    eval_seconds: float | None  # last Step -> EpochEnd (the end-of-epoch evaluation), when an epoch ended
    epochs: list[dict[str, float]]  # per finished epoch: epoch, seconds (training + evaluation), images_per_s
    #                                 (training only), test_acc, at_s (seconds since train() was called)
    status: str  # the Finished status, or "timed" when the run was closed after the timed steps
    notes: list[str]
    total_seconds: float = 0.0  # train() called -> last event seen

    @property
    def epoch_seconds(self) -> list[float]:
        return [e["seconds"] for e in self.epochs]


@contextlib.contextmanager
def cpu_bf16(enabled: bool | None) -> Iterator[None]:
    """Run the engine with CPU bf16 autocast on (True) / off (False) / as configured (None)."""
    if enabled is None:
        yield
        return
    old = os.environ.get(setup.CPU_BF16_ENV)
    os.environ[setup.CPU_BF16_ENV] = "1" if enabled else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(setup.CPU_BF16_ENV, None)
        else:
            os.environ[setup.CPU_BF16_ENV] = old


def time_engine(config: TrainConfig, dataset: Dataset, *, warmup_steps: int = 1,
                steps: int | None = None, stop_after_s: float | None = None,
                bf16_on_cpu: bool | None = None, clock: Clock = time.perf_counter) -> EngineTiming:
    """Run core.train.engine.train(config, dataset=dataset) as the app would and time it from its events.

    The clock starts at the Step event of step `warmup_steps` (so config.log_every must divide it, or be 1) and
    stops at the Step of step warmup_steps + steps; with steps=None the run goes on to its end (or until
    `stop_after_s` seconds after the warm-up, through should_stop, the same path as the app's Stop button)."""
    if warmup_steps < 1:
        raise ValueError("warmup_steps must be >= 1: the first step pays one-off costs")
    le = config.log_every
    if warmup_steps % le or (steps is not None and steps % le):
        raise ValueError(f"log_every={le} must divide warmup_steps={warmup_steps} and steps={steps}")
    device = setup.resolve_device(config.device)
    t_call = clock()
    t_started = t_warm = t_last_step = t_end = None
    timed_steps, epochs, notes = 0, [], []
    eval_seconds, status = None, "timed"
    deadline: list[float] = []

    def should_stop() -> bool:
        return bool(deadline) and clock() >= deadline[0]

    with cpu_bf16(bf16_on_cpu):
        run = engine.train(config, should_stop=should_stop, dataset=dataset)
        try:
            for e in run:
                now = clock()
                if isinstance(e, ev.RunStarted):
                    t_started = now
                elif isinstance(e, ev.Note):
                    notes.append(e.message)
                elif isinstance(e, ev.Step):
                    t_last_step = now
                    if e.step == warmup_steps:
                        sync(device)
                        t_warm = clock()
                        if stop_after_s is not None:
                            deadline.append(t_warm + stop_after_s)
                    elif t_warm is not None:
                        timed_steps, t_end = e.step - warmup_steps, now
                        if steps is not None and timed_steps >= steps:
                            break
                elif isinstance(e, ev.EpochEnd):
                    epochs.append(dict(epoch=e.epoch, seconds=e.seconds, images_per_s=e.images_per_s,
                                       test_acc=e.test_acc, at_s=now - t_call))
                    if t_last_step is not None:
                        eval_seconds = now - t_last_step
                elif isinstance(e, ev.Finished):
                    status = e.status
                    if e.status in ("failed", "diverged"):
                        notes.append(f"{e.status}: {e.reason}")
        finally:
            run.close()
    t_started = t_started if t_started is not None else t_call
    timed = (t_end - t_warm) if (t_end is not None and t_warm is not None) else 0.0
    # every step but an epoch's last is a full batch; the bench sizes its data in whole batches
    ips = timed_steps * config.batch_size / timed if timed > 0 else 0.0
    return EngineTiming(images_per_s=ips, timed_steps=timed_steps, timed_seconds=timed,
                        setup_seconds=t_started - t_call,
                        warmup_seconds=(t_warm - t_started) if t_warm is not None else 0.0,
                        eval_seconds=eval_seconds, epochs=epochs, status=status, notes=notes,
                        total_seconds=clock() - t_call)


def bench_config(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """The config with the data-size settings cleared (the benchmark sizes its dataset itself) and overrides."""
    data = replace(config.data, subset=None, test_subset=None)
    return replace(replace(config, data=data), **overrides)


# --- repetitions ---------------------------------------------------------------------------------------------

def alternate(arms: Sequence[tuple[str, Callable[[], float]]], reps: int,
              progress: Progress | None = None) -> dict[str, list[float]]:
    """Call every arm `reps` times, alternating the order each round (A B C, C B A, ...) so that load from
    others and thermal drift hit every arm alike; returns each arm's values in call order."""
    out: dict[str, list[float]] = {name: [] for name, _ in arms}
    for r in range(reps):
        order = arms if r % 2 == 0 else list(reversed(arms))
        for name, fn in order:
            value = fn()
            out[name].append(value)
            if progress:
                progress(f"  {name}: {value:,.0f} img/s (round {r + 1}/{reps})")
    return out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def say(line: str) -> None:
    """Default progress: a line on stderr (the table goes to stdout)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
