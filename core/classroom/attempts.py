"""Wrong teacher passcodes, slowed and limited per browser session and per client address.

Each try is judged and recorded in one write transaction of the run library's database (table
`passcode_attempts`, made here on first use: the store is passed in, any object with connect()/transaction()
context managers yielding sqlite3 connections, such as core.runs.RunStore). A key (a session, an address) that
has failed n times since its last success, within the last FORGET_S seconds, waits `wait_after(n)` after its
last failure: the first FREE_FAILURES typos cost nothing, then BASE_WAIT_S doubling up to MAX_WAIT_S; and no key
gets more than MAX_PER_MINUTE wrong tries in any minute. A try made while a key waits is refused without
looking at the passcode (and is not recorded), so waiting is the only way on.

A success clears its own session and address; `forgive` (the teacher) clears every key. The teacher reads
`summary`: how many wrong tries in the last hour, from how many addresses, and who waits now.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.classroom.questions import SqlStore
from core.classroom.roles import Actor, require_teacher

FREE_FAILURES = 3
BASE_WAIT_S = 5.0
MAX_WAIT_S = 900.0
MAX_PER_MINUTE = 5
FORGET_S = 3600.0
KEEP_S = 7 * 86400.0  # older tries are deleted (the table stays small)
EVERYONE = "*"  # the key of the teacher's "forgive": a success for every session and address

SCHEMA = ("CREATE TABLE IF NOT EXISTS passcode_attempts (id INTEGER PRIMARY KEY, at REAL NOT NULL, "
          "session TEXT NOT NULL, address TEXT NOT NULL, ok INTEGER NOT NULL)",
          "CREATE INDEX IF NOT EXISTS passcode_attempts_at ON passcode_attempts (at)")


@dataclass(frozen=True)
class Attempt:
    """What came of one try: judged (allowed) and right (ok), or refused for `wait_s` more seconds."""

    allowed: bool
    ok: bool
    wait_s: float  # before the next try is judged (0: now)
    failures: int  # the worse key's wrong tries counted against it, this one included


@dataclass(frozen=True)
class Summary:
    failures: int  # wrong tries in the last FORGET_S
    addresses: int  # from how many addresses
    sessions: int  # from how many browser sessions
    waiting: int  # keys (sessions or addresses) that must wait now
    last_at: float | None


def wait_after(failures: int) -> float:
    """Seconds a key waits after its `failures`-th wrong try in a row."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_WAIT_S, BASE_WAIT_S * 2.0 ** (failures - FREE_FAILURES))


def _ensure(conn: sqlite3.Connection) -> None:
    for sql in SCHEMA:
        conn.execute(sql)


def _failures(conn: sqlite3.Connection, column: str, key: str, now: float) -> list[float]:
    """The times of `key`'s wrong tries since its last success (or the teacher's forgive), newest last."""
    cleared = conn.execute(f"SELECT MAX(at) FROM passcode_attempts WHERE ok = 1 AND ({column} = ? OR {column} = ?)",
                           (key, EVERYONE)).fetchone()[0]
    since = max(now - FORGET_S, cleared if cleared is not None else float("-inf"))
    rows = conn.execute(f"SELECT at FROM passcode_attempts WHERE ok = 0 AND {column} = ? AND at > ? ORDER BY at",
                        (key, since)).fetchall()
    return [r[0] for r in rows]


def _wait(times: list[float], now: float) -> float:
    if not times:
        return 0.0
    wait = times[-1] + wait_after(len(times)) - now
    recent = [t for t in times if t > now - 60.0]
    if len(recent) >= MAX_PER_MINUTE:
        wait = max(wait, recent[-MAX_PER_MINUTE] + 60.0 - now)
    return max(0.0, wait)


def try_passcode(store: SqlStore, *, session: str, address: str, check: Callable[[], bool],
                 clock: Callable[[], float] = time.time) -> Attempt:
    """Judge one try with `check()` (the passcode comparison) unless this session or address must wait; record it."""
    now = clock()
    with store.transaction() as conn:
        _ensure(conn)
        keyed = [_failures(conn, "session", session, now), _failures(conn, "address", address, now)]
        wait = max(_wait(times, now) for times in keyed)
        worst = max(len(times) for times in keyed)
        if wait > 0:
            return Attempt(allowed=False, ok=False, wait_s=wait, failures=worst)
        ok = bool(check())
        conn.execute("DELETE FROM passcode_attempts WHERE at < ?", (now - KEEP_S,))
        conn.execute("INSERT INTO passcode_attempts (at, session, address, ok) VALUES (?, ?, ?, ?)",
                     (now, session, address, int(ok)))
        if ok:
            return Attempt(allowed=True, ok=True, wait_s=0.0, failures=0)
        keyed = [times + [now] for times in keyed]
        return Attempt(allowed=True, ok=False, wait_s=max(_wait(times, now) for times in keyed),
                       failures=worst + 1)


def summary(store: SqlStore, *, clock: Callable[[], float] = time.time) -> Summary:
    """The wrong tries of the last FORGET_S, for the teacher's class panel and `python -m core class show`."""
    now = clock()
    with store.transaction() as conn:
        _ensure(conn)
        n, addresses, sessions, last = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT address), COUNT(DISTINCT session), MAX(at) FROM passcode_attempts "
            "WHERE ok = 0 AND at > ?", (now - FORGET_S,)).fetchone()
        waiting = sum(1 for column in ("session", "address")
                      for (key,) in conn.execute(f"SELECT DISTINCT {column} FROM passcode_attempts "
                                                 f"WHERE ok = 0 AND at > ?", (now - FORGET_S,)).fetchall()
                      if _wait(_failures(conn, column, key, now), now) > 0)
    return Summary(int(n), int(addresses), int(sessions), waiting, last)


def forgive(store: SqlStore, *, actor: Actor, clock: Callable[[], float] = time.time) -> None:
    """The teacher lifts every wait (e.g. a teacher locked out on a shared address); the count stays visible."""
    require_teacher(actor, "lift the passcode waits")
    with store.transaction() as conn:
        _ensure(conn)
        conn.execute("INSERT INTO passcode_attempts (at, session, address, ok) VALUES (?, ?, ?, 1)",
                     (clock(), EVERYONE, EVERYONE))
