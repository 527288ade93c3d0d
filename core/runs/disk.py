"""What the run library takes on disk (a run's folder is mostly its checkpoints: the cnn preset's last.pt is
200 MB with its Adam state) and whether the disk that holds it has room for the next runs. Plain data for the
run library page and `python -m core runs`, and whether runs about to be queued fit (the report card)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.config import TrainConfig
from core.space import free_or_none, size_text
from core.train.files import LAST

# Warn below this much free space, or below room for LOW_RUNS checkpoints of the largest run here.
LOW_FREE_BYTES = 2 * 10**9
LOW_RUNS = 3


@dataclass(frozen=True)
class DiskUsage:
    """Bytes the run folders take (a file hard-linked twice, best.pt = last.pt, counted once) and are free."""

    root: str
    used: int
    free: int | None  # None when the disk could not say
    per_run: dict[str, int]
    largest_checkpoint: int  # the biggest last.pt here: about what one more run of that model needs

    def warning(self) -> str:
        """A sentence for the teacher when the disk is running out ('' when there is room)."""
        room = max(LOW_FREE_BYTES, LOW_RUNS * self.largest_checkpoint)
        if self.free is None or self.free >= room:
            return ""
        need = (f"; one checkpoint of the largest model here takes {size_text(self.largest_checkpoint)}"
                if self.largest_checkpoint else "")
        return (f"Only {size_text(self.free)} free on the disk of the run library ({self.root}){need}. A run "
                f"that cannot write its checkpoint fails; delete runs you no longer need.")

    def summary(self) -> str:
        """'All runs take 1.2 GB on disk in ROOT; 40.5 GB free.'"""
        free = "" if self.free is None else f"; {size_text(self.free)} free"
        return f"All runs take {size_text(self.used)} on disk in {self.root}{free}."


def folder_bytes(folder: Path, seen: set[tuple[int, int]]) -> int:
    """Bytes of the files under `folder`, skipping inodes already in `seen` (and adding its own)."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:  # removed meanwhile (a run deleted, a .tmp replaced)
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_size
    return total


def disk_usage(root: str | Path, run_ids: Iterable[str]) -> DiskUsage:
    """What the runs in `run_ids` take under `root`, and the free space there."""
    root = Path(root)
    seen: set[tuple[int, int]] = set()
    per_run = {run_id: folder_bytes(root / run_id, seen) for run_id in run_ids}
    largest = 0
    for run_id in per_run:
        try:
            largest = max(largest, (root / run_id / LAST).stat().st_size)
        except OSError:
            continue
    return DiskUsage(str(root), sum(per_run.values()), free_or_none(root), per_run, largest)


@dataclass(frozen=True)
class Room:
    """Whether the checkpoints of runs about to be queued fit on the run library's disk."""

    need: int  # bytes: one checkpoint per run
    free: int | None

    @property
    def fits(self) -> bool:
        return self.free is None or self.need <= self.free

    def text(self) -> str:
        if self.free is None:
            return f"Their checkpoints will take about {size_text(self.need)}."
        if self.fits:
            return f"Their checkpoints will take about {size_text(self.need)} ({size_text(self.free)} free)."
        return (f"Their checkpoints need about {size_text(self.need)} but only {size_text(self.free)} are free on "
                f"the run library's disk: the later runs would not start. Delete runs you no longer need first.")


def room_for(configs: Iterable[TrainConfig], root: str | Path) -> Room:
    """The room the checkpoints of `configs` need (core.train.memory's estimate: weights + optimizer state) and
    what the disk of `root` has."""
    from core.train.memory import estimate_run_memory  # torch: only where runs are about to be queued

    return Room(sum(estimate_run_memory(c, "cpu").checkpoint for c in configs), free_or_none(root))
