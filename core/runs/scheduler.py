"""The queue: which queued run trains next on each device, and whether it may start now.

Each device (cpu, cuda:N, mps, or the pseudo-device "ray" of core/runs/cluster.py) has one FIFO queue in the
`runs` table. A claim, inside one `BEGIN IMMEDIATE` transaction, takes the head of a device's queue while the
device admits it (core/runs/packing.py's `admit`: fewer running runs than the device's cap, and where memory is
checked, its estimated bytes fit beside the running runs') and moves it queued -> running through
core/runs/lifecycle.py. A run that cannot fit the device even alone is failed there with what to change. Ten
sessions pressing Start at once give one running run and nine queued ones: every claim is serialized by
SQLite's write lock.

Order (QUEUE_ORDER): the teacher's runs first (the class watches them), then students', each group first come
first served (queue_order is set each time a run is queued). Worker runs are claimed by `claim` for a trainer
process (core/runs/supervisor.py spawns it); a terminal-owned run (`python -m core train`) waits at the head of
its queue and claims its own slot with `claim_terminal`: `claim` never takes it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from core.classroom.roles import Actor
from core.runs import cluster, lifecycle, packing
from core.runs.store import RunStore
from core.runs.supervisor import HOST

# Queue order: the teacher's runs first (the class watches them), then students', each group first come first served.
QUEUE_ORDER = "(by_role = 'student'), queue_order, seq"


def _cap(conn: sqlite3.Connection, device: str) -> tuple[int, bool]:
    """(most runs at once on `device`, whether memory is checked too), from the settings read in `conn`."""
    if device == cluster.DEVICE:  # Ray places the jobs on its GPUs itself: only how many it gets at once is ours
        return cluster.slots(conn), False
    setting = conn.execute("SELECT value FROM settings WHERE key = 'max_per_device'").fetchone()
    return packing.device_cap(device, setting[0] if setting else None)


def admission(conn: sqlite3.Connection, device: str, config_json: str) -> packing.Admission:
    """May the queued run with this config (JSON) start on `device` now? Read inside the claiming transaction
    `conn`: the cap and, where memory is checked, the estimates of the device's running runs."""
    cap, by_memory = _cap(conn, device)
    running = [r[0] for r in conn.execute("SELECT config FROM runs WHERE status = 'running' AND device = ?",
                                          (device,))]
    if not by_memory or len(running) >= cap:
        return packing.admit(None, [0] * len(running), cap=cap, capacity=None, device=device)
    need = packing.need_or_none(config_json, device)
    running_needs = [packing.need_or_none(c, device) or 0 for c in running]
    return packing.admit(need, running_needs, cap=cap, capacity=packing.device_capacity(device), device=device)


def warm_estimates(conn: sqlite3.Connection, devices: Sequence[str]) -> None:
    """Make the estimates a claim will need before it takes the write lock (the first one imports torch and
    builds models on the meta device: not something to do while every writer waits)."""
    for dev in devices:
        if _cap(conn, dev)[1]:
            for (config_json,) in conn.execute("SELECT config FROM runs WHERE device = ? AND status IN "
                                               "('running', 'queued')", (dev,)):
                packing.need_or_none(config_json, dev)


def _queued_devices(conn: sqlite3.Connection, device: str | None) -> list[str]:
    if device is None:
        return [r[0] for r in conn.execute("SELECT DISTINCT device FROM runs WHERE status = 'queued'")]
    found = conn.execute("SELECT 1 FROM runs WHERE status = 'queued' AND device = ? LIMIT 1", (device,)).fetchone()
    return [device] if found else []


def claim(store: RunStore, device: str | None, first_for: int | None = None) -> list[str]:
    """Move the oldest queued worker runs to `running` while their device (every device when None) has free
    slots, in one transaction; returns their ids. The first one claimed gets pid `first_for` (a trainer that
    continues with it); the others wait for the trainers the caller spawns."""
    claimed: list[str] = []
    with store.connect() as conn:  # cheap read first: most calls find nothing to do
        devices = _queued_devices(conn, device)
        if not devices:
            return claimed
        warm_estimates(conn, devices)
    with store.transaction() as conn:
        now = time.time()
        for dev in devices:
            while True:
                head = conn.execute("SELECT id, owner, config FROM runs WHERE status = 'queued' AND device = ? "
                                    f"ORDER BY {QUEUE_ORDER} LIMIT 1", (dev,)).fetchone()
                if head is None or head["owner"] != "worker":
                    break  # a terminal waiting at the head claims its slot itself
                verdict = admission(conn, dev, head["config"])
                if verdict.verdict == "never":  # it can never fit: fail it, the next one may
                    lifecycle.finish(conn, head["id"], "failed", verdict.reason, now=now, sources=("queued",))
                    continue
                if verdict.verdict != "start":
                    break
                lifecycle.claim(conn, head["id"], now=now, host=HOST, pid=first_for if not claimed else None)
                claimed.append(head["id"])
    return claimed


def claim_terminal(store: RunStore, run_id: str) -> str | None:
    """For a terminal waiting to train its run: 'running' if it got its slot now; the run's status if it is no
    longer queued ('deleted' when gone); else None (keep waiting)."""
    with store.transaction() as conn:
        me = conn.execute("SELECT status, device, config FROM runs WHERE id = ?", (run_id,)).fetchone()
        if me is None:
            return "deleted"
        if me["status"] != "queued":
            return me["status"]
        head = conn.execute(f"SELECT id FROM runs WHERE status = 'queued' AND device = ? ORDER BY {QUEUE_ORDER} "
                            "LIMIT 1", (me["device"],)).fetchone()
        if head["id"] != run_id:
            return None
        verdict = admission(conn, me["device"], me["config"])
        now = time.time()
        if verdict.verdict == "never":  # it can never fit this device: fail it with what to change
            lifecycle.finish(conn, run_id, "failed", verdict.reason, now=now, sources=("queued",))
            return "failed"
        if verdict.verdict != "start":
            return None
        lifecycle.claim(conn, run_id, now=now, host=HOST)
    return "running"


def active_of(conn: sqlite3.Connection, actor: Actor) -> int:
    """The actor's queued or running runs that did not ask to stop (what a student's quota counts): a run asked
    to stop is on its way out (within a second), so Stop then Start must not hit the quota."""
    return conn.execute("SELECT COUNT(*) FROM runs WHERE by_role = ? AND by_name = ? AND status IN "
                        "('queued', 'running') AND stop_requested = 0", (actor.role, actor.name)).fetchone()[0]


def queue_position(store: RunStore, run_id: str) -> int | None:
    """How many queued runs on the same device start before this one (0 = next); None if it is not queued."""
    with store.connect() as conn:
        me = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if me is None or me["status"] != "queued":
            return None
        return conn.execute(
            "SELECT COUNT(*) FROM runs r, runs me WHERE me.id = ? AND r.status = 'queued' AND r.device = me.device "
            "AND ((r.by_role = 'student') < (me.by_role = 'student') OR ((r.by_role = 'student') = "
            "(me.by_role = 'student') AND (r.queue_order < me.queue_order OR "
            "(r.queue_order = me.queue_order AND r.seq < me.seq))))", (run_id,)).fetchone()[0]


def device_load(store: RunStore, device: str) -> tuple[int, int]:
    """(running, queued) runs on a device."""
    with store.connect() as conn:
        rows = dict(conn.execute("SELECT status, COUNT(*) FROM runs WHERE device = ? AND status IN "
                                 "('running', 'queued') GROUP BY status", (device,)).fetchall())
    return rows.get("running", 0), rows.get("queued", 0)
