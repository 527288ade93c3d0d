"""The files a run folder holds, by name: the checkpoints (LAST, BEST) and which one to load (`checkpoint_for`).

The one home of these names: the engine writes them (core.train.checkpoint), the run library counts, exports and
streams them (core/runs), the pages load them. A leaf without torch, so the run library and the CLI can name a
checkpoint without importing PyTorch.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import LabError

LAST = "last.pt"  # the latest epoch's checkpoint: what a resume continues from, what the final accuracy belongs to
BEST = "best.pt"  # the best test accuracy so far: after an improved epoch a hard link of LAST (keep_as)
CHECKPOINTS = (LAST, BEST)  # the checkpoint files a run folder can hold, LAST first


def checkpoint_for(run_dir: str | Path, which: str = "best") -> Path | None:
    """The checkpoint to load for a run folder, or None when it holds none: `which="best"` is BEST, else LAST
    (a folder without BEST); `which="last"` is LAST only (the final weights, which the recorded final accuracy
    belongs to). LabError for another `which`."""
    order = {"best": (BEST, LAST), "last": (LAST,)}.get(which)
    if order is None:
        raise LabError(f"which must be 'best' or 'last', got {which!r}")
    for name in order:
        path = Path(run_dir) / name
        if path.is_file():
            return path
    return None
