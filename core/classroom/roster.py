"""Who is in class now: each student session's heartbeat, and the teacher's roster made from them.

A student's page records a heartbeat {session, nickname, page, follows, seen} on each script run and poll (at
most one write per session every BEAT_EVERY_S unless the nickname, page or follow choice changed: `needs_beat`).
The roster counts the sessions seen in the last ONLINE_S seconds: who is connected, who follows the teacher (their
"Follow the teacher" / "Explore on my own" choice), who is on the page the teacher presents, and who answered the
open question. Table `class_presence` of the run library's database, made here on first use;
the store is passed in (any object with connect()/transaction() yielding sqlite3 connections, as core.runs.RunStore).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.classroom.questions import SqlStore

ONLINE_S = 30.0  # a session silent for longer has left (students' pages poll every 2 s)
BEAT_EVERY_S = 10.0
KEEP_S = 86400.0
NO_NICK = "(no nickname yet)"

SCHEMA = ("CREATE TABLE IF NOT EXISTS class_presence (session TEXT PRIMARY KEY, nick TEXT NOT NULL, "
          "page TEXT NOT NULL, seen REAL NOT NULL, follows INTEGER NOT NULL DEFAULT 1)",)


@dataclass(frozen=True)
class Beat:
    nick: str  # "" until the student picks one
    page: str  # the page's script path, as core.classroom.follow records the teacher's
    at: float
    follows: bool = True  # the student's page moves with the teacher's


@dataclass(frozen=True)
class Roster:
    online: tuple[str, ...]  # nicknames (NO_NICK for each session without one), sorted
    following: tuple[str, ...]  # of those, who follow the teacher (their own choice, wherever they are)
    on_page: tuple[str, ...]  # of those, on the page the teacher presents
    answered: tuple[str, ...]  # of those, who answered the open question
    question_open: bool

    @property
    def not_following(self) -> tuple[str, ...]:
        """Who explores on their own (one entry per session, as `online`)."""
        return _minus(self.online, self.following)

    @property
    def elsewhere(self) -> tuple[str, ...]:
        """Who is not on the teacher's page."""
        return _minus(self.online, self.on_page)


def _minus(names: tuple[str, ...], some: tuple[str, ...]) -> tuple[str, ...]:
    rest, out = list(some), []
    for name in names:
        if name in rest:
            rest.remove(name)
        else:
            out.append(name)
    return tuple(out)


def needs_beat(last: Beat | None, nick: str, page: str, now: float, follows: bool = True) -> bool:
    """Whether a session must write its heartbeat now (first time, a change, or BEAT_EVERY_S since the last)."""
    return (last is None or (last.nick, last.page, last.follows) != (nick, page, follows)
            or now - last.at >= BEAT_EVERY_S)


def _ensure(conn) -> None:
    for sql in SCHEMA:
        conn.execute(sql)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(class_presence)")}
    if "follows" not in columns:  # a database from before the follow choice was recorded
        conn.execute("ALTER TABLE class_presence ADD COLUMN follows INTEGER NOT NULL DEFAULT 1")


_READY: set[tuple] = set()  # (database file, device, inode) whose table this process has made or checked


@contextmanager
def _table(store: SqlStore, *, write: bool) -> Iterator[sqlite3.Connection]:
    """A connection (a write transaction when `write`) on a library whose class_presence table exists. The
    table is made or migrated once per file and process: thirty students' heartbeats each took the write lock
    for it, and queued on one another when a teacher's change moved the whole class at once."""
    path = getattr(store, "db_path", None)
    try:
        stat = os.stat(path) if path is not None else None
    except OSError:
        stat = None
    key = None if stat is None else (str(path), stat.st_dev, stat.st_ino)
    if key not in _READY:
        with store.transaction() as conn:
            _ensure(conn)
        if key is not None:
            _READY.add(key)
    with store.transaction() if write else store.connect() as conn:
        yield conn


def heartbeat(store: SqlStore, session: str, nick: str, page: str, *, follows: bool = True,
              clock: Callable[[], float] = time.time) -> Beat:
    """Record that student session `session` (nickname `nick`, "" for none) is on `page` now, following the
    teacher or not."""
    now = clock()
    with _table(store, write=True) as conn:
        conn.execute("INSERT OR REPLACE INTO class_presence (session, nick, page, seen, follows) "
                     "VALUES (?, ?, ?, ?, ?)", (session, nick, page, now, int(follows)))
        conn.execute("DELETE FROM class_presence WHERE seen < ?", (now - KEEP_S,))
    return Beat(nick, page, now, follows)


def leave(store: SqlStore, session: str) -> None:
    """A session that became the teacher is no student any more."""
    with _table(store, write=True) as conn:
        conn.execute("DELETE FROM class_presence WHERE session = ?", (session,))


def roster(store: SqlStore, *, presenting_page: str | None, question_id: int | None,
           clock: Callable[[], float] = time.time) -> Roster:
    """Who is online, who follows the teacher, who is on the teacher's page, who answered question `question_id` (None: none open).
    Answers are matched by nickname (core.classroom.questions' voter), so a student answering from two tabs
    counts once per tab that is online."""
    now = clock()
    with _table(store, write=False) as conn:
        rows = conn.execute("SELECT nick, page, follows FROM class_presence WHERE seen >= ? "
                            "ORDER BY nick COLLATE NOCASE", (now - ONLINE_S,)).fetchall()
        voters = set()
        if question_id is not None:
            voters = {r[0] for r in conn.execute("SELECT voter FROM answers WHERE question_id = ?", (question_id,))}
    online = tuple(r[0] or NO_NICK for r in rows)
    following = tuple(r[0] or NO_NICK for r in rows if r[2])
    on_page = tuple(r[0] or NO_NICK for r in rows if presenting_page is not None and r[1] == presenting_page)
    answered = tuple(r[0] for r in rows if r[0] and r[0] in voters)
    return Roster(online, following, on_page, answered, question_id is not None)
