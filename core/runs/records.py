"""Plain-data views of the run library's rows: RunRecord (a run), Progress (its latest step) and EpochRow.

Frozen dataclasses of numbers and strings (the config as a TrainConfig), nothing Streamlit-specific, so a page
can keep, compare and chart them freely. `record_from_row` turns an SQLite row of the `runs` table into one.
The statuses (RUN_STATUSES, ACTIVE) are core/runs/lifecycle.py's, named here for the pages that list them;
`resume_blocker` says in words why a run's status (or its missing checkpoint) rules out a resume.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from core.config import TrainConfig, from_json, to_dict
from core.runs.lifecycle import ACTIVE, ENDINGS
from core.runs.lifecycle import STATUSES as RUN_STATUSES

__all__ = ["ACTIVE", "EPOCH_FIELDS", "MISSING", "RUN_STATUSES", "EpochRow", "Progress", "RunRecord", "default_run",
           "diverged_reason", "diverged_summary", "or_missing", "record_from_row", "resume_blocker", "retry_lr"]
MISSING = "—"  # what a page or the CLI shows for a value a run does not have (yet): never "None" or "nan"
EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s")


@dataclass(frozen=True)
class Progress:
    """The latest step-level progress of a run (written at most ~2 times a second)."""

    step: int  # optimizer steps done, whole run
    total_steps: int
    epoch: int  # 1-based epoch the step belongs to
    loss: float | None  # mean training loss of the latest window
    lr: float | None
    images_per_s: float | None
    updated: float  # unix seconds

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


@dataclass(frozen=True)
class EpochRow:
    epoch: int
    train_loss: float | None
    train_acc: float | None
    test_loss: float | None
    test_acc: float | None
    lr: float | None
    seconds: float | None
    images_per_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRecord:
    """One run as plain data. Accuracies are fractions in [0, 1]; times are unix seconds."""

    id: str
    name: str
    preset: str | None
    config: TrainConfig
    dataset: str
    model: str
    device: str
    status: str  # queued | running | completed | stopped | diverged | failed (core/runs/lifecycle.py)
    reason: str  # "" unless something went wrong or it was stopped
    created: float
    started: float | None
    finished: float | None
    started_by: str  # app | cli | import
    owner: str  # worker | terminal (a CLI process trains it itself)
    params: int | None
    trainable_params: int | None
    train_size: int | None
    test_size: int | None
    num_classes: int | None
    steps_per_epoch: int | None
    epochs_done: int
    test_acc: float | None  # latest epoch's test accuracy (the final one once finished)
    best_test_acc: float | None
    seconds: float
    per_class_acc: tuple[float, ...]  # NaN for classes absent from the test set
    sweep_id: str | None
    tags: str | None
    notes: str | None
    messages: str
    pid: int | None
    host: str | None
    heartbeat: float | None
    stop_requested: bool
    resume_requested: bool
    queue_order: int | None
    data_dir: str | None
    download: bool
    progress: Progress | None
    by_role: str = "teacher"  # who started it: teacher | student (core.classroom.roles)
    by_name: str = "teacher"  # a student's nickname
    backend: str = "local"  # local | ray (schema v4; older rows read as local)
    cluster: str | None = None  # the Ray dashboard address a ray run was sent to
    job_id: str | None = None  # the Ray job's submission id (the latest, after a resume)
    reattach_pending: bool = False  # queued to re-attach to job_id, its follower having died (schema v5)
    reattaches: int = 0  # how many times the lab re-attached to its job

    @property
    def by_student(self) -> bool:
        return self.by_role == "student"

    @property
    def epochs(self) -> int:
        """Epochs the run is set to train."""
        return self.config.epochs

    @property
    def imported(self) -> bool:
        return self.started_by == "import"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def eta_s(self) -> float | None:
        """Seconds of training left at the latest throughput (evaluation time not included)."""
        p = self.progress
        if self.status != "running" or p is None or not p.images_per_s or not p.total_steps:
            return None
        return max(0, p.total_steps - p.step) * self.config.batch_size / p.images_per_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (config as a dict, NaN as None)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["config"] = to_dict(self.config)
        out["per_class_acc"] = [_clean(x) for x in self.per_class_acc]
        out["progress"] = asdict(self.progress) if self.progress else None
        return out


def default_run(runs: Sequence[RunRecord], dataset: str | None = None) -> RunRecord | None:
    """The run a picker opens on: the best completed run on `dataset` (accuracies of different datasets do not
    compare), else the best completed run of any dataset, else the first given (the newest, as listed)."""
    done = [r for r in runs if r.status == "completed" and r.best_test_acc is not None]
    here = [r for r in done if r.dataset == dataset]
    pool = here or done
    if pool:
        return max(pool, key=lambda r: r.best_test_acc)  # max keeps the first (newest) of equal accuracies
    return runs[0] if runs else None


def resume_blocker(run: RunRecord, has_checkpoint: bool) -> str:
    """Why `resume` cannot continue this run ('' when it can): a sentence that says what to do instead.
    A run that failed before its first step has nothing to continue, and its settings would fail the same way
    (a wrong image folder, a missing dataset): the user fixes the cause and starts a new run."""
    if run.status in ACTIVE:
        return f"run {run.id} is already {run.status}"
    if run.status == "completed":
        return f"run {run.id} already completed its {run.epochs} epochs: start a new run to train more"
    if run.status == "diverged":
        return (f"run {run.id} diverged: resuming it would diverge again the same way; train again at a tenth of "
                f"the LR ({run.config.optim.lr / 10:.3g})")
    if not ENDINGS.get(run.status, False):
        return f"run {run.id} {run.status}: it cannot be resumed; start a new run"
    trained = run.epochs_done > 0 or (run.progress is not None and run.progress.step > 0)
    if run.status == "failed" and not trained and not run.imported:
        return (f"run {run.id} failed before training started ({run.reason or 'see its log'}): there is nothing "
                f"to continue; fix that and start a new run")
    if not has_checkpoint and (trained or run.imported):
        return f"cannot resume run {run.id}: its checkpoint is missing; start a new run with the same settings instead"
    return ""


def retry_lr(run: RunRecord) -> float:
    """The learning rate to train a diverged run again at: a tenth of its own."""
    return run.config.optim.lr / 10


def diverged_reason(run: RunRecord) -> str:
    """Why a diverged run ended, in words ('' for any other status): the engine's reason ("diverged at epoch 1,
    step 10: loss 3.2e+19 (started at 2.3) - the learning rate (100) is too high: train again at a tenth of it
    (10)"), else (an imported or older row without one) the same advice from its config."""
    if run.status != "diverged":
        return ""
    if run.reason:
        return run.reason
    lr = run.config.optim.lr
    return (f"diverged - the learning rate ({lr:.3g}) is too high: train again at a tenth of it "
            f"({retry_lr(run):.3g})")


def diverged_summary(run: RunRecord) -> str:
    """A diverged run in a few words, for a takeaway: "diverged at step 40: the learning rate (0.4) is too high"
    (the step read off its reason; '' for any other status)."""
    if run.status != "diverged":
        return ""
    found = re.search(r"step (\d+)", run.reason or "")
    where = f" at step {found.group(1)}" if found else ""
    return f"diverged{where}: the learning rate ({run.config.optim.lr:.3g}) is too high"


def or_missing(value: Any, spec: str = "") -> str:
    """`value` formatted with `spec` (format()'s mini-language: "," or ".1%"), or MISSING ("—") when there is
    none: None, NaN or inf. For tables and lines a person reads, which must never say "None" or "nan"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return format(value, spec)


def _clean(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def record_from_row(row: sqlite3.Row) -> RunRecord:
    keys = row.keys()
    progress = None
    if row["step"] is not None:
        progress = Progress(step=row["step"], total_steps=row["total_steps"] or 0, epoch=row["epoch"] or 0,
                            loss=row["loss"], lr=row["lr"], images_per_s=row["images_per_s"],
                            updated=row["progress_at"] or 0.0)
    pca = json.loads(row["per_class_acc"]) if "per_class_acc" in keys and row["per_class_acc"] else []
    values: dict[str, Any] = {f.name: row[f.name] for f in fields(RunRecord)
                              if f.name in keys and f.name not in ("config", "progress", "per_class_acc")}
    values.update(config=from_json(row["config"]), progress=progress,
                  per_class_acc=tuple(math.nan if v is None else float(v) for v in pca),
                  stop_requested=bool(row["stop_requested"]), resume_requested=bool(row["resume_requested"]),
                  reattach_pending=bool(row["reattach_pending"]) if "reattach_pending" in keys else False,
                  download=bool(row["download"]))
    for name in ("sweep_id", "tags", "notes"):
        values.setdefault(name, None)
    return RunRecord(**values)
