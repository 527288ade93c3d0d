"""A run's time before it starts, and the class time budget: size a run to finish within M minutes here.

`run_estimate` turns a stored rate (core.train.estimate.Rate, None when this model has not been timed on this
device yet) into the Estimate of a config, its subsets applied to the dataset's split sizes. `fit_to_budget`
cuts a config to a budget - epochs first, then, when even one epoch is too long, training images (a smaller
stratified subset) - and returns what it cut as plain data (`Cut`). `start_label` and `total_text` are the words
the app puts on its Start and Queue buttons. Pure Python: no torch, no streamlit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.config import TrainConfig
from core.train.estimate import Estimate, Rate, duration_text, estimate

MIN_IMAGES = 100  # the fewest training images a cut keeps: below this a run teaches nothing worth its wait
UNKNOWN_TEXT = "time: measured on its first run here"
OVER_TEXT = "longer than the class budget"

EstimateFn = Callable[[TrainConfig], float | None]  # a config's seconds here, None when unknown


def run_images(config: TrainConfig, train_total: int, test_total: int) -> tuple[int, int]:
    """The training and test images a run of `config` uses: its subsets, at most the dataset's split sizes."""
    d = config.data
    return (min(d.subset, train_total) if d.subset else train_total,
            min(d.test_subset, test_total) if d.test_subset else test_total)


def run_estimate(config: TrainConfig, rate: Rate | None, train_total: int, test_total: int) -> Estimate | None:
    """The Estimate of a run of `config` at `rate` on a dataset of train_total/test_total images; None without a
    rate (this model was never timed on this device)."""
    if rate is None:
        return None
    return estimate(config, rate, *run_images(config, train_total, test_total))


def estimator(rate: Rate | None, train_total: int, test_total: int) -> EstimateFn:
    """`run_estimate`'s seconds as an EstimateFn, for fit_to_budget (one rate: a cut changes no rate key)."""
    def seconds(config: TrainConfig) -> float | None:
        e = run_estimate(config, rate, train_total, test_total)
        return None if e is None else e.seconds
    return seconds


@dataclass(frozen=True)
class Cut:
    """What fit_to_budget cut to fit `minutes`: epochs and training images, from -> to, and the seconds."""

    minutes: float
    epochs_from: int
    epochs_to: int
    images_from: int
    images_to: int
    seconds_from: float
    seconds_to: float

    @property
    def fits(self) -> bool:
        """False when even MIN_IMAGES images for one epoch take longer than the budget."""
        return self.seconds_to <= self.minutes * 60

    def text(self) -> str:
        """'Cut to 3 epochs and 2,000 images to fit 2 minutes' (the parts that changed)."""
        parts = []
        if self.epochs_to != self.epochs_from:
            parts.append(f"{self.epochs_to} epoch{'s' if self.epochs_to != 1 else ''}")
        if self.images_to != self.images_from:
            parts.append(f"{self.images_to:,} images")
        minutes = f"{self.minutes:g} minute{'s' if self.minutes != 1 else ''}"
        head = f"Cut to {' and '.join(parts)} to fit {minutes}" if parts else f"Not cut ({minutes})"
        return head if self.fits else head + f" - still ≈ {duration_text(self.seconds_to)}, over the budget"


def _with(config: TrainConfig, epochs: int, images: int | None) -> TrainConfig:
    data = config.data if images is None else dataclasses.replace(config.data, subset=images)
    return dataclasses.replace(config, epochs=epochs, data=data)


def _largest(lo: int, hi: int, fits: Callable[[int], bool]) -> int:
    """The largest n in [lo, hi] with fits(n) (fits: monotone, true up to some n); lo when none fits."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def round_images(n: int) -> int:
    """n rounded down to two significant figures (2,000 not 2,047), never below MIN_IMAGES."""
    if n < 100:
        return max(MIN_IMAGES, n)
    step = 10 ** (len(str(n)) - 2)
    return max(MIN_IMAGES, n // step * step)


def fit_to_budget(config: TrainConfig, estimate_fn: EstimateFn, minutes: float | None, *,
                  train_images: int | None = None) -> tuple[TrainConfig, Cut | None]:
    """`config` sized to finish within `minutes` by `estimate_fn`: fewer epochs first; when even one epoch is too
    long, fewer training images too (a stratified subset, two significant figures). Returns the config and what was
    cut, or (config, None) when it fits already, there is no budget (None or <= 0) or no estimate.
    train_images: the images a run of `config` trains on (its subset applied); default config.data.subset (a
    config training on a whole dataset of unknown size gets its epochs cut only)."""
    seconds = estimate_fn(config)
    if not minutes or minutes <= 0 or seconds is None or seconds <= minutes * 60:
        return config, None
    budget = minutes * 60
    images = train_images if train_images is not None else config.data.subset

    def fits(c: TrainConfig) -> bool:
        s = estimate_fn(c)
        return s is not None and s <= budget

    epochs = _largest(1, config.epochs, lambda e: fits(_with(config, e, None)))
    out, new_images = _with(config, epochs, None), images or 0
    if not fits(out) and images and images > MIN_IMAGES:
        new_images = round_images(_largest(MIN_IMAGES, images, lambda k: fits(_with(config, 1, k))))
        out = _with(config, 1, new_images)
    return out, Cut(float(minutes), config.epochs, out.epochs, images or 0, new_images, seconds,
                    estimate_fn(out) or 0.0)


def report_text(epochs: int, images: int) -> str:
    """'the report trained 20 epochs on 50,000'."""
    return f"the report trained {epochs} epochs on {images:,}"


def start_label(action: str, e: Estimate | None, where: str, minutes: float | None = None) -> str:
    """A button's label with its time: '▶ Start (≈ 40 s on this CPU)', '▶ Start (≈ 18 min — longer than the
    class budget)', '▶ Start (time: measured on its first run here)'."""
    if e is None:
        return f"{action} ({UNKNOWN_TEXT})"
    if minutes and e.seconds > minutes * 60:
        return f"{action} (≈ {duration_text(e.seconds)} — {OVER_TEXT})"
    return f"{action} (≈ {duration_text(e.seconds)} on {where})"


def total_text(estimates: Sequence[Estimate | None], where: str) -> str:
    """Several runs one after another: '≈ 25 min on this CPU', '≈ 25 min on this CPU + 3 of 12 not timed yet',
    or 'time: measured on their first runs here' when none is known."""
    known = [e.seconds for e in estimates if e is not None]
    unknown = len(estimates) - len(known)
    if not known:
        return "time: measured on their first runs here"
    text = f"≈ {duration_text(sum(known))} on {where}"
    return text + (f" + {unknown} of {len(estimates)} not timed yet" if unknown else "")
