"""The small frozen events a training run yields: plain numbers and strings, never tensors.

The same event goes to the CLI's `--json` line, to the run library, and to a test's `list(train(...))`.
`to_dict` adds the field `event` (its kind) and stays JSON-serializable.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("completed", "stopped", "diverged", "failed")


@dataclass(frozen=True)
class RunStarted:
    params: int  # trainable + frozen parameters of the model
    trainable_params: int
    device: str  # e.g. "cpu", "cuda:0"
    dataset: str
    model: str
    train_size: int  # images per training epoch
    test_size: int
    num_classes: int
    steps_per_epoch: int
    epochs: int
    start_epoch: int = 1  # > 1 when resuming
    event: str = field(default="started", init=False)


@dataclass(frozen=True)
class Step:
    epoch: int  # 1-based
    step: int  # optimizer steps done so far, whole run
    total_steps: int
    loss: float  # mean training loss over the steps since the previous Step event
    lr: float  # learning rate of the latest step
    images_per_s: float  # training throughput since the previous Step event
    event: str = field(default="step", init=False)


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    train_loss: float  # mean over the epoch's (augmented) batches
    train_acc: float  # fraction in [0, 1]
    test_loss: float
    test_acc: float  # fraction in [0, 1]
    lr: float  # learning rate at the end of the epoch
    seconds: float  # wall time of the epoch, evaluation included
    images_per_s: float  # training images per second (evaluation excluded)
    event: str = field(default="epoch", init=False)


@dataclass(frozen=True)
class Note:
    message: str  # something worth telling the user that is not an error (e.g. torch.compile fell back)
    event: str = field(default="note", init=False)


@dataclass(frozen=True)
class Finished:
    status: str  # completed | stopped | diverged | failed
    reason: str  # "" when completed; otherwise what happened, in words
    test_acc: float | None  # final test accuracy (fraction), None if no epoch finished
    best_test_acc: float | None
    epochs_done: int
    seconds: float
    per_class_acc: tuple[float, ...] = ()  # final test accuracy of each class (index = label), when known
    # Where a diverged run showed it (core.train.divergence); None otherwise:
    epoch: int | None = None  # 1-based epoch
    step: int | None = None  # optimizer step, whole run
    loss: float | None = None  # the training loss that showed it (a window's median, or NaN / inf; a test loss
    #                            when the evaluation was the first to go non-finite)
    event: str = field(default="finished", init=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


Event = RunStarted | Step | EpochEnd | Note | Finished

_KINDS = {cls.__dataclass_fields__["event"].default: cls for cls in (RunStarted, Step, EpochEnd, Note, Finished)}


def to_dict(event: Event) -> dict[str, Any]:
    """JSON-ready dict; non-finite floats become None (JSON has no NaN)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return {k: clean(v) for k, v in dataclasses.asdict(event).items()}


def from_dict(data: dict[str, Any]) -> Event:
    """Inverse of to_dict (extra keys such as run_id are ignored)."""
    cls = _KINDS[data["event"]]
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    values = {k: v for k, v in data.items() if k in names}
    if "per_class_acc" in values:
        values["per_class_acc"] = tuple(values["per_class_acc"] or ())
    return cls(**values)
