"""core/runs/lifecycle.py: every legal transition of a run's status, the illegal ones refused, `diverged` as an
ending that cannot be resumed, and no other module of core/ writing a run's status."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import LabError
from core.runs import lifecycle
from core.runs.library import RunLibrary
from core.runs.lifecycle import ENDINGS, RESUMABLE, STATUSES, TRANSITIONS, IllegalTransition
from core.runs.records import RUN_STATUSES
from core.runs.store import RunStore
from tests.fakes import tiny_config as tiny

CORE = Path(__file__).resolve().parents[3] / "core"
NOW = 1_000_000.0
LEGAL = [(source, target) for source, targets in TRANSITIONS.items() for target in targets]
ILLEGAL = [(s, t) for s in STATUSES for t in STATUSES if t not in TRANSITIONS[s]]


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with RunStore(tmp_path / "runs").connect() as c:
        yield c


def new(conn: sqlite3.Connection, status: str, **kw) -> str:
    return lifecycle.insert_run(conn, tiny(), device="cpu", status=status, started_by="app", **kw)


def status_of(conn: sqlite3.Connection, run_id: str) -> str:
    return conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


def move(conn: sqlite3.Connection, run_id: str, source: str, target: str) -> bool:
    """The lifecycle function that takes a run from `source` to `target`."""
    if (source, target) == ("queued", "running"):
        return lifecycle.claim(conn, run_id, now=NOW, host="here", pid=123)
    if (source, target) == ("queued", "stopped"):
        return lifecycle.stop(conn, run_id, now=NOW) == "stopped"
    if source == "running" and target == "queued":
        heartbeat = conn.execute("SELECT heartbeat FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        return lifecycle.reattach(conn, run_id, heartbeat_at=heartbeat, note="re-attach\n")
    if source == "running":
        return lifecycle.finish_with_result(conn, run_id, target, "why", now=NOW, test_acc=0.5, best_test_acc=0.6,
                                            per_class_acc=None, seconds=3.0)
    if target == "queued":
        return lifecycle.resume(conn, run_id, has_checkpoint=True)
    return lifecycle.finish(conn, run_id, target, "why", now=NOW, sources=(source,))


def test_the_table_is_the_diagram():
    assert STATUSES == RUN_STATUSES == ("queued", "running", "completed", "stopped", "diverged", "failed")
    assert RESUMABLE == ("stopped", "failed")
    assert TRANSITIONS["running"] == ("queued", *ENDINGS)  # every ending is reached by finishing a running run
    assert all(TRANSITIONS[end] == (("queued",) if end in RESUMABLE else ()) for end in ENDINGS)
    assert TRANSITIONS["queued"] == ("running", "stopped", "failed")
    assert ("running", "diverged") in LEGAL and ("diverged", "queued") not in LEGAL
    for status in ENDINGS:  # each status the docstring's diagram names
        assert status in lifecycle.__doc__


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_every_legal_transition(conn, source, target):
    run_id = new(conn, source, pid=1 if source == "running" else None)
    assert move(conn, run_id, source, target)
    assert status_of(conn, run_id) == target


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_an_illegal_transition_is_refused_before_the_row_is_touched(conn, source, target):
    with pytest.raises(IllegalTransition):
        lifecycle.check((source,), target)
    run_id = new(conn, source)
    if target in ENDINGS:
        with pytest.raises(IllegalTransition):
            lifecycle.finish(conn, run_id, target, "no", now=NOW, sources=(source,))
    assert status_of(conn, run_id) == source


@pytest.mark.parametrize("status", [s for s in STATUSES if s not in RESUMABLE])
def test_resume_leaves_what_is_not_a_resumable_ending(conn, status):
    run_id = new(conn, status)
    assert not lifecycle.resume(conn, run_id, has_checkpoint=True)
    assert status_of(conn, run_id) == status


def test_a_run_that_moved_meanwhile_is_left_alone(conn):
    done = new(conn, "completed")
    assert not lifecycle.claim(conn, done, now=NOW, host="here")
    assert not lifecycle.finish(conn, done, "failed", "late", now=NOW)  # only from running, by default
    assert not lifecycle.reattach(conn, done, heartbeat_at=None, note="")
    assert lifecycle.stop(conn, done, now=NOW) == "completed"
    assert not lifecycle.heartbeat(conn, done, now=NOW)  # its owner learns the run was taken from it
    assert status_of(conn, done) == "completed"
    running = new(conn, "running", pid=1)
    assert not lifecycle.fail_stale(conn, running, "stale", now=NOW, status="running", heartbeat_at=NOW - 99)
    assert status_of(conn, running) == "running"  # its heartbeat moved since the supervisor looked


def test_finish_into_a_status_that_is_no_ending_is_refused(conn):
    run_id = new(conn, "running", pid=1)
    for status in ("queued", "running", "exploded"):
        with pytest.raises(IllegalTransition):
            lifecycle.finish(conn, run_id, status, "no", now=NOW)
    assert status_of(conn, run_id) == "running"


def test_claim_keeps_a_stop_only_for_a_run_re_attaching_to_its_job(conn):
    plain, ray = new(conn, "queued"), new(conn, "queued")
    conn.execute("UPDATE runs SET stop_requested = 1")
    conn.execute("UPDATE runs SET reattach_pending = 1 WHERE id = ?", (ray,))
    assert lifecycle.claim(conn, plain, now=NOW, host="here") and lifecycle.claim(conn, ray, now=NOW, host="here")
    flags = dict(conn.execute("SELECT id, stop_requested FROM runs").fetchall())
    assert flags == {plain: 0, ray: 1}


def test_a_diverged_run_cannot_be_resumed_from_the_library(tmp_path):
    lib = RunLibrary(tmp_path / "runs")
    run_id = lib.insert_run(tiny(), device="cpu", status="diverged", started_by="cli")
    run = lib.get(run_id)
    assert "diverged" in lib.can_resume(run)
    with pytest.raises(LabError, match="diverged"):
        lib.resume(run_id)
    assert lib.get(run_id).status == "diverged"


# ---- one writer of a run's status -------------------------------------------------------------------------

WRITES_RUNS = re.compile(r"(UPDATE\s+runs\b|INSERT\s+(?:OR\s+\w+\s+)?INTO\s+runs\b)", re.IGNORECASE)
SETS_STATUS = re.compile(r"SET\s+status|\bstatus\s*=\s*['?:]", re.IGNORECASE)


def status_writes(text: str) -> list[str]:
    """The UPDATE/INSERT statements on `runs` in `text` that write `status` (up to their WHERE / VALUES)."""
    found = []
    for m in WRITES_RUNS.finditer(text):
        rest = text[m.start():m.start() + 600]
        if m.group(1).upper().startswith("UPDATE"):
            stmt = re.split(r"\bWHERE\b", rest, maxsplit=1)[0]
            if SETS_STATUS.search(stmt):
                found.append(stmt)
        else:
            stmt = re.split(r"\bVALUES\b", rest, maxsplit=1)[0]
            if re.search(r"\bstatus\b", stmt):
                found.append(stmt)
    return found


def test_the_status_finder_finds_status_writes():
    assert status_writes('conn.execute("UPDATE runs SET status = \'failed\', reason = ? WHERE id = ?")')
    assert status_writes('"UPDATE runs SET pid = ?, status = ? WHERE id = ?"')
    assert status_writes('"INSERT INTO runs (id, status, name) VALUES (?, ?, ?)"')
    assert not status_writes('"UPDATE runs SET pid = ? WHERE id = ? AND status = \'running\'"')
    assert not status_writes('"UPDATE questions SET status = \'closed\' WHERE id = ?"')


def test_only_lifecycle_writes_a_runs_status():
    offenders = {}
    for path in sorted(CORE.rglob("*.py")):
        if path.name == "lifecycle.py" and path.parent.name == "runs":
            continue
        found = status_writes(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(CORE.parent))] = found
    assert offenders == {}
    assert status_writes((CORE / "runs" / "lifecycle.py").read_text(encoding="utf-8"))  # the regex is not blind
