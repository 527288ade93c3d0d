"""Trainer processes: spawning them detached, telling whether they live, and recovering from their crashes.

How a claimed run gets its process
  The scheduler (core/runs/scheduler.py) moves a queued worker run to `running`; after that commit the library
  asks `spawn(run_id)` for one trainer process per claimed run:

      subprocess.Popen([sys.executable, "-m", "core.runs.trainer", "--runs-dir", ROOT, "--run-id", ID],
                       cwd=REPO_ROOT, env=os.environ + PYTHONPATH=REPO_ROOT, stdin=DEVNULL,
                       stdout=ROOT/ID/train.log (append), stderr=STDOUT, start_new_session=True)

  start_new_session puts the trainer in its own session and process group, so neither Ctrl-C in the server's
  terminal nor the terminal closing (SIGINT/SIGHUP to the foreground group) reaches it, and it outlives the
  process that started it (Streamlit server, CLI or another trainer). A daemon thread waits on the child only
  to reap it (no zombies in a long-lived server); nothing else depends on the parent staying alive.
  The trainer (core/runs/trainer.py) records its events; when its run ends cleanly it claims the device's next
  queued run for itself (torch and the data are already loaded), otherwise - or after 20 runs - it exits and
  kicks the queue, which spawns a fresh process. Either way the next queued run starts with no server at all.

Supervision
  A trainer writes a heartbeat every HEARTBEAT_S from a background thread (core/runs/recorder.py). `recover()`
  (run when a library is opened and cheap enough for every page poll: at most once a second per library
  object) fails every running run whose heartbeat is older than `stale_after` or whose process, on this host,
  is gone or a zombie; the library then kicks every device's queue. A run failed by mistake (its process was
  only frozen) notices at its next heartbeat and stops itself, keeping its checkpoint for `resume`.
  A running Ray run whose follower died is queued again instead, to re-attach to its job (at most
  MAX_REATTACHES times). Every status change goes through core/runs/lifecycle.py.

Server restart
  Nothing to do: trainers run on; the new server reads the same library; queued runs start as trainers
  finish (or at the next recover() if the last trainer died before it could kick the queue).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.runs import lifecycle
from core.runs.store import RunStore

HOST = socket.gethostname()
REPO_ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 2.0  # how often a trainer writes its heartbeat
RECOVER_EVERY_S = 1.0  # recover() does its work at most this often per library object
LOG_NAME = "train.log"
MAX_REATTACHES = 3  # a Ray run's follower may die this often before the run is failed (recover)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this machine is alive (a zombie counts as dead)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate it on Windows: rely on the heartbeat there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: alive
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): os.kill is all we have
        return True
    state = stat.rsplit(")", 1)[-1].split()[0]  # the field after "(comm)": R, S, D, Z, X...
    return state not in ("Z", "X")


def _clock(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "never"


def trainer_command(root: Path, run_id: str) -> list[str]:
    return [sys.executable, "-m", "core.runs.trainer", "--runs-dir", str(root), "--run-id", run_id]


class Supervisor:
    """The trainer processes of one run library: spawns them and recovers the runs whose owner died."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._recover_lock = threading.Lock()
        self._last_recover = 0.0

    def spawn(self, run_id: str) -> None:
        """Start a detached trainer process for a run the scheduler claimed (failed if it cannot start)."""
        folder = self.store.run_dir(run_id)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"  # the log shows progress as it happens
        detach: dict = {"start_new_session": True} if os.name != "nt" else {
            "creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / LOG_NAME, "ab") as log:
                proc = subprocess.Popen(trainer_command(self.store.root, run_id), cwd=REPO_ROOT, env=env,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        close_fds=True, **detach)
        except OSError as e:
            with self.store.connect() as conn:
                lifecycle.finish(conn, run_id, "failed", f"could not start the trainer process: {e}",
                                 now=time.time())
            return
        with self.store.connect() as conn:
            lifecycle.set_trainer_pid(conn, run_id, proc.pid)
        threading.Thread(target=proc.wait, name=f"reap-{run_id}", daemon=True).start()

    def recover(self, stale_after: float | Callable[[], float], *, force: bool = False) -> list[str] | None:
        """Fail the runs whose process died without saying so (or queue a Ray run to re-attach); returns the
        ids failed, or None when throttled (at most once per RECOVER_EVERY_S unless force=True): the caller
        kicks the queues after a pass that ran. `stale_after` may be a function, read only when a pass runs (a
        throttled call, as a page makes on every library access, then touches no database)."""
        with self._recover_lock:
            now = time.time()
            if not force and now - self._last_recover < RECOVER_EVERY_S:
                return None
            self._last_recover = now
        stale_after = stale_after() if callable(stale_after) else stale_after
        with self.store.connect() as conn:
            rows = conn.execute("SELECT id, status, owner, pid, host, heartbeat, epoch, epochs_done, backend, job_id, "
                                "reattaches FROM runs "
                                "WHERE status = 'running' OR (status = 'queued' AND owner = 'terminal')").fetchall()
        failed = []
        for r in rows:
            local_dead = r["host"] == HOST and r["pid"] is not None and not pid_alive(r["pid"])
            age = now - r["heartbeat"] if r["heartbeat"] is not None else None
            if not local_dead and age is not None and age <= stale_after:
                continue
            if self._reattach(r, now):
                continue
            reason = self._why_dead(r, local_dead, age)
            with self.store.connect() as conn:  # only if nothing changed since we looked
                if lifecycle.fail_stale(conn, r["id"], reason, now=now, status=r["status"], heartbeat_at=r["heartbeat"]):
                    failed.append(r["id"])
        return failed

    def _why_dead(self, r: Any, local_dead: bool, age: float | None) -> str:
        who = "trainer process" if r["owner"] == "worker" else "terminal (`python -m core train`) process"
        what = "stopped unexpectedly (killed or crashed)" if local_dead or age is None else \
            f"stopped responding (no heartbeat for {age:.0f} s)"
        epoch = r["epoch"] or (r["epochs_done"] or 0) + 1
        where = f"at epoch {epoch}" if r["status"] == "running" else "while waiting in the queue"
        reason = f"{who} {what} {where}; last heartbeat {_clock(r['heartbeat'])}"
        if r["owner"] == "worker":
            reason += f" (its log: {self.store.run_dir(r['id']) / LOG_NAME})"
        if r["status"] == "running" and r["backend"] == "ray" and r["job_id"]:  # _reattach gave up
            reason += (f"; re-attached {r['reattaches']} times already, so the lab gave up following Ray job "
                       f"{r['job_id']}: stop it with `ray job stop {r['job_id']}` and resume the run")
        return reason

    def _reattach(self, r: Any, now: float) -> bool:
        """A running Ray run whose following process died: its job trains on (or has ended) on the cluster, so
        queue the run again for a new follower that re-attaches to that very job and reads its log from the
        start - the events and checkpoints the dead one missed included - instead of failing it. At most
        MAX_REATTACHES times a run: a follower that keeps dying is a bug to see, not to hide."""
        if r["status"] != "running" or r["backend"] != "ray" or not r["job_id"] or r["reattaches"] >= MAX_REATTACHES:
            return False
        note = (f"{time.strftime('%H:%M:%S', time.localtime(now))} the process following Ray job {r['job_id']} "
                f"stopped; a new one re-attaches to the job\n")
        with self.store.connect() as conn:
            return lifecycle.reattach(conn, r["id"], heartbeat_at=r["heartbeat"], note=note)
