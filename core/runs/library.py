"""The run library: every training run of the lab - from the app, the CLI or an import - in one place.

    lib = open_library()                      # $CIFAR_LAB_RUNS or ./runs; migrates and recovers on open
    run_id = lib.submit(config, preset="cnn")  # queued, then trained by a detached trainer process
    lib.get(run_id); lib.curves(run_id)        # poll every second: one row + its epochs, plain dataclasses
    lib.request_stop(run_id); lib.resume(run_id); lib.queue_position(run_id); lib.delete(run_id)

Storage (SQLite in WAL mode + a folder per run with last.pt / best.pt / train.log) is store.py; the queue,
trainer processes and crash recovery are queue.py (its docstring says exactly how a trainer is started and
supervised); event recording and `cli_recorder` are recorder.py; export/import is transfer.py. This module
only picks the folder and hands out library objects.
Nothing here imports streamlit, nor torch until a run is submitted.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from core.runs.queue import RunLibrary

_LIBRARIES: dict[Path, RunLibrary] = {}
_LOCK = threading.Lock()


def runs_root(override: str | Path | None = None) -> Path:
    """Where the run library lives: `override`, else $CIFAR_LAB_RUNS, else ./runs (absolute, not created)."""
    root = override if override not in (None, "") else os.environ.get("CIFAR_LAB_RUNS") or "runs"
    return Path(root).expanduser().resolve()


def open_library(runs_dir: str | Path | None = None, *, recover: bool = True) -> RunLibrary:
    """The library in `runs_dir` (see runs_root), created or migrated on first use in this process.
    With recover=True (the default) runs whose process died are marked failed and queues are kicked
    (throttled: at most once a second per process, so a page may call this on every poll)."""
    root = runs_root(runs_dir)
    with _LOCK:
        lib = _LIBRARIES.get(root)
        if lib is None:
            lib = _LIBRARIES[root] = RunLibrary(root)
    if recover:
        lib.recover()
    return lib
