"""The run library's storage: one SQLite file (`<runs dir>/lab.db`, WAL mode) plus one folder per run.

Tables: `runs` (one row per run: what it is, where it stands, its latest step-level progress, who owns it),
`epochs` (one row per finished epoch, keyed by (run_id, epoch) so a re-done epoch replaces itself) and
`settings` (key/value: max_per_device, stale_after_s, the class settings, shared by every process that opens the
folder), and for class mode `questions` / `answers` (core/classroom/questions.py). Each run records who started
it (by_role teacher | student, by_name); the library (core/runs/library.py) checks edits against the acting
core.classroom.roles.Actor.
The schema is versioned with PRAGMA user_version and grown by MIGRATIONS; a file written by a newer CIFAR Lab,
or a file that is not SQLite at all, is a LabError that says what to do.

Concurrency: the Streamlit server (many script threads), trainer processes and the CLI all write at once, so
every operation opens its own short-lived connection (busy timeout 30 s) and read-modify-write operations run
inside `BEGIN IMMEDIATE`. Settings are the exception: thirty students' pages read a dozen of them per rerun, so
they are read all at once and kept until the database changes (`PRAGMA data_version` on one long-lived
connection per process moves on any commit by any other connection, in any process). Nothing here imports
torch: listing runs stays fast. Rows come back as the plain dataclasses of core/runs/records.py. No rules live
here: a run's status changes only in core/runs/lifecycle.py (the insert of a new run included), the queue is
core/runs/scheduler.py, trainer processes are core/runs/supervisor.py, event recording core/runs/recorder.py,
export/import core/runs/transfer.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import LabError
from core.runs.disk import DiskUsage, disk_usage
from core.runs.records import EPOCH_FIELDS, RUN_STATUSES, EpochRow, RunRecord, record_from_row
from core.space import free_bytes, free_text

DB_NAME = "lab.db"
BUSY_TIMEOUT_S = 30.0
LOW_FREE_FOR_DB = 64 * 2**20  # under this much free space, SQLite's "disk I/O error" means the disk is full
# max_per_device "auto": one run at a time on a CPU, as many as fit in memory on CUDA (core/runs/packing.py).
# A library made before packing existed stored "1", which keeps meaning one at a time there.
DEFAULT_SETTINGS = {"max_per_device": "auto", "stale_after_s": "20"}

# Each entry upgrades the schema by one version (index 0: empty file -> v1). Never edit a shipped entry:
# append a new one, and opening an older library migrates it in place.
MIGRATIONS: tuple[str, ...] = (
    # v1: the run library as first shipped.
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- insertion order, ties in the queue
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        preset TEXT,
        config TEXT NOT NULL,                    -- TrainConfig as JSON (core.config.to_json)
        dataset TEXT NOT NULL,
        model TEXT NOT NULL,
        device TEXT NOT NULL,                    -- concrete: cpu | cuda:0 | mps (auto resolved at submit)
        status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,                   -- unix seconds
        started REAL,
        finished REAL,
        started_by TEXT NOT NULL DEFAULT 'app',  -- app | cli | import
        owner TEXT NOT NULL DEFAULT 'worker',    -- worker: a trainer process; terminal: the CLI process itself
        params INTEGER, trainable_params INTEGER, train_size INTEGER, test_size INTEGER,
        num_classes INTEGER, steps_per_epoch INTEGER,
        epochs_done INTEGER NOT NULL DEFAULT 0,
        test_acc REAL, best_test_acc REAL,
        seconds REAL NOT NULL DEFAULT 0,         -- training wall time, summed over stop/resume
        messages TEXT NOT NULL DEFAULT '',       -- the engine's Note events, one per line
        pid INTEGER, host TEXT, heartbeat REAL,
        stop_requested INTEGER NOT NULL DEFAULT 0,
        resume_requested INTEGER NOT NULL DEFAULT 0,
        queue_order INTEGER,                     -- set each time the run is (re)queued: FIFO per device
        data_dir TEXT, download INTEGER NOT NULL DEFAULT 0,
        step INTEGER, total_steps INTEGER, epoch INTEGER, loss REAL, lr REAL, images_per_s REAL, progress_at REAL
    );
    CREATE INDEX runs_queue ON runs (device, status, queue_order);
    CREATE TABLE epochs (
        run_id TEXT NOT NULL, epoch INTEGER NOT NULL,
        train_loss REAL, train_acc REAL, test_loss REAL, test_acc REAL, lr REAL, seconds REAL, images_per_s REAL,
        PRIMARY KEY (run_id, epoch)
    );
    """,
    # v2: sweeps, tags/notes and per-class accuracy (for the sweep, report-card and confusion pages).
    """
    ALTER TABLE runs ADD COLUMN sweep_id TEXT;
    ALTER TABLE runs ADD COLUMN tags TEXT;
    ALTER TABLE runs ADD COLUMN notes TEXT;
    ALTER TABLE runs ADD COLUMN per_class_acc TEXT;   -- JSON list, null for classes absent from the test set
    CREATE INDEX runs_sweep ON runs (sweep_id);
    CREATE INDEX runs_preset ON runs (preset, status);
    """,
    # v3: class mode - who started each run (earlier runs are the teacher's), questions and their answers.
    """
    ALTER TABLE runs ADD COLUMN by_role TEXT NOT NULL DEFAULT 'teacher';   -- teacher | student
    ALTER TABLE runs ADD COLUMN by_name TEXT NOT NULL DEFAULT 'teacher';   -- a student's nickname
    CREATE INDEX runs_by ON runs (by_role, by_name, status);
    CREATE TABLE questions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        page TEXT NOT NULL, key TEXT NOT NULL DEFAULT '', prompt TEXT NOT NULL,
        choices TEXT NOT NULL,                   -- JSON list of strings
        status TEXT NOT NULL,                    -- open | revealed | closed
        opened REAL NOT NULL, revealed REAL, actual TEXT
    );
    CREATE INDEX questions_page ON questions (page, status);
    CREATE TABLE answers (
        question_id INTEGER NOT NULL, voter TEXT NOT NULL, choice TEXT NOT NULL, at REAL NOT NULL,
        PRIMARY KEY (question_id, voter)
    );
    """,
    # v4: where a run trained: backend local (a trainer process here) or ray (a job on a Ray cluster, see
    # core/runs/cluster.py), the cluster's address and the Ray job's submission id.
    """
    ALTER TABLE runs ADD COLUMN backend TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE runs ADD COLUMN cluster TEXT;
    ALTER TABLE runs ADD COLUMN job_id TEXT;
    """,
    # v5: a Ray run whose following process died while its job trained on: queued again to re-attach to that
    # job (not to submit a new one), and how many times that happened (core/runs/supervisor.py, recover).
    """
    ALTER TABLE runs ADD COLUMN reattach_pending INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN reattaches INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class RunStore:
    """Rows and files of one runs folder. Cheap to construct; safe to share between threads and processes."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.db_path = self.root / DB_NAME
        self._init_lock = threading.Lock()
        self._settings_lock = threading.Lock()
        self._settings: dict[str, str] | None = None  # every setting, as of self._settings_version
        self._settings_version: tuple[int, ...] | None = None
        self._watch: tuple[tuple[int, int, int], sqlite3.Connection] | None = None  # see _watched
        self.settings_reads = 0  # how often the settings were read from the file (the tests count them)
        self._ensure_schema()

    # ---- connections ----------------------------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        if not self.db_path.is_file():  # deleted by hand while we were running: start a fresh library
            self._ensure_schema()
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            yield conn
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e) or "malformed" in str(e):
                raise self._not_a_library() from None
            if self._disk_is_full(e):
                raise LabError(f"the disk of the run library is full ({free_text(self.root)}): nothing was saved. "
                               f"Delete runs you no longer need (the run library page, or `python -m core runs "
                               f"delete ID`), then try again") from None
            raise
        finally:
            conn.close()

    def _disk_is_full(self, e: sqlite3.DatabaseError) -> bool:
        """SQLite says 'database or disk is full', or - when the write-ahead log cannot grow - 'disk I/O error'."""
        if "database or disk is full" in str(e):
            return True
        try:
            return "disk I/O error" in str(e) and free_bytes(self.root) < LOW_FREE_FOR_DB
        except OSError:
            return False

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its first statement (no upgrade deadlocks)."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # a full disk may have ended the transaction already
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _not_a_library(self) -> LabError:
        return LabError(f"{self.db_path} is not a CIFAR Lab run library (not an SQLite database, or damaged): "
                        f"choose another runs folder (--runs-dir or $CIFAR_LAB_RUNS) or move that file away")

    def _ensure_schema(self) -> None:
        with self._init_lock:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LabError(f"cannot create the runs folder {self.root}: {e.strerror}; choose another one "
                               f"(--runs-dir or $CIFAR_LAB_RUNS)") from None
            try:
                conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            except sqlite3.Error as e:
                raise LabError(f"cannot open {self.db_path}: {e}; choose another runs folder") from None
            try:
                self._migrate(conn)
            except sqlite3.DatabaseError as e:
                if "not a database" in str(e) or "malformed" in str(e):
                    raise self._not_a_library() from None
                if any(w in str(e) for w in ("unable to open", "readonly", "disk I/O", "locking protocol")):
                    raise LabError(f"cannot use the run library {self.db_path} ({e}): choose another runs folder "
                                   f"(--runs-dir or $CIFAR_LAB_RUNS) or fix its permissions") from None
                raise
            finally:
                conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        self._check_version(version)
        _set_wal(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            self._check_version(version)
            for sql in MIGRATIONS[version:]:
                for statement in _statements(sql):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for key, value in DEFAULT_SETTINGS.items():
                conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LabError(f"the run library {self.db_path} was written by a newer CIFAR Lab (schema v{version}; "
                           f"this one knows up to v{SCHEMA_VERSION}): upgrade CIFAR Lab, or choose another runs "
                           f"folder (--runs-dir or $CIFAR_LAB_RUNS)")

    # ---- settings -------------------------------------------------------------------------------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        return self._current_settings().get(key, default)

    def settings(self) -> dict[str, str]:
        """Every setting (a copy)."""
        return dict(self._current_settings())

    def _current_settings(self) -> dict[str, str]:
        """Every setting, read again only when the file changed since this store last looked (never modified in
        place: a new read makes a new dict). Looked at on this process's long-lived connection (_watched): a
        fresh connection per look cost ten times the read. Any commit, by any process, shows at the next look."""
        with self._settings_lock:
            watched = self._watched()
            if watched is not None:
                file_id, conn = watched
                try:
                    version = (*file_id, conn.execute("PRAGMA data_version").fetchone()[0])
                    if self._settings is None or version != self._settings_version:
                        self._settings, self._settings_version = self._read_settings(conn), version
                    return self._settings
                except sqlite3.Error:
                    pass  # not a library, or busy past the timeout: connect() below says what it is
            with self.connect() as conn:
                self._settings, self._settings_version = self._read_settings(conn), None
            return self._settings

    def _read_settings(self, conn: sqlite3.Connection) -> dict[str, str]:
        self.settings_reads += 1
        return dict(conn.execute("SELECT key, value FROM settings").fetchall())

    def set_setting(self, key: str, value: Any) -> None:
        with self.connect() as conn:
            conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, str(value)))

    def _watched(self) -> tuple[tuple[int, int, int], sqlite3.Connection] | None:
        """((pid, device, inode), this process's long-lived connection to the library's file): SQLite's
        data_version on it moves on every commit by any other connection, in any process. A forked trainer
        opens its own; a file deleted by hand and made again gets a new one. None while there is no file."""
        try:
            st = os.stat(self.db_path)
        except OSError:
            return None
        file_id = (os.getpid(), st.st_dev, st.st_ino)
        if self._watch is None or self._watch[0] != file_id:
            if self._watch is not None and self._watch[0][0] == os.getpid():
                self._watch[1].close()
            self._watch = None
            try:
                conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)  # used under self._settings_lock only
            except sqlite3.Error:
                return None
            self._watch = (file_id, conn)
        return self._watch

    # ---- reading --------------------------------------------------------------------------------------

    def run_dir(self, run_id: str) -> Path:
        """The run's folder: last.pt, best.pt and train.log live here."""
        return self.root / run_id

    def disk_usage(self) -> DiskUsage:
        """What every run's folder takes on disk, and the free space there (core.runs.disk)."""
        return disk_usage(self.root, [r.id for r in self.list_runs()])

    def find(self, run_id: str) -> RunRecord | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return record_from_row(row) if row else None

    def get(self, run_id: str) -> RunRecord:
        """The run, or LabError when there is no such id."""
        run = self.find(run_id)
        if run is None:
            raise LabError(f"no run with id {run_id!r} in {self.root}: list them with `python -m core runs`")
        return run

    def list_runs(self, *, status: str | Iterable[str] | None = None, preset: str | None = None,
                  dataset: str | None = None, sweep_id: str | None = None, started_by: str | None = None,
                  device: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first, filtered by any of the given fields (status may be one or several)."""
        where, args = [], []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            bad = sorted(set(statuses) - set(RUN_STATUSES))
            if bad:
                raise LabError(f"unknown status {', '.join(bad)}: use one of {', '.join(RUN_STATUSES)}")
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += statuses
        for column, value in (("preset", preset), ("dataset", dataset), ("sweep_id", sweep_id),
                              ("started_by", started_by), ("device", device)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.connect() as conn:
            return [record_from_row(r) for r in conn.execute(sql, args).fetchall()]

    def curves(self, run_id: str) -> list[EpochRow]:
        """The run's finished epochs in order (one row per epoch number)."""
        self.get(run_id)
        with self.connect() as conn:
            rows = conn.execute(f"SELECT {', '.join(EPOCH_FIELDS)} FROM epochs WHERE run_id = ? ORDER BY epoch",
                                (run_id,)).fetchall()
        return [EpochRow(**dict(r)) for r in rows]

    def compare(self, run_ids: Iterable[str]) -> dict[str, list[EpochRow]]:
        """Several runs' curves, keyed by run id in the order given."""
        return {rid: self.curves(rid) for rid in run_ids}

    def best_per_preset(self, *, dataset: str | None = None,
                        statuses: Iterable[str] = ("completed",)) -> dict[str, RunRecord]:
        """For the report card: each preset's run with the highest best test accuracy."""
        best: dict[str, RunRecord] = {}
        for run in self.list_runs(status=tuple(statuses), dataset=dataset):
            if run.preset is None or run.best_test_acc is None:
                continue
            current = best.get(run.preset)
            if current is None or run.best_test_acc > (current.best_test_acc or 0.0):
                best[run.preset] = run
        return best


def _set_wal(conn: sqlite3.Connection) -> None:
    """WAL mode (persistent in the file): readers never block the writer. Switching needs a moment with no
    other connection, and SQLite does not wait for that by itself when several processes open a new library
    at once, so retry for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (not executescript: it would commit our transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf)
            buf = ""
    assert not buf.strip(), f"incomplete statement in a migration: {buf!r}"
    return out
