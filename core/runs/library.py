"""The run library: every training run of the lab - from the app, the CLI or an import - in one place.

    lib = open_library()                      # $CIFAR_LAB_RUNS or ./runs; migrates and recovers on open
    run_id = lib.submit(config, preset="cnn")  # queued, then trained by a detached trainer process
    lib.get(run_id); lib.curves(run_id)        # poll every second: one row + its epochs, plain dataclasses
    lib.request_stop(run_id); lib.resume(run_id); lib.queue_position(run_id); lib.delete(run_id)

`RunLibrary` is a façade that holds one owner per concern and adds the class-mode rules (who may do what):
storage (`store`, core/runs/store.py), a run's status (core/runs/lifecycle.py, the only writer of it), the
queue (core/runs/scheduler.py), trainer processes and crash recovery (`supervisor`, core/runs/supervisor.py).
It is what ui/, pages/ and core/cli/ use of core.runs, beside the plain records (core/runs/records.py) and the
concerns of their own: sweeps, transfer (export/import: `transfer.export_run(lib, ...)`), disk, cluster.
Event recording and `cli_recorder` are core/runs/recorder.py. Nothing here imports streamlit, nor torch until a
run is submitted.

Class mode
  Every action takes an `actor` (core.classroom.roles; the teacher by default, as for the CLI). A student may
  stop, resume, rename or delete only their own runs, may not queue a sweep or several runs at once, and may have
  `student_quota` (a setting, 1 by default) queued-or-running runs, counted and inserted in one transaction.
  Students' runs queue behind the teacher's (scheduler.QUEUE_ORDER).

Ray cluster runs (CIFAR_LAB_RAY, core/runs/cluster.py) queue the same way on the pseudo-device "ray" with
`ray_slots` slots; the trainer process started for one submits it as a Ray job and records the job's events.
CLI runs (`python -m core train`) are trained by the terminal process itself (owner "terminal"): it waits in
the same queue and claims its own slot (core/runs/recorder.py); kick never claims them.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.classroom.roles import TEACHER, Actor, check_owner, check_quota, require_teacher
from core.classroom.settings import student_quota
from core.config import TrainConfig, apply_overrides
from core.errors import LabError
from core.runs import cluster, lifecycle, packing, scheduler
from core.runs.disk import DiskUsage
from core.runs.records import EpochRow, RunRecord, resume_blocker, retry_lr
from core.runs.store import RunStore
from core.runs.supervisor import HEARTBEAT_S, Supervisor
from core.train.files import LAST

_LIBRARIES: dict[Path, RunLibrary] = {}
_LOCK = threading.Lock()


class RunLibrary:
    """One runs folder: its store, queue and trainer processes. Get one with open_library()."""

    def __init__(self, root: str | Path) -> None:
        self.store = RunStore(root)
        self.supervisor = Supervisor(self.store)
        self.root = self.store.root
        self.db_path = self.store.db_path

    # ---- storage (core/runs/store.py) -----------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with self.store.connect() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.store.transaction() as conn:
            yield conn

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        return self.store.get_setting(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        self.store.set_setting(key, value)

    def run_dir(self, run_id: str) -> Path:
        """The run's folder: last.pt, best.pt and train.log live here."""
        return self.store.run_dir(run_id)

    def disk_usage(self) -> DiskUsage:
        return self.store.disk_usage()

    def find(self, run_id: str) -> RunRecord | None:
        return self.store.find(run_id)

    def get(self, run_id: str) -> RunRecord:
        """The run, or LabError when there is no such id."""
        return self.store.get(run_id)

    def list_runs(self, **filters: Any) -> list[RunRecord]:
        """Runs, newest first, filtered as RunStore.list_runs."""
        return self.store.list_runs(**filters)

    def curves(self, run_id: str) -> list[EpochRow]:
        return self.store.curves(run_id)

    def compare(self, run_ids: Iterable[str]) -> dict[str, list[EpochRow]]:
        return self.store.compare(run_ids)

    def best_per_preset(self, **kw: Any) -> dict[str, RunRecord]:
        return self.store.best_per_preset(**kw)

    def insert_run(self, config: TrainConfig, *, run_id: str | None = None,
                   conn: sqlite3.Connection | None = None, **kw: Any) -> str:
        """A new run row in a given status (lifecycle.insert_run); `conn` inserts inside the caller's
        transaction. A fresh id that clashes (astronomically rare) is drawn again."""
        if conn is not None:
            return lifecycle.insert_run(conn, config, run_id=run_id, **kw)
        for _ in range(5):
            try:
                with self.store.connect() as own:
                    return lifecycle.insert_run(own, config, run_id=run_id, **kw)
            except sqlite3.IntegrityError:
                if run_id is not None:
                    raise
        raise RuntimeError("could not find a free run id")

    # ---- settings -------------------------------------------------------------------------------------

    @property
    def max_per_device(self) -> int | str:
        """The library's cap on runs per device: a whole number, or "auto" (see core/runs/packing.py).
        $CIFAR_LAB_MAX_PER_DEVICE, when set, overrides it for the process that claims runs."""
        n = packing.parse_cap(self.get_setting("max_per_device", packing.AUTO), "the max_per_device setting")
        return packing.AUTO if n is None else n

    def set_max_per_device(self, n: int | str) -> None:
        if n != packing.AUTO and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise LabError(f"max_per_device must be a whole number >= 1 or 'auto', got {n!r}")
        self.set_setting("max_per_device", n)
        self.kick()

    @property
    def stale_after_s(self) -> float:
        return float(self.get_setting("stale_after_s", "20") or 20)

    def set_stale_after_s(self, seconds: float) -> None:
        if not seconds > HEARTBEAT_S:
            raise LabError(f"stale_after_s must be longer than the {HEARTBEAT_S:g} s heartbeat, got {seconds!r}")
        self.set_setting("stale_after_s", float(seconds))

    # ---- queue (core/runs/scheduler.py) ---------------------------------------------------------------

    def submit(self, config: TrainConfig, name: str | None = None, preset: str | None = None,
               started_by: str = "app", sweep_id: str | None = None, *, tags: str | None = None,
               data_dir: str | Path | None = None, download: bool = False, actor: Actor = TEACHER) -> str:
        """Queue `config` for a trainer process and start it if its device has a free slot; returns the id.
        device "auto" is resolved here (ConfigError if the asked-for device is not on this machine). With a Ray
        cluster set (core/runs/cluster.py) the run queues on the pseudo-device "ray" instead; its trainer
        process then hands it to the cluster as a job (core/runs/rayjob.py).
        A student may not queue a sweep, and only within the class's quota (PermissionDenied, QuotaExceeded)."""
        if started_by not in ("app", "cli"):
            raise ValueError(f"started_by must be app or cli, got {started_by!r}")
        if sweep_id is not None:
            require_teacher(actor, "queue a sweep")
        from core.data.dataset import data_root  # deferred: both import torch
        from core.train.setup import resolve_device

        address = cluster.address_for(self.get_setting)  # a Ray cluster instead of this machine (cluster.py)
        if address:
            cluster.check_reachable(address)  # LabError before anything is queued: nothing to lose
            device, extra = cluster.DEVICE, cluster.columns(address)
        else:
            device, extra = str(resolve_device(config.device)), None
        with self.transaction() as conn:  # count and insert under one write lock: two clicks cannot both pass
            if not actor.is_teacher:
                check_quota(actor, scheduler.active_of(conn, actor), student_quota(self))
            run_id = lifecycle.insert_run(conn, config, device=device, status="queued", started_by=started_by,
                                          name=name, preset=preset, sweep_id=sweep_id, tags=tags,
                                          data_dir=str(data_root(data_dir)), download=download, actor=actor,
                                          extra=extra)
        self.kick(device)
        return run_id

    def submit_many(self, jobs: list[tuple[TrainConfig, str | None, str | None]], *, actor: Actor = TEACHER,
                    what: str = "queue several runs at once", **kw: Any) -> list[str]:
        """Queue (config, name, preset) jobs one after another (the whole report): the teacher only."""
        require_teacher(actor, what)
        return [self.submit(config, name=name, preset=preset, actor=actor, **kw) for config, name, preset in jobs]

    def active_runs_of(self, actor: Actor) -> int:
        """The actor's queued or running runs that did not ask to stop (what the quota counts)."""
        with self.connect() as conn:
            return scheduler.active_of(conn, actor)

    def kick(self, device: str | None = None) -> list[str]:
        """Start queued worker runs on `device` (every device when None) while it has free slots; returns
        the ids started. Safe to call from anywhere, any time: it never exceeds the device's cap."""
        claimed = scheduler.claim(self.store, device)
        for run_id in claimed:
            self.supervisor.spawn(run_id)
        return claimed

    def claim_next(self, device: str) -> str | None:
        """For a trainer that just finished a run cleanly: claim the device's next queued run for this very
        process (torch, the device and the data are already loaded) and start trainers for any further free
        slots. Returns the id this process should train next, or None."""
        claimed = scheduler.claim(self.store, device, first_for=os.getpid())
        for run_id in claimed[1:]:
            self.supervisor.spawn(run_id)
        return claimed[0] if claimed else None

    def queue_position(self, run_id: str) -> int | None:
        """How many queued runs on the same device start before this one (0 = next); None if not queued."""
        self.get(run_id)
        return scheduler.queue_position(self.store, run_id)

    def device_load(self, device: str) -> tuple[int, int]:
        """(running, queued) runs on a device."""
        return scheduler.device_load(self.store, device)

    # ---- stop / resume (core/runs/lifecycle.py) -------------------------------------------------------

    def request_stop(self, run_id: str, *, actor: Actor = TEACHER) -> str:
        """Ask a run to stop; returns its status now. A running run saves a checkpoint and ends `stopped`
        within about a second; a queued one is stopped at once; a finished one is left as it is."""
        with self.transaction() as conn:
            row = conn.execute("SELECT by_role, by_name FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise LabError(f"no run with id {run_id!r} in {self.root}: list them with `python -m core runs`")
            check_owner(actor, row["by_role"], row["by_name"], "stop", run_id)
            return lifecycle.stop(conn, run_id, now=time.time())

    def can_resume(self, run: RunRecord) -> str:
        """'' when `resume(run.id)` would continue the run (roles aside), else why not - what a page shows
        instead of a Resume button."""
        return resume_blocker(run, (self.run_dir(run.id) / LAST).is_file())

    def resume(self, run_id: str, *, actor: Actor = TEACHER) -> None:
        """Queue a stopped (or failed) run again; it continues from its last checkpoint and appends to the same
        curve. A run that never trained an epoch starts over. LabError if its checkpoint is gone, or if its
        ending is not resumable (completed, diverged); a student resumes only their own runs, within the quota."""
        run = self.check_may(actor, run_id, "resume")
        blocker = resume_blocker(run, has_checkpoint=True)  # the status rules; the checkpoint is checked below
        if blocker:
            raise LabError(blocker)
        folder = self.run_dir(run_id)
        has_checkpoint = (folder / LAST).is_file()
        trained = run.epochs_done > 0 or (run.progress is not None and run.progress.step > 0)
        if not has_checkpoint and (trained or run.imported):
            where = f"its folder {folder} was deleted" if not folder.exists() else \
                f"its checkpoint {folder / LAST} is missing"
            raise LabError(f"cannot resume run {run_id}: {where} (by hand?); start a new run with the same "
                           f"settings instead")
        with self.transaction() as conn:
            if not actor.is_teacher:
                check_quota(actor, scheduler.active_of(conn, actor), student_quota(self))
            changed = lifecycle.resume(conn, run_id, has_checkpoint=has_checkpoint)
        if not changed:
            raise LabError(f"run {run_id} was started by someone else meanwhile")
        self.kick(run.device)

    def train_again(self, run_id: str, *, actor: Actor = TEACHER, started_by: str = "app") -> str:
        """Queue a copy of a diverged run's config at a tenth of its learning rate (what its reason advises);
        returns the new run's id. The same rules as resuming it: a student only for their own run, within the
        quota (PermissionDenied, QuotaExceeded); LabError for a run that did not diverge."""
        run = self.check_may(actor, run_id, "train again")
        if run.status != "diverged":
            raise LabError(f"run {run_id} is {run.status}, not diverged: only a diverged run is trained again at a "
                           f"tenth of its learning rate; start a new run with the settings you want instead")
        lr = retry_lr(run)
        config = apply_overrides(run.config, {"optim.lr": lr})
        return self.submit(config, name=f"{run.name} · lr {lr:.3g}", preset=run.preset, started_by=started_by,
                           tags=run.tags, data_dir=run.data_dir, download=run.download, actor=actor)

    # ---- crash recovery (core/runs/supervisor.py) -----------------------------------------------------

    def recover(self, *, force: bool = False) -> list[str]:
        """Mark failed the runs whose process died without saying so, then kick every queue. Returns the ids
        marked failed. Throttled to once a second per library object unless force=True."""
        failed = self.supervisor.recover(lambda: self.stale_after_s, force=force)
        if failed is None:
            return []
        self.kick()
        return failed

    # ---- editing, with the class-mode rules -----------------------------------------------------------

    def check_may(self, actor: Actor, run_id: str, what: str) -> RunRecord:
        """The run, after checking that `actor` may `what` it (PermissionDenied otherwise)."""
        run = self.get(run_id)
        check_owner(actor, run.by_role, run.by_name, what, run_id)
        return run

    def rename(self, run_id: str, name: str, *, actor: Actor = TEACHER) -> None:
        name = name.strip()
        if not name:
            raise LabError("a run's name cannot be empty")
        self.check_may(actor, run_id, "rename")
        self._update_existing(run_id, "UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

    def annotate(self, run_id: str, *, tags: str | None = None, notes: str | None = None,
                 actor: Actor = TEACHER) -> None:
        """Set a run's free-text tags and/or notes (None leaves a field as it is)."""
        self.check_may(actor, run_id, "annotate")
        if tags is not None:
            self._update_existing(run_id, "UPDATE runs SET tags = ? WHERE id = ?", (tags, run_id))
        if notes is not None:
            self._update_existing(run_id, "UPDATE runs SET notes = ? WHERE id = ?", (notes, run_id))

    def _update_existing(self, run_id: str, sql: str, args: tuple) -> None:
        with self.connect() as conn:
            changed = conn.execute(sql, args).rowcount
        if not changed:
            self.get(run_id)  # raises the "no run with id" error

    def delete(self, run_id: str, *, actor: Actor = TEACHER) -> None:
        """Remove the run's rows and its folder. A running run (or one a terminal is waiting to train) must be
        stopped first; a student may delete only their own runs."""
        with self.transaction() as conn:
            row = conn.execute("SELECT status, owner, by_role, by_name FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise LabError(f"no run with id {run_id!r} in {self.root}: list them with `python -m core runs`")
            check_owner(actor, row["by_role"], row["by_name"], "delete", run_id)
            if row["status"] == "running" or (row["status"] == "queued" and row["owner"] == "terminal"):
                raise LabError(f"run {run_id} is {row['status']}: stop it first (`python -m core runs stop {run_id}`)")
            conn.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        folder = self.run_dir(run_id)
        if folder.exists():
            try:
                shutil.rmtree(folder)
            except OSError as e:
                raise LabError(f"run {run_id} was removed from the library but its folder {folder} could not be "
                               f"deleted ({e.strerror}); delete it by hand") from None


def runs_root(override: str | Path | None = None) -> Path:
    """Where the run library lives: `override`, else $CIFAR_LAB_RUNS, else ./runs (absolute, not created)."""
    root = override if override not in (None, "") else os.environ.get("CIFAR_LAB_RUNS") or "runs"
    return _absolute(str(root), os.getcwd())


@functools.lru_cache(maxsize=64)
def _absolute(root: str, cwd: str) -> Path:
    """`root` made absolute from `cwd`, once: every page rerun of every student asks (resolving walks the path)."""
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
