"""Recording a run's events into the library, for a trainer process and for `python -m core train`.

A Recorder owns one running run: it writes RunStarted/Step/EpochEnd/Note/Finished into the store (Step
progress at most ~2 times a second, the latest always flushed by the heartbeat, an epoch or the end), keeps a
heartbeat going from a daemon thread every ~2 s, and answers the engine's `should_stop()` from the store's
stop flag (read at most every 0.5 s). `cli_recorder` queues a terminal-owned run, waits for its device's
slot (core/runs/scheduler.py's claim_terminal) and returns its Recorder. Progress, notes and epoch rows are
written here; every status change (claim, heartbeat, finish) is a call to core/runs/lifecycle.py.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from core.config import TrainConfig
from core.errors import LabError
from core.runs import cluster, lifecycle, scheduler
from core.runs.library import RunLibrary, open_library
from core.runs.supervisor import HEARTBEAT_S, HOST
from core.train import events as ev
from core.train.estimate import Rate, RunTiming

STOP_POLL_S = 0.5  # how stale a should_stop() answer may be
PROGRESS_EVERY_S = 0.5  # progress rows are written at most once per this interval (~2 per second)
_PROGRESS_COLUMNS = ("step", "total_steps", "epoch", "loss", "lr", "images_per_s", "progress_at")


def _num(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


class Recorder:
    """Writes one run's events. Use it from the thread that iterates the engine; the heartbeat is its own."""

    def __init__(self, lib: RunLibrary, run_id: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        """clock: seconds on a monotonic clock; what the stop-poll and progress-write intervals are measured on
        (tests pass a fake one to step through those intervals without sleeping)."""
        self.lib = lib
        self._clock = clock
        self.run_id = run_id
        self.checkpoint_dir = lib.run_dir(run_id)
        self.device = lib.get(run_id).device
        self._lock = threading.Lock()
        self._pending: dict[str, Any] | None = None  # progress not yet written
        self._last_progress_write = -math.inf  # never: the first progress is written, the first poll reads
        self._last_stop_poll = -math.inf
        self._stop = False
        self._lost = False  # the run is no longer ours (marked failed by recover(), or deleted)
        self._finished = False
        self.terminate_requested = False  # set by a signal handler (SIGTERM) to stop like a stop request
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self._timing = RunTiming()  # a completed run's speed refines the library's time estimates

    # ---- heartbeat ------------------------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        self._beat_thread = threading.Thread(target=self._beat_loop, name=f"heartbeat-{self.run_id}", daemon=True)
        self._beat_thread.start()

    def _beat_loop(self) -> None:
        while not self._beat_stop.wait(HEARTBEAT_S):
            try:
                self._beat()
            except Exception as e:  # noqa: BLE001 - a busy database must not kill the heartbeat; try again
                sys.stderr.write(f"heartbeat of run {self.run_id} failed: {type(e).__name__}: {e}\n")

    def _beat(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        with self.lib.connect() as conn:
            changed = lifecycle.heartbeat(conn, self.run_id, now=time.time(), progress=pending)
        if not changed and not self._finished:
            self._lost = True

    # ---- the engine's callbacks -----------------------------------------------------------------------

    def should_stop(self) -> bool:
        """True once a stop was requested (app, `runs stop`, SIGTERM) or the run was taken from us."""
        if self._stop or self._lost or self.terminate_requested:
            return True
        now = self._clock()
        if now - self._last_stop_poll >= STOP_POLL_S:
            self._last_stop_poll = now
            with self.lib.connect() as conn:
                row = conn.execute("SELECT stop_requested, status FROM runs WHERE id = ?", (self.run_id,)).fetchone()
            if row is None or row["status"] != "running":
                self._lost = True
            elif row["stop_requested"]:
                self._stop = True
        return self._stop or self._lost

    def record(self, event: ev.Event) -> None:
        measured = self._timing.observe(event)
        if measured is not None:
            self._remember_rate(measured)
        if isinstance(event, ev.Step):
            with self._lock:
                self._pending = dict(step=event.step, total_steps=event.total_steps, epoch=event.epoch,
                                     loss=_num(event.loss), lr=event.lr, images_per_s=_num(event.images_per_s),
                                     progress_at=time.time())
            if self._clock() - self._last_progress_write >= PROGRESS_EVERY_S:
                self._flush_progress()
        elif isinstance(event, ev.EpochEnd):
            self._record_epoch(event)
        elif isinstance(event, ev.RunStarted):
            self._record_started(event)
        elif isinstance(event, ev.Note):
            with self.lib.connect() as conn:
                conn.execute("UPDATE runs SET messages = messages || ? WHERE id = ?",
                             (event.message + "\n", self.run_id))
        elif isinstance(event, ev.Finished):
            self._record_finished(event)

    def _remember_rate(self, measured: Rate) -> None:
        """Fold this completed run's speed into the estimates kept in the settings (core.train.estimate); a
        failure here only costs the refinement, never the run."""
        if self.device == cluster.DEVICE:  # a Ray job's speed is the cluster's, not this library's devices'
            return
        try:
            from core.train.calibrate import remember_run  # deferred: imports torch (the engine already has)

            remember_run(self.lib.get_setting, self.lib.set_setting, self.lib.get(self.run_id).config, self.device,
                         measured)
        except Exception as e:  # noqa: BLE001 - an estimate is a nicety
            sys.stderr.write(f"could not refine the time estimate from run {self.run_id}: {type(e).__name__}: {e}\n")

    def _flush_progress(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if not pending:
            return
        self._last_progress_write = self._clock()
        with self.lib.connect() as conn:
            conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in pending)} WHERE id = ?",
                         (*pending.values(), self.run_id))

    def _record_started(self, e: ev.RunStarted) -> None:
        step = (e.start_epoch - 1) * e.steps_per_epoch
        # `dataset` keeps the config's spelling (what pages filter by), not the engine's resolved folder path.
        with self.lib.connect() as conn:
            conn.execute("UPDATE runs SET params = ?, trainable_params = ?, train_size = ?, "
                         "test_size = ?, num_classes = ?, steps_per_epoch = ?, step = COALESCE(MAX(step, ?), ?), "
                         "total_steps = ?, epoch = ?, progress_at = ? WHERE id = ?",
                         (e.params, e.trainable_params, e.train_size, e.test_size, e.num_classes,
                          e.steps_per_epoch, step, step, e.steps_per_epoch * e.epochs, e.start_epoch, time.time(),
                          self.run_id))

    def _record_epoch(self, e: ev.EpochEnd) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        row = ev.to_dict(e)
        values = [row[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds",
                                   "images_per_s")]
        with self.lib.transaction() as conn:
            # REPLACE: an epoch re-done after a crash (its checkpoint was older than its row) counts once.
            conn.execute("INSERT OR REPLACE INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, "
                         "lr, seconds, images_per_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (self.run_id, *values))
            lifecycle.record_epoch(conn, self.run_id, row["test_acc"])
            if pending:
                conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in pending)} WHERE id = ?",
                             (*pending.values(), self.run_id))

    def _record_finished(self, e: ev.Finished) -> None:
        self._flush_progress()
        pca = json.dumps([_num(x) for x in e.per_class_acc]) if e.per_class_acc else None
        with self.lib.transaction() as conn:
            lifecycle.finish_with_result(conn, self.run_id, e.status, e.reason, now=time.time(),
                                         test_acc=_num(e.test_acc), best_test_acc=_num(e.best_test_acc),
                                         per_class_acc=pca, seconds=e.seconds)
        self._finished = True

    def finish(self, status: str, reason: str, *, from_statuses: tuple[str, ...] = ("running",)) -> None:
        """End the run without a Finished event (setup error, Ctrl-C, crash of the recording process)."""
        with self.lib.connect() as conn:
            lifecycle.finish(conn, self.run_id, status, reason, now=time.time(), sources=from_statuses)
        self._finished = True

    def abort(self, exc: BaseException) -> None:
        """The process recording the run is failing with `exc`: record why (nothing if already finished)."""
        if self._finished:
            return
        if isinstance(exc, KeyboardInterrupt):
            status, reason = "stopped", "interrupted from the terminal"
        elif isinstance(exc, LabError):
            status, reason = "failed", str(exc)
        else:
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        self.finish(status, reason, from_statuses=("queued", "running"))

    def close(self, *, kick: bool = True) -> None:
        """Stop the heartbeat, make sure the run does not stay `running`, and (kick=True) start the device's
        next queued run."""
        self._beat_stop.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=5)
        if not self._finished:
            self.finish("failed", "training ended without reporting how (see the run's log)",
                        from_statuses=("queued", "running"))
        if not kick:
            return
        try:
            self.lib.kick(self.device)
        except Exception as e:  # noqa: BLE001 - the next run will be started by the next recover() instead
            sys.stderr.write(f"could not start the next queued run: {type(e).__name__}: {e}\n")


def attach_worker(lib: RunLibrary, run_id: str) -> Recorder | None:
    """For core/runs/trainer.py: take over a run kick() claimed for this process; None if it is not claimed
    (stopped or deleted meanwhile)."""
    with lib.transaction() as conn:
        changed = lifecycle.attach(conn, run_id, pid=os.getpid(), host=HOST, now=time.time())
    if not changed:
        return None
    rec = Recorder(lib, run_id)
    rec.start_heartbeat()
    return rec


def cli_recorder(config: TrainConfig, runs_dir: str | None = None, name: str | None = None, *,
                 preset: str | None = None, poll_s: float = 1.0, out: TextIO | None = None,
                 ray: str | None = None) -> Recorder:
    """Record a run trained by this (terminal) process: queue it, wait for the device's free slot (printing
    "waiting: N run(s) ahead on DEVICE" to stderr) and return its Recorder, owning a `running` run.
    Ctrl-C while waiting marks it stopped; a stop from the app while waiting is a LabError.
    With a Ray cluster (`ray`, else $CIFAR_LAB_RAY or the library's setting; core/runs/cluster.py) the run
    waits in the "ray" queue instead and the caller trains it with core.runs.rayjob.follow."""
    from core.train.setup import resolve_device  # deferred: imports torch

    out = out or sys.stderr
    lib = open_library(runs_dir)
    address = cluster.address_for(lib.get_setting, ray)
    if address:
        cluster.check_reachable(address)  # LabError before anything is queued: nothing to lose
        device, extra = cluster.DEVICE, cluster.columns(address)
    else:
        device, extra = str(resolve_device(config.device)), None
    run_id = lib.insert_run(config, device=device, status="queued", started_by="cli", owner="terminal", name=name,
                            preset=preset, pid=os.getpid(), host=HOST, extra=extra)
    rec = Recorder(lib, run_id)
    rec.start_heartbeat()
    try:
        shown = None
        while True:
            state = scheduler.claim_terminal(lib.store, run_id)
            if state == "running":
                break
            if state == "failed":
                raise LabError(f"run {run_id} could not start: {lib.get(run_id).reason}")
            if state is not None:
                raise LabError(f"run {run_id} was {state} before it started (from the app or `python -m core runs`)")
            running, _ = lib.device_load(device)
            ahead = running + (lib.queue_position(run_id) or 0)
            if ahead != shown:
                out.write(f"waiting: {ahead} run(s) ahead on {device} (run {run_id})\n")
                out.flush()
                shown = ahead
            lib.recover()  # also kicks worker runs queued ahead of us when a slot is free
            time.sleep(poll_s)
    except BaseException as e:
        rec.abort(e)
        rec.close()
        raise
    return rec
