"""How long a run will take, before it starts: the arithmetic, the rates it uses and where they are kept.

A run's time = set-up (process start, data, model) + the first steps' warm-up + epochs × (training images ÷
training img/s + test images ÷ evaluation img/s). The rates belong to a `RateKey` - model (name and options),
device, precision, batch size, image size - and come from a short calibration the first time that key runs on a
device (core.train.calibrate), then from every finished run (`measured_rate`, folded in by `refine`: an
exponential average). They are kept in the run library's key/value `settings` table (`load_rate` / `save_rate`
take its getter and setter, so this module needs neither torch nor the library). Pure Python.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from core.config import TrainConfig
from core.train.events import EpochEnd, Event, Finished, RunStarted

SETTING_PREFIX = "estimate.rate:"  # settings-table keys: this + the RateKey as JSON
# Weight of the newest finished run in the exponential average of rates (dimensionless, 0..1): a run measured on a
# busy machine moves the estimate halfway, not all the way. A calibration-only rate (runs == 0) is replaced
# outright by the first run: a whole run measures everything the few calibration steps only sample.
REFINE_WEIGHT = 0.5
# Seconds for a fresh process to start Python and import torch and the lab before train() is called: measured
# 3.3 s (`python -c "import core.cli, core.train.engine, core.runs.recorder"`, twice) on the 2-core AMD EPYC
# (Zen 4) here, shared; rounded up for the run library's own start-up.
PROCESS_START_S = 3.5


@dataclass(frozen=True)
class RateKey:
    """What a measured speed is valid for."""

    model: str  # the model's name and options, e.g. 'cnn {"widths": [128, 128, 128, 256]}'
    device: str  # "cpu" or the GPU's name, e.g. "cuda:NVIDIA H100 80GB HBM3"
    precision: str  # "bf16" | "fp32" (the training forward pass)
    batch_size: int
    image_size: int  # pixels per side the model sees

    @property
    def setting(self) -> str:
        """The settings-table key."""
        return SETTING_PREFIX + json.dumps(asdict(self), sort_keys=True)


def rate_key(config: TrainConfig, device: str, bf16: bool) -> RateKey:
    """The key of a run of `config` on `device` (a label, see RateKey.device); bf16: whether it trains in bf16."""
    options = dict(config.model.options)
    text = config.model.name + (" " + json.dumps(options, sort_keys=True, default=list) if options else "")
    return RateKey(text, device, "bf16" if bf16 else "fp32", config.batch_size, int(options.get("image_size", 32)))


@dataclass(frozen=True)
class Rate:
    """Speeds of one RateKey."""

    train_ips: float  # training images per second (forward, backward, optimizer step, augmentation)
    eval_ips: float  # evaluation images per second (forward only, fp32 on the CPU)
    warmup_s: float  # extra seconds the first steps take (first-batch set-up, torch.compile, graph capture)
    setup_s: float  # seconds before the first step, after the process has started: data, model, optimizer
    runs: int = 0  # finished runs folded in; 0: a calibration only

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Rate | None:
        """The rate written by to_json; None for anything else (an older or damaged value)."""
        try:
            rate = cls(**json.loads(text))
        except (ValueError, TypeError):
            return None
        ok = all(math.isfinite(v) for v in (rate.train_ips, rate.eval_ips, rate.warmup_s, rate.setup_s))
        return rate if ok and rate.train_ips > 0 and rate.eval_ips > 0 else None


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the whole run, from the command to its last event
    basis: str  # what it rests on, in words: "calibrated: 312 img/s train, 1,020 img/s eval"

    def to_dict(self) -> dict[str, float | str]:
        return {"seconds": self.seconds, "basis": self.basis}


def estimate(config: TrainConfig, rate: Rate, train_images: int, test_images: int, *,
             process_start_s: float = PROCESS_START_S) -> Estimate:
    """Seconds a run of `config` takes at `rate` on `train_images` training and `test_images` test images (the
    config's subsets already applied): start-up, set-up and warm-up once, then every epoch trains on every
    training image and evaluates the whole test set."""
    per_epoch = train_images / rate.train_ips + test_images / rate.eval_ips
    seconds = process_start_s + rate.setup_s + rate.warmup_s + config.epochs * per_epoch
    return Estimate(seconds, basis(rate))


def basis(rate: Rate) -> str:
    """What an estimate rests on: 'calibrated: 312 img/s train, 1,020 img/s eval' or 'measured over 3 runs: ...'."""
    where = "calibrated" if rate.runs == 0 else f"measured over {rate.runs} run{'s' if rate.runs > 1 else ''}"
    return f"{where}: {rate.train_ips:,.0f} img/s train, {rate.eval_ips:,.0f} img/s eval"


def duration_text(seconds: float) -> str:
    """'40 s', '12 min', '2.5 h' (rounded as a person says it)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_text(e: Estimate, where: str) -> str:
    """The human line: '≈ 40 s on this CPU (calibrated: 312 img/s train, 1,020 img/s eval)'."""
    return f"≈ {duration_text(e.seconds)} on {where} ({e.basis})"


def refine(old: Rate | None, new: Rate, weight: float = REFINE_WEIGHT) -> Rate:
    """`old` with a finished run's measured rate `new` folded in (exponential average, `weight` on `new`); a
    calibration-only or missing `old` is replaced by `new`. Rates average as times per image, so one slow run
    moves the estimate's seconds by `weight` of the difference."""
    if old is None or old.runs == 0:
        return Rate(new.train_ips, new.eval_ips, new.warmup_s, new.setup_s, runs=max(1, new.runs))

    def mix(a: float, b: float) -> float:
        return (1 - weight) * a + weight * b

    return Rate(1 / mix(1 / old.train_ips, 1 / new.train_ips), 1 / mix(1 / old.eval_ips, 1 / new.eval_ips),
                mix(old.warmup_s, new.warmup_s), mix(old.setup_s, new.setup_s), runs=old.runs + 1)


@dataclass(frozen=True)
class EpochTiming:
    """One finished epoch as the engine's EpochEnd reports it."""

    seconds: float  # wall time of the epoch, evaluation included
    images_per_s: float  # training images per second (evaluation excluded)


def measured_rate(train_images: int, test_images: int, epochs: Sequence[EpochTiming],
                  run_seconds: float) -> Rate | None:
    """The rate a finished run showed: training img/s of its steady epochs (the 2nd on; the 1st alone when it
    ran one), evaluation img/s from what each epoch spent beyond training, the 1st epoch's extra training time
    as the warm-up, and the time before its first epoch as the set-up. None when it did not finish an epoch.
    run_seconds: the engine's Finished.seconds (from train() being called to the end)."""
    good = [e for e in epochs if e.images_per_s > 0 and e.seconds > 0]
    if not good or train_images <= 0:
        return None
    train_s = [train_images / e.images_per_s for e in good]
    steady = train_s[1:] or train_s
    steady_train = sum(steady) / len(steady)
    eval_s = [max(1e-6, e.seconds - t) for e, t in zip(good, train_s)]
    eval_ips = max(1.0, test_images) / (sum(eval_s) / len(eval_s))
    warmup = max(0.0, train_s[0] - steady_train) if len(good) > 1 else 0.0
    setup = max(0.0, run_seconds - sum(e.seconds for e in good))
    return Rate(train_images / steady_train, eval_ips, warmup, setup, runs=1)


def load_rate(get_setting: Callable[[str], str | None], key: RateKey) -> Rate | None:
    """The rate kept for `key` (get_setting: the run library's), None when there is none yet."""
    text = get_setting(key.setting)
    return Rate.from_json(text) if text else None


def save_rate(set_setting: Callable[[str, str], None], key: RateKey, rate: Rate) -> None:
    set_setting(key.setting, rate.to_json())



def refine_stored(get_setting: Callable[[str], str | None], set_setting: Callable[[str, str], None], key: RateKey,
                  measured: Rate) -> Rate:
    """Fold a finished run's measured rate into the one kept for `key`; returns what is kept now."""
    rate = refine(load_rate(get_setting, key), measured)
    save_rate(set_setting, key, rate)
    return rate


class RunTiming:
    """Watches one run's events and, when it completes, gives the rate it showed (measured_rate). A resumed run
    (its set-up loads a checkpoint, its epochs are a part of the run) and an unfinished one give none."""

    def __init__(self) -> None:
        self.sizes: tuple[int, int] | None = None  # training and test images
        self.epochs: list[EpochTiming] = []

    def observe(self, event: Event) -> Rate | None:
        if isinstance(event, RunStarted):
            self.sizes = (event.train_size, event.test_size) if event.start_epoch == 1 else None
            self.epochs = []
        elif isinstance(event, EpochEnd):
            self.epochs.append(EpochTiming(event.seconds, event.images_per_s))
        elif isinstance(event, Finished) and event.status == "completed" and self.sizes is not None:
            return measured_rate(*self.sizes, self.epochs, event.seconds)
        return None
