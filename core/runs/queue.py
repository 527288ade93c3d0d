"""Background training jobs: a FIFO queue per device, detached trainer processes, stop/resume and crash recovery.

How a run gets trained
  `submit(config)` inserts a `queued` row (device "auto" resolved to cpu / cuda:N / mps and stored) and calls
  `kick(device)`. kick, inside one `BEGIN IMMEDIATE` transaction, claims the oldest queued run (status running,
  heartbeat now) while the device admits it (core/runs/packing.py's `admission`): fewer running runs than the
  device's cap ($CIFAR_LAB_MAX_PER_DEVICE, else the library's `max_per_device`; "auto" = 1 on a CPU, by memory
  on CUDA) and, where memory is checked, its estimated bytes fit beside the running runs'. A run that cannot
  fit the device even alone is failed there with what to change. After the commit it starts one trainer
  process per claimed run:

      subprocess.Popen([sys.executable, "-m", "core.runs.trainer", "--runs-dir", ROOT, "--run-id", ID],
                       cwd=REPO_ROOT, env=os.environ + PYTHONPATH=REPO_ROOT, stdin=DEVNULL,
                       stdout=ROOT/ID/train.log (append), stderr=STDOUT, start_new_session=True)

  start_new_session puts the trainer in its own session and process group, so neither Ctrl-C in the server's
  terminal nor the terminal closing (SIGINT/SIGHUP to the foreground group) reaches it, and it outlives the
  process that started it (Streamlit server, CLI or another trainer). A daemon thread waits on the child only
  to reap it (no zombies in a long-lived server); nothing else depends on the parent staying alive.
  The trainer (core/trainer.py) records its events; when its run ends cleanly it claims the device's next
  queued run for itself (claim_next: same rule, same transaction; torch and the data are already loaded),
  otherwise - or after 20 runs - it exits and calls kick(device), which starts a fresh process. Either way
  the next queued run starts with no server at all. Ten sessions pressing Start at once give one running
  run and nine queued ones: every claim is serialized by SQLite's write lock.

Supervision
  A trainer writes a heartbeat every ~2 s from a background thread. `recover()` (run when a library is opened
  and cheap enough for every page poll: at most once a second per process) marks failed every running run
  whose heartbeat is older than `stale_after_s` (setting, 20 s by default) or whose process, on this host,
  is gone or a zombie; then it kicks every device's queue. A run recover() failed by mistake (its process was
  only frozen) notices at its next heartbeat and stops itself, keeping its checkpoint for `resume`.

Server restart
  Nothing to do: trainers run on; the new server reads the same library; queued runs start as trainers
  finish (or at the next recover() if the last trainer died before it could kick the queue).

Class mode
  Every action takes an `actor` (core.classroom.roles; the teacher by default, as for the CLI). A student may
  stop, resume, rename or delete only their own runs, may not queue a sweep or several runs at once, and may have
  `student_quota` (a setting, 1 by default) queued-or-running runs, counted and inserted in one transaction.
  Students' runs queue behind the teacher's: a claim takes the oldest queued teacher run first.

Ray cluster runs (CIFAR_LAB_RAY, core/runs/cluster.py) queue the same way on the pseudo-device "ray" with
`ray_slots` slots; the trainer process started for one submits it as a Ray job and records the job's events.

CLI runs (`python -m core train`) are trained by the terminal process itself (owner "terminal"): it waits in
the same queue and claims its own slot (core/runs/recorder.py); kick never claims them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from core.classroom.roles import TEACHER, Actor, check_owner, check_quota, require_teacher
from core.classroom.settings import student_quota
from core.config import TrainConfig
from core.errors import LabError
from core.runs import cluster, packing, transfer
from core.runs.records import RunRecord, resume_blocker
from core.runs.store import RunStore

HOST = socket.gethostname()
REPO_ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 2.0  # how often a trainer writes its heartbeat
RECOVER_EVERY_S = 1.0  # recover() does its work at most this often per library object
LOG_NAME = "train.log"
# Queue order: the teacher's runs first (the class watches them), then students', each group first come first served.
QUEUE_ORDER = "(by_role = 'student'), queue_order, seq"
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


class RunLibrary(RunStore):
    """The run library: storage (RunStore) plus the job queue. Get one with core.runs.open_library()."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self._recover_lock = threading.Lock()
        self._last_recover = 0.0

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

    # ---- queue ----------------------------------------------------------------------------------------

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
                check_quota(actor, self._active_of(conn, actor), student_quota(self))
            run_id = self.insert_run(config, device=device, status="queued", started_by=started_by, name=name,
                                     preset=preset, sweep_id=sweep_id, tags=tags,
                                     data_dir=str(data_root(data_dir)), download=download, actor=actor, conn=conn,
                                     extra=extra)
        self.kick(device)
        return run_id

    def submit_many(self, jobs: list[tuple[TrainConfig, str | None, str | None]], *, actor: Actor = TEACHER,
                    what: str = "queue several runs at once", **kw: Any) -> list[str]:
        """Queue (config, name, preset) jobs one after another (the whole report): the teacher only."""
        require_teacher(actor, what)
        return [self.submit(config, name=name, preset=preset, actor=actor, **kw) for config, name, preset in jobs]

    @staticmethod
    def _active_of(conn: Any, actor: Actor) -> int:
        # A run asked to stop is on its way out (within a second): Stop then Start must not hit the quota.
        return conn.execute("SELECT COUNT(*) FROM runs WHERE by_role = ? AND by_name = ? AND status IN "
                            "('queued', 'running') AND stop_requested = 0", (actor.role, actor.name)).fetchone()[0]

    def active_runs_of(self, actor: Actor) -> int:
        """How many queued or running runs `actor` started and did not ask to stop (what the quota counts)."""
        with self.connect() as conn:
            return self._active_of(conn, actor)

    def kick(self, device: str | None = None) -> list[str]:
        """Start queued worker runs on `device` (every device when None) while it has free slots; returns
        the ids started. Safe to call from anywhere, any time: it never exceeds max_per_device."""
        claimed = self._claim(device)
        for run_id in claimed:
            self._spawn(run_id)
        return claimed

    def claim_next(self, device: str) -> str | None:
        """For a trainer that just finished a run cleanly: claim the device's next queued run for this very
        process (torch, the device and the data are already loaded) and start trainers for any further free
        slots. Returns the id this process should train next, or None."""
        claimed = self._claim(device, first_for=os.getpid())
        for run_id in claimed[1:]:
            self._spawn(run_id)
        return claimed[0] if claimed else None

    def _claim(self, device: str | None, first_for: int | None = None) -> list[str]:
        """Mark the oldest queued worker runs `running` while their device has free slots (one transaction);
        the first one claimed gets pid `first_for` (a trainer that continues with it)."""
        claimed: list[str] = []
        with self.connect() as conn:  # cheap read first: most calls find nothing to do
            if device is None:
                devices = [r[0] for r in conn.execute("SELECT DISTINCT device FROM runs WHERE status = 'queued'")]
            else:
                devices = [device] if conn.execute("SELECT 1 FROM runs WHERE status = 'queued' AND device = ? "
                                                   "LIMIT 1", (device,)).fetchone() else []
            if not devices:
                return claimed
            packing.warm_estimates(conn, devices)
        with self.transaction() as conn:
            now = time.time()
            for dev in devices:
                while True:
                    head = conn.execute("SELECT id, owner, config FROM runs WHERE status = 'queued' AND device = ? "
                                        f"ORDER BY {QUEUE_ORDER} LIMIT 1", (dev,)).fetchone()
                    if head is None or head["owner"] != "worker":
                        break  # a terminal waiting at the head claims its slot itself
                    verdict = packing.admission(conn, dev, head["config"])
                    if verdict.verdict == "never":  # it can never fit: fail it, the next one may
                        conn.execute("UPDATE runs SET status = 'failed', reason = ?, finished = ?, "
                                     "resume_requested = 0 WHERE id = ?", (verdict.reason, now, head["id"]))
                        continue
                    if verdict.verdict != "start":
                        break
                    pid = first_for if not claimed else None
                    # a run re-attaching to its Ray job keeps a stop asked before its follower died
                    conn.execute("UPDATE runs SET status = 'running', started = COALESCE(started, ?), "
                                 "heartbeat = ?, pid = ?, host = ?, stop_requested = stop_requested * "
                                 "reattach_pending WHERE id = ?",
                                 (now, now, pid, HOST, head["id"]))
                    claimed.append(head["id"])
        return claimed

    def _spawn(self, run_id: str) -> None:
        folder = self.run_dir(run_id)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"  # the log shows progress as it happens
        detach: dict = {"start_new_session": True} if os.name != "nt" else {
            "creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / LOG_NAME, "ab") as log:
                proc = subprocess.Popen(trainer_command(self.root, run_id), cwd=REPO_ROOT, env=env,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        close_fds=True, **detach)
        except OSError as e:
            self._finish_failed(run_id, f"could not start the trainer process: {e}")
            return
        with self.connect() as conn:
            conn.execute("UPDATE runs SET pid = ? WHERE id = ? AND status = 'running' AND pid IS NULL",
                         (proc.pid, run_id))
        threading.Thread(target=proc.wait, name=f"reap-{run_id}", daemon=True).start()

    def _finish_failed(self, run_id: str, reason: str, *, only_if: tuple[str, ...] = ("running",)) -> bool:
        with self.connect() as conn:
            changed = conn.execute(
                f"UPDATE runs SET status = 'failed', reason = ?, finished = ?, resume_requested = 0 "
                f"WHERE id = ? AND status IN ({','.join('?' * len(only_if))})",
                (reason, time.time(), run_id, *only_if)).rowcount
        return bool(changed)

    def queue_position(self, run_id: str) -> int | None:
        """How many queued runs on the same device start before this one (0 = next); None if not queued."""
        run = self.get(run_id)
        if run.status != "queued":
            return None
        with self.connect() as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM runs r, runs me WHERE me.id = ? AND r.status = 'queued' AND r.device = me.device "
                "AND ((r.by_role = 'student') < (me.by_role = 'student') OR ((r.by_role = 'student') = "
                "(me.by_role = 'student') AND (r.queue_order < me.queue_order OR "
                "(r.queue_order = me.queue_order AND r.seq < me.seq))))", (run_id,)).fetchone()[0]

    def device_load(self, device: str) -> tuple[int, int]:
        """(running, queued) runs on a device."""
        with self.connect() as conn:
            rows = dict(conn.execute("SELECT status, COUNT(*) FROM runs WHERE device = ? AND status IN "
                                     "('running', 'queued') GROUP BY status", (device,)).fetchall())
        return rows.get("running", 0), rows.get("queued", 0)

    # ---- stop / resume --------------------------------------------------------------------------------

    def request_stop(self, run_id: str, *, actor: Actor = TEACHER) -> str:
        """Ask a run to stop; returns its status now. A running run saves a checkpoint and ends `stopped`
        within about a second; a queued one is stopped at once; a finished one is left as it is."""
        with self.transaction() as conn:
            row = conn.execute("SELECT status, by_role, by_name FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise LabError(f"no run with id {run_id!r} in {self.root}: list them with `python -m core runs`")
            check_owner(actor, row["by_role"], row["by_name"], "stop", run_id)
            status = row["status"]
            if status == "queued":
                conn.execute("UPDATE runs SET status = 'stopped', reason = 'stopped before it started', "
                             "finished = ?, stop_requested = 1 WHERE id = ?",
                             (time.time(), run_id))
                status = "stopped"
            elif status == "running":
                conn.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (run_id,))
        return status

    def can_resume(self, run: RunRecord) -> str:
        """'' when `resume(run.id)` would continue the run (roles aside), else why not - what a page shows
        instead of a Resume button."""
        return resume_blocker(run, (self.run_dir(run.id) / "last.pt").is_file())

    def resume(self, run_id: str, *, actor: Actor = TEACHER) -> None:
        """Queue a stopped (or failed) run again; it continues from its last checkpoint and appends to the same
        curve. A run that never trained an epoch starts over. LabError if its checkpoint is gone; a student
        resumes only their own runs, within the quota."""
        run = self.check_may(actor, run_id, "resume")
        blocker = resume_blocker(run, has_checkpoint=True)  # the status rules; the checkpoint is checked below
        if blocker:
            raise LabError(blocker)
        folder = self.run_dir(run_id)
        has_checkpoint = (folder / "last.pt").is_file()
        trained = run.epochs_done > 0 or (run.progress is not None and run.progress.step > 0)
        if not has_checkpoint and (trained or run.imported):
            where = f"its folder {folder} was deleted" if not folder.exists() else \
                f"its checkpoint {folder / 'last.pt'} is missing"
            raise LabError(f"cannot resume run {run_id}: {where} (by hand?); start a new run with the same "
                           f"settings instead")
        with self.transaction() as conn:
            if not actor.is_teacher:
                check_quota(actor, self._active_of(conn, actor), student_quota(self))
            changed = conn.execute(
                "UPDATE runs SET status = 'queued', owner = 'worker', reason = '', finished = NULL, pid = NULL, "
                "heartbeat = NULL, stop_requested = 0, resume_requested = ?, reattach_pending = 0, "
                "queue_order = (SELECT COALESCE(MAX(queue_order), 0) + 1 FROM runs) "
                "WHERE id = ? AND status NOT IN ('queued', 'running')",
                (int(has_checkpoint), run_id)).rowcount
        if not changed:
            raise LabError(f"run {run_id} was started by someone else meanwhile")
        self.kick(run.device)

    # ---- crash recovery -------------------------------------------------------------------------------

    def recover(self, *, force: bool = False) -> list[str]:
        """Mark failed the runs whose process died without saying so, then kick every queue. Returns the ids
        marked failed. Throttled to once a second per library object unless force=True."""
        with self._recover_lock:
            now = time.time()
            if not force and now - self._last_recover < RECOVER_EVERY_S:
                return []
            self._last_recover = now
        stale_after = self.stale_after_s
        with self.connect() as conn:
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
            who = "trainer process" if r["owner"] == "worker" else "terminal (`python -m core train`) process"
            what = "stopped unexpectedly (killed or crashed)" if local_dead or age is None else \
                f"stopped responding (no heartbeat for {age:.0f} s)"
            epoch = r["epoch"] or (r["epochs_done"] or 0) + 1
            where = f"at epoch {epoch}" if r["status"] == "running" else "while waiting in the queue"
            reason = f"{who} {what} {where}; last heartbeat {_clock(r['heartbeat'])}"
            if r["owner"] == "worker":
                reason += f" (its log: {self.run_dir(r['id']) / LOG_NAME})"
            if r["status"] == "running" and r["backend"] == "ray" and r["job_id"]:  # _reattach gave up
                reason += (f"; re-attached {r['reattaches']} times already, so the lab gave up following Ray job "
                           f"{r['job_id']}: stop it with `ray job stop {r['job_id']}` and resume the run")
            # Only if nothing changed since we looked (the run may have just finished or beaten its heartbeat).
            with self.connect() as conn:
                changed = conn.execute(
                    "UPDATE runs SET status = 'failed', reason = ?, finished = ?, resume_requested = 0 "
                    "WHERE id = ? AND status = ? AND heartbeat IS ?",
                    (reason, now, r["id"], r["status"], r["heartbeat"])).rowcount
            if changed:
                failed.append(r["id"])
        self.kick()
        return failed

    def _reattach(self, r: Any, now: float) -> bool:
        """A running Ray run whose following process died: its job trains on (or has ended) on the cluster, so
        queue the run again for a new follower that re-attaches to that very job and reads its log from the
        start - the events and checkpoints the dead one missed included - instead of failing it. At most
        MAX_REATTACHES times a run: a follower that keeps dying is a bug to see, not to hide."""
        if r["status"] != "running" or r["backend"] != "ray" or not r["job_id"] or r["reattaches"] >= MAX_REATTACHES:
            return False
        note = (f"{time.strftime('%H:%M:%S', time.localtime(now))} the process following Ray job {r['job_id']} "
                f"stopped; a new one re-attaches to the job\n")
        with self.connect() as conn:
            changed = conn.execute(
                "UPDATE runs SET status = 'queued', owner = 'worker', pid = NULL, heartbeat = NULL, "
                "reattach_pending = 1, reattaches = reattaches + 1, messages = messages || ? "
                "WHERE id = ? AND status = 'running' AND heartbeat IS ?", (note, r["id"], r["heartbeat"])).rowcount
        return bool(changed)

    # ---- export / import (core/runs/transfer.py) -------------------------------------------------------------

    def export_dict(self, run_id: str) -> dict[str, Any]:
        """The run and its curves as a JSON-ready dict (for a download button)."""
        return transfer.export_dict(self, run_id)

    def curves_csv(self, run_id: str) -> str:
        return transfer.curves_csv(self.curves(run_id))

    def export_run(self, run_id: str, path: str | Path | None = None, *, with_checkpoint: bool = False) -> list[Path]:
        """Write the run to PATH (JSON) + PATH's .csv (+ its checkpoints); returns the files written."""
        return transfer.export_run(self, run_id, path, with_checkpoint=with_checkpoint)

    def import_run(self, path: str | Path) -> str:
        """Import an export file; returns the new run's id (a fresh one if the exported id is taken)."""
        return transfer.import_run(self, path)

    def import_dict(self, data: Any, *, source: str = "the upload") -> str:
        """Import an export already parsed from JSON (an upload); no checkpoint."""
        return transfer.import_dict(self, data, source=source)
