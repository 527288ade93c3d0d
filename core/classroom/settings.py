"""The class settings: the dataset, training/test subsets and device every session starts from.

Kept as one JSON value in the run library's `settings` table (key "class"), so they survive restarts and every
process - the server, the CLI - reads the same. URL parameters still override them for one browser (a deep link).
A folder dataset is checked when set: its class count and images per split, or the DataError saying what is wrong.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Protocol

from core.classroom.roles import TEACHER, Actor, require_teacher
from core.config import DataConfig, TrainConfig
from core.errors import ConfigError

SETTING_KEY = "class"
QUOTA_KEY = "student_quota"
MINUTES_KEY = "minutes_per_run"  # the class time budget per run (a number; 0: none)


class KeyValueStore(Protocol):
    def get_setting(self, key: str, default: str | None = None) -> str | None: ...
    def set_setting(self, key: str, value: object) -> None: ...


@dataclass(frozen=True)
class ClassSettings:
    dataset: str  # cifar100 | cifar10 | synthetic | folder:PATH
    subset: int | None  # training images per run; None = all
    test_subset: int | None
    device: str  # auto | cpu | cuda | cuda:N | mps
    updated: float = 0.0  # unix seconds
    check: str = ""  # what the folder check found when the settings were saved

    def to_dict(self) -> dict:
        return asdict(self)


def _count(value: int | None, what: str) -> int | None:
    if value is None or value == 0:
        return None  # 0 = all
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} must be a whole number >= 0 (0 = all), got {value!r}")
    return value


def validate(dataset: str, subset: int | None, test_subset: int | None, device: str) -> ClassSettings:
    """ClassSettings after the config's own checks (ConfigError with the allowed values)."""
    DataConfig(dataset=dataset)  # raises ConfigError for an unknown dataset name
    TrainConfig(device=device)  # ... and for an unknown device
    return ClassSettings(dataset, _count(subset, "the training subset"), _count(test_subset, "the test subset"),
                         device)


def folder_check(dataset: str) -> str:
    """For folder:PATH, 'N classes, A training and B test images in PATH' (DataError when the folder is not a
    dataset); '' for the built-in datasets."""
    if not dataset.startswith("folder:"):
        return ""
    from core.data.folder import folder_summary  # deferred: imports torch

    s = folder_summary(dataset[7:])
    return f"{len(s.classes)} classes, {s.train_images:,} training and {s.test_images:,} test images in {s.path}"


def load(store: KeyValueStore) -> ClassSettings | None:
    """The saved class settings, or None when the teacher never set them (a hand-edited value counts as unset)."""
    raw = store.get_setting(SETTING_KEY)
    if not raw:
        return None
    try:
        d = json.loads(raw)
        return ClassSettings(dataset=str(d["dataset"]), subset=d.get("subset"), test_subset=d.get("test_subset"),
                             device=str(d.get("device") or "auto"), updated=float(d.get("updated") or 0.0),
                             check=str(d.get("check") or ""))
    except (ValueError, KeyError, TypeError):
        return None


def save(store: KeyValueStore, dataset: str, subset: int | None, test_subset: int | None, device: str = "auto",
         *, actor: Actor = TEACHER, check_folder: bool = True) -> ClassSettings:
    """Validate, check a folder dataset, and keep the settings; nothing is saved when a check fails."""
    require_teacher(actor, "change the class settings")
    settings = validate(dataset, subset, test_subset, device)
    check = folder_check(settings.dataset) if check_folder else ""
    settings = ClassSettings(settings.dataset, settings.subset, settings.test_subset, settings.device,
                             updated=time.time(), check=check)
    store.set_setting(SETTING_KEY, json.dumps(settings.to_dict()))
    return settings


def student_quota(store: KeyValueStore) -> int:
    try:
        return max(0, int(store.get_setting(QUOTA_KEY, "1") or 1))
    except ValueError:
        return 1


def set_student_quota(store: KeyValueStore, n: int, *, actor: Actor = TEACHER) -> None:
    require_teacher(actor, "change the students' run quota")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"the student quota must be a whole number >= 0 (0: students start no runs), got {n!r}")
    store.set_setting(QUOTA_KEY, n)


def minutes_per_run(store: KeyValueStore) -> float | None:
    """The class time budget: runs started in the app are sized to finish within this many minutes on the
    class's device; None when the teacher set none."""
    try:
        value = float(store.get_setting(MINUTES_KEY, "0") or 0)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def set_minutes_per_run(store: KeyValueStore, minutes: float | None, *, actor: Actor = TEACHER) -> None:
    """Set the class time budget (None or 0: none)."""
    require_teacher(actor, "change the class time budget")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int | float)
                                or not 0 <= minutes < 10_000):
        raise ConfigError(f"the minutes per run must be a number >= 0 (0: no budget), got {minutes!r}")
    store.set_setting(MINUTES_KEY, float(minutes or 0))
