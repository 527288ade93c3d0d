"""When a run has diverged: a small detector fed every optimizer step's training loss, and what it found.

The rule (measured, docs/PERFORMANCE.md "When a run diverges"):
  - a non-finite loss (NaN or inf) is divergence at once;
  - otherwise the median of the last `WINDOW_STEPS` step losses is compared with the run's *reference* loss,
    max(the first step's loss, ln(classes)). When the median is above `RISE_FACTOR` × the reference the loss has
    risen far above where it started and stayed there: diverged.

Why a median over a window: one hard batch (or the noisy first steps of Adam) can spike a single step's loss; a
median needs more than half the window to be that high, so it fires only on a loss that stays up. Why ln(classes)
in the reference: a network that guesses uniformly scores ln(classes) (2.30 for 10 classes, 4.61 for 100) with or
without label smoothing; a resumed or pretrained run that starts far below it may wander back up near chance (a
new epoch's augmentation, a warm-up) without having diverged, so "far above" is measured from chance at least.
Pure Python: the engine feeds it the losses it reads back anyway, so it costs no extra device sync.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

# Steps the median is taken over. 10 steps: a run of the cnn preset at lr 0.4 or 100 is caught at step 10, inside
# the first epoch of any set of 2,560 images or more at batch 256; one or four spiking steps out of ten never fire.
WINDOW_STEPS = 10
# "Far above", as a multiple of the reference loss (dimensionless). Measured per step on 5,000 CIFAR-10 images
# (docs/PERFORMANCE.md): the report's presets at their own settings stayed at or below 1.0× the reference, except
# cnn-bn (Adam 1e-4 with batch norm), whose loss jumps to 2.7× at step 2 and is back under 1.1× by step 10: its
# highest 10-step median was 1.6×. The cnn preset at lr 0.4 and 100 had a first 10-step median of 130× and 1.5e16×.
# 3× sits between them with a margin of ~2× below and ~40× above.
RISE_FACTOR = 3.0


@dataclass(frozen=True)
class Divergence:
    """Where and how a run diverged: plain numbers, ready for a Finished event."""

    epoch: int  # 1-based epoch of the step that showed it
    step: int  # optimizer step (whole run, 1-based) that showed it
    loss: float  # the non-finite loss, or the window's median training loss
    start: float  # the run's first training loss (what "where it started" means)
    non_finite: bool  # the loss became NaN or inf (else it rose far above the start and stayed there)

    def reason(self, lr: float | None = None) -> str:
        """What happened, in words, and what to do: "diverged at epoch 1, step 40: loss 2.1e+07 (started at 4.6) -
        the learning rate (0.4) is too high: train again at a tenth of it (0.04)"."""
        what = f"diverged at epoch {self.epoch}, step {self.step}: loss {self.loss:.3g} (started at {self.start:.3g})"
        if lr is None or not math.isfinite(lr) or lr <= 0:
            return f"{what} - the learning rate is too high: train again at a tenth of it"
        return f"{what} - the learning rate ({lr:.3g}) is too high: train again at a tenth of it ({lr / 10:.3g})"


class DivergenceDetector:
    """Feed it every step's training loss in order; `feed` returns a Divergence the first time the rule fires
    (and every time after that), else None."""

    def __init__(self, num_classes: int, *, window: int = WINDOW_STEPS, factor: float = RISE_FACTOR) -> None:
        if window < 1 or not factor > 1:
            raise ValueError(f"window must be >= 1 and factor > 1, got {window} and {factor}")
        self.chance = math.log(max(2, num_classes))  # loss of a uniform guess
        self.window = window
        self.factor = factor
        self.start: float | None = None  # the first loss fed
        self.recent: deque[float] = deque(maxlen=window)
        self.found: Divergence | None = None

    @property
    def reference(self) -> float | None:
        """The loss "far above" is measured from: max(first loss, ln(classes)); None before the first step."""
        return None if self.start is None else max(self.start, self.chance)

    @property
    def threshold(self) -> float | None:
        """The window median above which the run has diverged; None before the first step."""
        ref = self.reference
        return None if ref is None else self.factor * ref

    def feed(self, step: int, epoch: int, loss: float) -> Divergence | None:
        """One optimizer step's training loss (step: whole-run, 1-based; epoch: 1-based)."""
        if self.found is not None:
            return self.found
        loss = float(loss)
        if not math.isfinite(loss):
            start = self.start if self.start is not None else loss
            self.found = Divergence(epoch, step, loss, start, non_finite=True)
            return self.found
        if self.start is None:
            self.start = loss
        self.recent.append(loss)
        if len(self.recent) < self.window:
            return None
        median = statistics.median(self.recent)
        threshold = self.threshold
        if threshold is not None and median > threshold:
            self.found = Divergence(epoch, step, median, self.start, non_finite=False)
        return self.found
