"""A short calibration of how fast a config trains and evaluates on a device, for core.train.estimate.

`calibrate(config, device, num_classes)` sets a run up on random images of the right shape (core.train.setup.
prepare: the config's model, optimizer, precision, memory layout, batch size and augmentation), times one first
training step (its extra time is the warm-up: first-batch set-up, torch.compile, CUDA graph capture, as the
engine does them), then `CALIBRATION_STEPS` steady steps, then one evaluation batch. The clock is injectable, so
a test checks the arithmetic without timing anything. Also what a rate is keyed by on this machine
(`run_rate_key`: the device's label and the precision the engine would choose) and `remember_run`, which folds a
finished run's measured rate into the library's settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from core.config import TrainConfig
from core.data.dataset import Dataset
from core.train.engine import Forward, evaluate, make_forward
from core.train.estimate import Rate, RateKey, rate_key, refine_stored
from core.train.graphs import GraphedStep, wants_graphs
from core.train.setup import RunSetup, prepare, use_amp

CALIBRATION_STEPS = 4  # steady training steps timed after the first (on the 2-core CPU: ~4 s for the cnn preset)


def random_dataset(config: TrainConfig, num_classes: int, steps: int) -> Dataset:
    """Random 32×32 uint8 images: `steps` + 1 training batches and one evaluation batch, all classes present."""
    gen = torch.Generator().manual_seed(0)
    n_train, n_test = config.batch_size * (steps + 1), config.eval_batch_size
    return Dataset(name="calibration", train_x=torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8,
                                                             generator=gen),
                   train_y=torch.arange(n_train) % num_classes,
                   test_x=torch.randint(0, 256, (n_test, 3, 32, 32), dtype=torch.uint8, generator=gen),
                   test_y=torch.arange(n_test) % num_classes, classes=tuple(str(i) for i in range(num_classes)),
                   mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def one_step(run: RunSetup, forward: Forward, graph: GraphedStep | None) -> None:
    """One training step as the engine takes it (graphed where it would be, else forward, backward, step)."""
    xb, yb = run.batches.next_batch()
    if graph is not None and graph.fits(xb) and graph.step(xb, yb) is not None:
        return
    forward(xb, yb)[1].backward()
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)


def calibrate(config: TrainConfig, device: torch.device, num_classes: int, *, data_s: float = 0.0,
              steps: int = CALIBRATION_STEPS, clock: Callable[[], float] = time.perf_counter) -> Rate:
    """The Rate of `config` on `device` from a few timed steps on random data. data_s: seconds the run's data
    takes to load (measured by the caller), added to the set-up. The model is left in train mode and dropped."""
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return clock()

    dataset = random_dataset(config, num_classes, steps)
    t0 = now()
    run = prepare(config, dataset, device)
    graph = (GraphedStep(run.model, run.optimizer, run.criterion, device, config.batch_size, bf16=run.bf16)
             if wants_graphs(config, device) else None)
    forward = Forward(run) if graph is not None else make_forward(run)[0]
    run.batches.start_epoch(1)
    run.model.train()
    t1 = now()
    one_step(run, forward, graph)
    t2 = now()
    for _ in range(steps):
        one_step(run, forward, graph)
    t3 = now()
    kw = dict(mean=run.mean, std=run.std, batch_size=config.eval_batch_size, device=device, amp=config.amp,
              channels_last=run.channels_last)
    evaluate(run.model, run.test_x[:2], run.test_y[:2], **kw)  # the first call's one-off set-up
    t4 = now()
    evaluate(run.model, run.test_x, run.test_y, **kw)
    t5 = now()
    step_s = max(1e-9, t3 - t2) / steps
    return Rate(train_ips=config.batch_size / step_s, eval_ips=len(run.test_x) / max(1e-9, t5 - t4),
                warmup_s=max(0.0, (t2 - t1) - step_s), setup_s=data_s + max(0.0, t1 - t0), runs=0)


def device_label(device: torch.device | str) -> str:
    """The device part of a RateKey: "cpu", or "cuda:" and the GPU's name (speeds belong to the model of GPU)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def where_text(device: torch.device | str) -> str:
    """'this CPU' or the GPU's name, for the estimate's human line."""
    label = device_label(device)
    return "this CPU" if label == "cpu" else label.split(":", 1)[-1]


def run_rate_key(config: TrainConfig, device: torch.device | str) -> RateKey:
    """The RateKey of a run of `config` on `device` (its precision as the engine would choose it)."""
    device = torch.device(device)
    return rate_key(config, device_label(device), use_amp(config, device))


def remember_run(get_setting: Callable[[str], str | None], set_setting: Callable[[str, str], None],
                 config: TrainConfig, device: torch.device | str, measured: Rate) -> Rate:
    """Fold a finished run's measured rate into the one kept for its key (the run library's settings)."""
    return refine_stored(get_setting, set_setting, run_rate_key(config, device), measured)


def stored_rate(get_setting: Callable[[str], str | None], config: TrainConfig) -> Rate | None:
    """The rate kept for a run of `config` on its device (the library's getter); None when this model was never
    timed there, or the device is not here (a ConfigError from resolve_device)."""
    from core.errors import ConfigError
    from core.train.estimate import load_rate
    from core.train.setup import resolve_device

    try:
        device = resolve_device(config.device)
    except ConfigError:
        return None
    return load_rate(get_setting, run_rate_key(config, device))
