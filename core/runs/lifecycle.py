"""A run's lifecycle: the only module that writes a run's `status` (and the columns that move with it).

                    submit / `python -m core train` / import (an import is born in its ending)
                                   │
                                   ▼
          ┌──────── stop ───── queued ◄──────────────────────────── resume ───────┐
          │  (before it started;   │  ▲                                             │
          │   Ctrl-C while waiting)│  │ reattach (a Ray run's follower died:        │
          │                  claim │  │  queued again to follow the same job)       │
          │        fail (never     ▼  │                                             │
          │        fits; terminal  running ── heartbeat, record_epoch (no change)   │
          │        died waiting)     │                                              │
          ▼            │             │ finish(status): the engine's Finished, a      │
       stopped ◄───────┼─────────────┤ setup error, a crash; fail: a stale run       │
       failed  ◄───────┘             ▼                                              │
                          completed | stopped | diverged | failed ──────────────────┘
                                                 (resumable: stopped, failed)

ENDINGS is the table: every status a run may end in, and whether `resume` may queue it again; TRANSITIONS
(which status may become which) is derived from it. A new ending (issue 21's `diverged`: the loss blew up,
terminal like failed, not resumable) is one line there.

Every transition is one function on an open connection (the caller picks the transaction: the scheduler claims
inside its own `BEGIN IMMEDIATE`). Each writes only `WHERE status IN (<the statuses it may leave>)`, so a run
that moved meanwhile is left alone and the function returns False; asking for a move the diagram does not
have (finish into `queued`, resume a `completed` run...) raises IllegalTransition before touching the row.
The rules of who may do what (core.classroom.roles), when a run is admitted (scheduler) and whether a process
is alive (supervisor) are their modules'; this one only says what a status may become and writes it.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from core.classroom.roles import TEACHER, Actor
from core.config import TrainConfig, to_json

# How a run may end, and whether `resume` may queue it again (it continues from its last checkpoint).
ENDINGS: dict[str, bool] = {
    "completed": False,  # trained every epoch: start a new run to train more
    "stopped": True,  # the Stop button, `runs stop`, SIGTERM, Ctrl-C
    "diverged": False,  # the loss blew up: resuming would diverge again the same way
    "failed": True,  # an error, a crash, a stale heartbeat, a run that can never fit its device
}
ACTIVE = ("queued", "running")
STATUSES = (*ACTIVE, *ENDINGS)  # in the order pages list them
RESUMABLE = tuple(s for s, resumable in ENDINGS.items() if resumable)
# status -> the statuses it may become. queued ends only by a stop or a failure before it started.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("running", "stopped", "failed"),
    "running": ("queued", *ENDINGS),  # queued: re-attach to its Ray job
    **{status: ("queued",) if resumable else () for status, resumable in ENDINGS.items()},
}
STARTED_BY = ("app", "cli", "import")


class IllegalTransition(ValueError):
    """A transition the state diagram does not have (a bug in the caller, not a race)."""


def check(sources: Iterable[str], target: str) -> tuple[str, ...]:
    """`sources` as a tuple, after checking that each may become `target` (IllegalTransition otherwise)."""
    sources = tuple(sources)
    bad = [s for s in sources if target not in TRANSITIONS.get(s, ())]
    if bad or not sources:
        raise IllegalTransition(f"a run cannot go from {' or '.join(bad) or 'nowhere'} to {target!r}")
    return sources


def _move(conn: sqlite3.Connection, run_id: str, target: str, sources: Iterable[str],
          sets: Mapping[str, Any] | None = None, where: str = "", where_args: tuple = ()) -> bool:
    """UPDATE the run to `target` (plus `sets`: column -> value, or -> ("SQL", args) for an expression) if its
    status is one of `sources` (and `where`); True if it moved."""
    sources = check(sources, target)
    columns, args = [], [target]
    for column, value in (sets or {}).items():
        if isinstance(value, tuple):
            columns.append(f"{column} = {value[0]}")
            args += value[1]
        else:
            columns.append(f"{column} = ?")
            args.append(value)
    sql = (f"UPDATE runs SET status = ?{''.join(', ' + c for c in columns)} WHERE id = ? "
           f"AND status IN ({','.join('?' * len(sources))})"
           + (f" AND {where}" if where else ""))
    return bool(conn.execute(sql, (*args, run_id, *sources, *where_args)).rowcount)


# ---- birth ----------------------------------------------------------------------------------------------

def new_run_id() -> str:
    return secrets.token_hex(4)  # 8 hex digits: short enough to type, 4 billion of them


def default_name(config: TrainConfig, preset: str | None) -> str:
    label = preset or config.model.name
    return f"{label} · {config.data.dataset} · {config.epochs} ep"


def insert_run(conn: sqlite3.Connection, config: TrainConfig, *, device: str, status: str, started_by: str,
               owner: str = "worker", name: str | None = None, preset: str | None = None,
               sweep_id: str | None = None, tags: str | None = None, data_dir: str | None = None,
               download: bool = False, pid: int | None = None, host: str | None = None, run_id: str | None = None,
               extra: dict[str, Any] | None = None, actor: Actor = TEACHER) -> str:
    """Insert a new run row (a fresh id unless given) and return its id: `queued` for a run to train, an ending
    for an import (any known status is accepted: tests stand runs in every state). Queued runs join the end of
    the queue. `extra` sets further columns (used by import). sqlite3.IntegrityError when the id is taken."""
    if status not in STATUSES or started_by not in STARTED_BY:
        raise ValueError(f"bad status/started_by: {status!r}/{started_by!r}")
    now = time.time()
    values: dict[str, Any] = dict(
        id=run_id or new_run_id(), name=name or default_name(config, preset), preset=preset,
        config=to_json(config), dataset=config.data.dataset, model=config.model.name, device=device,
        status=status, created=now, started_by=started_by, owner=owner, sweep_id=sweep_id, tags=tags,
        data_dir=data_dir, download=int(download), pid=pid, host=host,
        heartbeat=now if pid is not None else None, by_role=actor.role, by_name=actor.name)
    values.update(extra or {})
    queue = ", (SELECT COALESCE(MAX(queue_order), 0) + 1 FROM runs)" if status == "queued" else ", NULL"
    conn.execute(f"INSERT INTO runs ({', '.join(values)}, queue_order) VALUES "
                 f"({', '.join('?' * len(values))}{queue})", tuple(values.values()))
    return values["id"]


# ---- queued -> running ----------------------------------------------------------------------------------

def claim(conn: sqlite3.Connection, run_id: str, *, now: float, host: str, pid: int | None = None) -> bool:
    """queued -> running: its slot is taken now (heartbeat now). pid None keeps the row's (a terminal's own; a
    worker run's NULL until its trainer is spawned). A run re-attaching to its Ray job keeps a stop asked
    before its follower died; any other queued run starts with no stop pending."""
    return _move(conn, run_id, "running", ("queued",), {
        "started": ("COALESCE(started, ?)", (now,)), "heartbeat": now, "pid": ("COALESCE(?, pid)", (pid,)),
        "host": host, "stop_requested": ("stop_requested * reattach_pending", ())})


def attach(conn: sqlite3.Connection, run_id: str, *, pid: int, host: str, now: float) -> bool:
    """A trainer process takes over the worker run claimed for it (no status change; False if it is no longer
    running: stopped or deleted meanwhile)."""
    return bool(conn.execute("UPDATE runs SET pid = ?, host = ?, heartbeat = ? WHERE id = ? AND status = 'running' "
                             "AND owner = 'worker'", (pid, host, now, run_id)).rowcount)


def set_trainer_pid(conn: sqlite3.Connection, run_id: str, pid: int) -> bool:
    """The pid of the trainer process just spawned for a claimed run (unless one took it over already)."""
    return bool(conn.execute("UPDATE runs SET pid = ? WHERE id = ? AND status = 'running' AND pid IS NULL",
                             (pid, run_id)).rowcount)


# ---- while it is active ---------------------------------------------------------------------------------

def heartbeat(conn: sqlite3.Connection, run_id: str, *, now: float, progress: Mapping[str, Any] | None = None) -> bool:
    """The owner is alive (and its latest progress, if any); False once the run is no longer queued or running:
    it was taken from its owner (failed by recovery, or deleted)."""
    sets, args = ["heartbeat = ?"], [now]
    for column, value in (progress or {}).items():
        sets.append(f"{column} = ?")
        args.append(value)
    return bool(conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ? AND status IN "
                             f"({','.join('?' * len(ACTIVE))})", (*args, run_id, *ACTIVE)).rowcount)


def record_epoch(conn: sqlite3.Connection, run_id: str, test_acc: float | None) -> None:
    """After an epoch's row is written: epochs done, the latest and the best test accuracy (what the lists and
    `resume` go by)."""
    conn.execute("UPDATE runs SET epochs_done = (SELECT MAX(epoch) FROM epochs WHERE run_id = :id), "
                 "test_acc = :acc, best_test_acc = (SELECT MAX(test_acc) FROM epochs WHERE run_id = :id) "
                 "WHERE id = :id", dict(id=run_id, acc=test_acc))


def stop(conn: sqlite3.Connection, run_id: str, *, now: float) -> str:
    """Ask a run to stop; its status now. queued -> stopped at once; a running run gets stop_requested and ends
    `stopped` by its owner's finish within about a second; an ended one is left as it is."""
    if _move(conn, run_id, "stopped", ("queued",), {"reason": "stopped before it started", "finished": now,
                                                     "stop_requested": 1}):
        return "stopped"
    conn.execute("UPDATE runs SET stop_requested = 1 WHERE id = ? AND status = 'running'", (run_id,))
    row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else "deleted"


# ---- endings --------------------------------------------------------------------------------------------

def finish(conn: sqlite3.Connection, run_id: str, status: str, reason: str, *, now: float,
           sources: Iterable[str] = ("running",), where: str = "", where_args: tuple = ()) -> bool:
    """sources -> an ending, with why ('' when completed). No stop or resume stays pending."""
    if status not in ENDINGS:
        raise IllegalTransition(f"{status!r} is not how a run ends (one of {', '.join(ENDINGS)})")
    return _move(conn, run_id, status, sources, {"reason": reason, "finished": now, "stop_requested": 0,
                                                 "resume_requested": 0}, where, where_args)


def finish_with_result(conn: sqlite3.Connection, run_id: str, status: str, reason: str, *, now: float,
                       test_acc: float | None, best_test_acc: float | None, per_class_acc: str | None,
                       seconds: float) -> bool:
    """running -> the engine's Finished status, with its final numbers (best and epochs done from the epoch
    rows, which count a re-done epoch once; the run's seconds summed over stop/resume)."""
    if status not in ENDINGS:
        raise IllegalTransition(f"{status!r} is not how a run ends (one of {', '.join(ENDINGS)})")
    return _move(conn, run_id, status, ("running",), {
        "reason": reason, "test_acc": ("COALESCE(?, test_acc)", (test_acc,)),
        "best_test_acc": ("COALESCE((SELECT MAX(test_acc) FROM epochs WHERE run_id = ?), ?, best_test_acc)",
                          (run_id, best_test_acc)),
        "per_class_acc": ("COALESCE(?, per_class_acc)", (per_class_acc,)), "finished": now,
        "seconds": ("seconds + ?", (seconds,)),
        "epochs_done": ("COALESCE((SELECT MAX(epoch) FROM epochs WHERE run_id = ?), epochs_done)", (run_id,)),
        "stop_requested": 0, "resume_requested": 0})


def fail_stale(conn: sqlite3.Connection, run_id: str, reason: str, *, now: float, status: str,
               heartbeat_at: float | None) -> bool:
    """A run whose owner died (or stopped answering) -> failed, only if it is still as the supervisor saw it
    (same status, same heartbeat: it may have just finished or beaten its heartbeat)."""
    return finish(conn, run_id, "failed", reason, now=now, sources=(status,), where="heartbeat IS ?",
                  where_args=(heartbeat_at,))


# ---- back to queued -------------------------------------------------------------------------------------

def resume(conn: sqlite3.Connection, run_id: str, *, has_checkpoint: bool) -> bool:
    """A resumable ending -> queued at the end of the queue, for a trainer process (resume_requested: continue
    from last.pt). False when the run is not in a resumable ending (started by someone else meanwhile)."""
    return _move(conn, run_id, "queued", RESUMABLE, {
        "owner": "worker", "reason": "", "finished": None, "pid": None, "heartbeat": None, "stop_requested": 0,
        "resume_requested": int(has_checkpoint), "reattach_pending": 0,
        "queue_order": ("(SELECT COALESCE(MAX(queue_order), 0) + 1 FROM runs)", ())})


def reattach(conn: sqlite3.Connection, run_id: str, *, heartbeat_at: float | None, note: str) -> bool:
    """running -> queued for a new follower of the run's Ray job (its follower died, the job trains on): keeps
    its queue place, counts the re-attach and appends `note` to its messages. Only if the heartbeat is still
    the one the supervisor saw."""
    return _move(conn, run_id, "queued", ("running",), {
        "owner": "worker", "pid": None, "heartbeat": None, "reattach_pending": 1,
        "reattaches": ("reattaches + 1", ()), "messages": ("messages || ?", (note,))},
        where="heartbeat IS ?", where_args=(heartbeat_at,))


def reattached(conn: sqlite3.Connection, run_id: str) -> None:
    """The new follower found the run's Ray job: the re-attach is done."""
    conn.execute("UPDATE runs SET reattach_pending = 0 WHERE id = ?", (run_id,))
