"""Leslie Smith's learning-rate range test as a steppable object, and the learning rates it suggests.

`LRFinder` raises the learning rate every optimizer step from `start_lr` to `end_lr` (log-spaced or linear),
records the loss (of the training batch, or of a fixed held-out set in validation mode), smooths it with a
bias-corrected exponential moving average and stops when the smoothed loss exceeds `diverge_factor` × the best
seen, when a loss is non-finite (that point is cut off) or at `end_lr`. Whatever happens - end, early stop,
exception, `close()` - the model, optimizer, gradients and the finder's random streams go back to exactly the
state they had at construction, so a second test from the same object (`reset()`) repeats the curve bit for bit.

`step(n)` advances n steps and returns the new points (a page can draw the curve as it grows); `run()` goes to the
end. Data order and augmentation come from seeded generators that continue across `step` calls, so 10 × step(10)
equals step(100). `LRFinder.from_config` takes model, optimizer, loss and batches from the engine's own set-up
(core.train.setup.prepare, core.train.batches.TrainBatches);
the suggestions live in core.train.lr_suggest (`suggestions()` gives the lab's three); `schedule_for_suggestion`
turns a suggested LR into a training config whose schedule a page can draw before starting.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from core.config import SCHEDULES, TrainConfig
from core.data import augment as aug
from core.data.dataset import Dataset
from core.errors import ConfigError, LabError
from core.train.batches import Batch
from core.train.lr_suggest import Suggestion, suggest
from core.train.setup import (
    cpu_has_native_bf16,
    prepare,
    resolve_device,
    rng_states,
    run_dataset,
    set_rng_states,
)

BatchFn = Callable[[int], Batch]  # step index -> the batch of that step
MODES = ("exp", "linear")
REACHED_END = "reached end_lr"
NON_FINITE = "loss became non-finite"


@dataclass(frozen=True)
class Point:
    """One step of the test."""

    step: int  # 0-based
    lr: float  # the learning rate this step used
    loss: float  # raw: the training batch's loss before the step, or the held-out loss after it (val mode)
    smoothed: float  # bias-corrected exponential moving average of the raw losses up to here


class PointSeries:
    """The columns of a curve of Points (`self.points`): one definition for the finder and for a shared curve's view."""

    points: Sequence[Point]

    @property
    def lrs(self) -> list[float]:
        return [p.lr for p in self.points]

    @property
    def losses(self) -> list[float]:
        """Raw losses (finite only: a non-finite loss ends the curve before it)."""
        return [p.loss for p in self.points]

    @property
    def smoothed(self) -> list[float]:
        return [p.smoothed for p in self.points]


# --- the LR sequence and the smoothing: plain functions, so tests and pages can reuse them -------------------

def check_range(start_lr: float, end_lr: float, num_iter: int, mode: str) -> None:
    """ConfigError naming the value unless start_lr < end_lr are positive, num_iter >= 2 and mode is known."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 2:
        raise ConfigError(f"num_iter must be a whole number of steps >= 2, got {num_iter!r}")
    for name, v in (("start_lr", start_lr), ("end_lr", end_lr)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ConfigError(f"{name} must be a positive number, got {v!r}")
    if not start_lr < end_lr:
        raise ConfigError(f"start_lr ({start_lr:g}) must be smaller than end_lr ({end_lr:g})")


def lr_at_step(i: int, start_lr: float, end_lr: float, num_iter: int, mode: str = "exp") -> float:
    """The LR of step i (0-based): exp: start·(end/start)^(i/(n-1)); linear: start + (end-start)·i/(n-1).
    The last step uses end_lr itself (the formula can be one rounding off it)."""
    if i >= num_iter - 1:
        return float(end_lr)
    t = i / (num_iter - 1)
    if mode == "exp":
        return start_lr * (end_lr / start_lr) ** t
    return start_lr + (end_lr - start_lr) * t


def lr_schedule(start_lr: float, end_lr: float, num_iter: int, mode: str = "exp") -> list[float]:
    """Every step's LR, what a full test would use."""
    check_range(start_lr, end_lr, num_iter, mode)
    return [lr_at_step(i, start_lr, end_lr, num_iter, mode) for i in range(num_iter)]


def smooth(losses: Sequence[float], beta: float = 0.98) -> list[float]:
    """Bias-corrected EMA: avg = β·avg + (1-β)·loss; smoothed_i = avg / (1 - β^(i+1))."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


# --- the finder ------------------------------------------------------------------------------------------------

class LRFinder(PointSeries):
    """A learning-rate range test on (model, optimizer, criterion, batch_fn), one step at a time.

    batch_fn(i) returns step i's (inputs, targets); it is called with 0, 1, 2, ... and again from 0 after
    reset(), and must give the same batch for the same i (core.train.batches.TrainBatches does). val_batches, when given, switch
    to validation mode: the recorded loss is the mean loss over those batches after each step (eval mode, no
    gradients). seed gives dropout its own random stream (None: continue from the global RNG state at
    construction); the caller's global RNG is left as it was after every call.
    """

    config: TrainConfig | None = None  # set by from_config, for pages and the CLI
    dataset_name: str = ""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: Callable[..., torch.Tensor],
                 batch_fn: BatchFn, *, start_lr: float = 1e-7, end_lr: float = 10.0, num_iter: int = 100,
                 mode: str = "exp", beta: float = 0.98, diverge_factor: float | None = 4.0,
                 val_batches: Sequence[Batch] | None = None, device: torch.device | str | None = None,
                 amp: bool = False, channels_last: bool = False, seed: int | None = None) -> None:
        check_range(start_lr, end_lr, num_iter, mode)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
            raise ConfigError(f"beta (smoothing) must be in [0, 1), got {beta!r}")
        if diverge_factor is not None and not (isinstance(diverge_factor, (int, float)) and diverge_factor > 1):
            raise ConfigError(f"diverge_factor must be a number > 1 (or None to never stop early), got "
                              f"{diverge_factor!r}")
        if val_batches is not None and len(val_batches) == 0:
            raise ConfigError("validation mode needs at least one held-out batch")
        self.model, self.optimizer, self.criterion, self.batch_fn = model, optimizer, criterion, batch_fn
        self.start_lr, self.end_lr, self.num_iter, self.mode = float(start_lr), float(end_lr), num_iter, mode
        self.beta, self.diverge_factor = float(beta), diverge_factor
        self.val_batches = list(val_batches) if val_batches is not None else None
        first = next(model.parameters(), None)
        self.device = torch.device(device) if device is not None else (first.device if first is not None
                                                                       else torch.device("cpu"))
        self.amp, self.channels_last = amp, channels_last
        # The state every test starts from and every ending returns to (deep copies: the live tensors change).
        self._model_state = copy.deepcopy(model.state_dict())
        self._opt_state = copy.deepcopy(optimizer.state_dict())
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        self._grads = [None if p.grad is None else p.grad.detach().clone() for p in self._params]
        self._was_training = model.training
        saved = rng_states(self.device)
        if seed is not None:
            torch.manual_seed(seed)
        self._rng_start = rng_states(self.device)
        set_rng_states(self.device, saved)
        self.seconds = 0.0  # time spent in step(), cumulative since the last reset
        self._clear()

    @classmethod
    def from_config(cls, config: TrainConfig, dataset: Dataset | None = None, *, start_lr: float = 1e-7,
                    end_lr: float = 10.0, num_iter: int = 100, mode: str = "exp", beta: float = 0.98,
                    diverge_factor: float | None = 4.0, val_mode: bool = False, val_batches: int = 2,
                    data_root: str | None = None, seed: int | None = None, cpu_bf16: bool = False,
                    fused: bool = True) -> LRFinder:
        """The config's model, optimizer (its lr and schedule are ignored), loss and batches, as core.train.engine
        builds them. val_mode: the loss is measured on `val_batches` batches of test images (a seeded sample).

        Device choices are the engine's: NHWC where config.channels_last (CPU and CUDA), bf16 autocast on CUDA
        when config.amp and on the CPU when the engine's opt-in says so (core.train.setup.use_amp) or cpu_bf16=True
        - either only where the CPU has bf16 in hardware (it changes numerics, hence off by default).
        fused=True: the optimizer's fused kernel where torch has one (build_optimizer's default; same
        algorithm, float rounding aside). See docs/LR_FINDER.md for measurements.
        """
        check_range(start_lr, end_lr, num_iter, mode)
        if seed is not None:
            config = replace(config, seed=seed)
        device = resolve_device(config.device)
        dataset = run_dataset(config, dataset, data_root)
        saved = rng_states(device)
        try:
            run = prepare(config, dataset, device, fused=None if fused else False)  # the engine's very set-up
            dropout_rng = rng_states(device)  # and the engine's dropout stream, which continues from here
        finally:
            set_rng_states(device, saved)
        mean, std = run.mean, run.std
        held_out = None
        if val_mode:
            if isinstance(val_batches, bool) or not isinstance(val_batches, int) or val_batches < 1:
                raise ConfigError(f"val_batches must be a whole number >= 1, got {val_batches!r}")
            n = min(len(dataset.test_x), val_batches * config.batch_size)
            if n == 0:
                raise LabError(f"{dataset.name} has no test images to measure a validation loss on: run without "
                               "validation mode, or raise test_subset")
            # a seeded random sample: folder datasets list their test images class by class
            pick = torch.randperm(len(dataset.test_x), generator=torch.Generator().manual_seed(config.seed))[:n]
            x = aug.normalize(dataset.test_x[pick].to(device), mean, std)  # (n, 3, H, W) float32, not augmented
            y = dataset.test_y[pick].to(device)
            held_out = [(x[i:i + config.batch_size], y[i:i + config.batch_size])
                        for i in range(0, n, config.batch_size)]
        amp = run.bf16 or (cpu_bf16 and device.type == "cpu" and cpu_has_native_bf16())
        finder = cls(run.model, run.optimizer, run.criterion, run.batches, start_lr=start_lr, end_lr=end_lr,
                     num_iter=num_iter, mode=mode, beta=beta, diverge_factor=diverge_factor, val_batches=held_out,
                     device=device, amp=amp, channels_last=run.channels_last)
        finder._rng_start = finder._rng = dropout_rng
        finder.config, finder.dataset_name = config, dataset.name
        return finder

    # --- state -------------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.points: list[Point] = []
        self.done = False
        self.stop_reason = ""
        self._avg, self._best = 0.0, math.inf
        self._rng = self._rng_start
        self._dirty = False  # the model/optimizer differ from the snapshot
        self.seconds = 0.0

    @property
    def current_lr(self) -> float:
        """The LR of the latest step (start_lr before the first)."""
        return self.points[-1].lr if self.points else self.start_lr

    @property
    def progress(self) -> float:
        """Fraction of num_iter done (1.0 once finished, early stops included)."""
        return 1.0 if self.done else len(self.points) / self.num_iter

    def suggestions(self, skip_start: int | None = None, skip_end: int | None = None) -> dict[str, Suggestion]:
        return suggest(self.lrs, self.smoothed, skip_start=skip_start, skip_end=skip_end)

    # --- stepping ----------------------------------------------------------------------------------------

    def step(self, n: int = 1) -> list[Point]:
        """Advance up to n steps; returns the new points (fewer when the test ends, none once done)."""
        new: list[Point] = []
        if self.done or n <= 0:
            return new
        t0 = time.perf_counter()
        try:
            with self._own_rng():
                while len(new) < n and not self.done:
                    point = self._one_step()
                    if point is not None:
                        new.append(point)
        except BaseException as e:
            self._finish(f"failed: {type(e).__name__}: {e}")
            if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower():
                raise LabError(f"out of memory on {self.device} during the range test: try a smaller batch size "
                               "or a smaller model (the model and optimizer were restored)") from e
            raise
        finally:
            self.seconds += time.perf_counter() - t0
        return new

    def run(self) -> list[Point]:
        """Step to the end (end_lr, an early stop or a failure); returns the whole curve."""
        self.step(self.num_iter)
        return list(self.points)

    def reset(self) -> None:
        """Back to the start: state restored, curve cleared; the next steps repeat the first test exactly."""
        self._restore()
        self._clear()

    def close(self) -> None:
        """Restore the model and optimizer now (a test in progress ends here)."""
        if not self.done:
            self._finish(f"stopped at step {len(self.points)} of {self.num_iter} (closed)")

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Run with the finder's random streams, then give the caller's back."""
        saved = rng_states(self.device)
        set_rng_states(self.device, self._rng)
        try:
            yield
        finally:
            self._rng = rng_states(self.device)
            set_rng_states(self.device, saved)

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.model(x)
        if out.dtype in (torch.float16, torch.bfloat16):  # the loss in float32, as the engine computes it
            out = out.float()
        return self.criterion(out, y.to(self.device, non_blocking=True))

    def _one_step(self) -> Point | None:
        i = len(self.points)
        lr = lr_at_step(i, self.start_lr, self.end_lr, self.num_iter, self.mode)
        self._dirty = True  # from the first change on: the param groups' lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.batch_fn(i)
        self.model.train()
        loss = self._forward_loss(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = loss.item() if self.val_batches is None else self._val_loss()
        if not math.isfinite(value):
            self._finish(NON_FINITE)
            return None
        self._avg = self.beta * self._avg + (1 - self.beta) * value
        smoothed = self._avg / (1 - self.beta ** (i + 1))
        self._best = min(self._best, smoothed)
        point = Point(i, lr, value, smoothed)
        self.points.append(point)
        if self.diverge_factor is not None and i > 0 and smoothed > self.diverge_factor * self._best:
            self._finish(f"smoothed loss exceeded {self.diverge_factor:g}× the best")
        elif i + 1 == self.num_iter:
            self._finish(REACHED_END)
        return point

    @torch.no_grad()
    def _val_loss(self) -> float:
        assert self.val_batches is not None
        self.model.eval()
        try:
            total = torch.zeros((), dtype=torch.float64, device=self.device)
            count = 0
            for x, y in self.val_batches:
                total += self._forward_loss(x, y).double() * len(y)
                count += len(y)
        finally:
            self.model.train()
        return total.item() / count

    def _finish(self, reason: str) -> None:
        self.done, self.stop_reason = True, reason
        self._restore()

    def _restore(self) -> None:
        if not self._dirty:
            return
        self.model.load_state_dict(self._model_state)
        self.optimizer.load_state_dict(copy.deepcopy(self._opt_state))  # loading aliases the given tensors
        for p, g in zip(self._params, self._grads, strict=True):
            p.grad = None if g is None else g.clone()
        self.model.train(self._was_training)
        self._dirty = False


def schedule_for_suggestion(config: TrainConfig, lr: float | None, schedule: str = "onecycle") -> TrainConfig:
    """The config with its (peak) LR set to `lr` and the given schedule - by default a one-cycle that peaks at
    the suggested LR - so a page can draw core.train.schedule.schedule_curve before training."""
    if lr is None:
        raise ConfigError("there is no suggested learning rate to use: run the range test further, or pick one")
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return replace(config, optim=replace(config.optim, lr=float(lr), schedule=schedule))
