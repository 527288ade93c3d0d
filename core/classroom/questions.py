"""Predict, then reveal: a question the teacher opens on a page, the students' answers and the tally.

Lifecycle: open (students answer, and may change their answer) -> revealed (answers frozen; the tally and the
actual result are shown) -> closed (gone from the page). One question per page at a time: opening a new one
closes the page's previous one. Tables `questions` and `answers` of the run library's database (store.py's
migration v3); the store is any object with connect()/transaction() context managers yielding sqlite3
connections, such as core.runs.store.RunStore or core.runs.library.RunLibrary.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from core.classroom.roles import Actor, require_teacher
from core.errors import ConfigError, LabError

STATUSES = ("open", "revealed", "closed")


class SqlStore(Protocol):
    def connect(self) -> AbstractContextManager[sqlite3.Connection]: ...
    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


@dataclass(frozen=True)
class Question:
    id: int
    page: str
    key: str  # the bank's key (core.classroom.bank), or "" for the teacher's own question
    prompt: str
    choices: tuple[str, ...]
    status: str  # open | revealed | closed
    opened: float
    revealed: float | None
    actual: str | None  # the choice the lab's result supports, recorded at the reveal (None: see the page)

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class Tally:
    question_id: int
    counts: tuple[tuple[str, int], ...]  # (choice, answers) in the question's order
    total: int

    def share(self, choice: str) -> float:
        n = dict(self.counts).get(choice, 0)
        return n / self.total if self.total else 0.0

    def to_rows(self) -> list[dict]:
        """For a bar chart: choice, answers, share."""
        return [{"choice": c, "answers": n, "share": self.share(c)} for c, n in self.counts]


def _question(row: sqlite3.Row) -> Question:
    return Question(id=row["id"], page=row["page"], key=row["key"], prompt=row["prompt"],
                    choices=tuple(json.loads(row["choices"])), status=row["status"], opened=row["opened"],
                    revealed=row["revealed"], actual=row["actual"])


def _check_choices(prompt: str, choices: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    prompt = " ".join(str(prompt).split())
    clean = tuple(" ".join(str(c).split()) for c in choices)
    if not prompt:
        raise ConfigError("a question needs a prompt, e.g. 'Which scores higher on the test set?'")
    if len(clean) < 2 or any(not c for c in clean):
        raise ConfigError("a question needs at least two non-empty choices")
    if len(set(clean)) != len(clean):
        raise ConfigError("each choice of a question must be different")
    return prompt, clean


def open_question(store: SqlStore, page: str, prompt: str, choices: Sequence[str], *, actor: Actor, key: str = "",
                  clock: Callable[[], float] = time.time) -> Question:
    """Open a question on `page` (closing the page's previous one); the teacher only."""
    require_teacher(actor, "ask the class a question")
    prompt, clean = _check_choices(prompt, choices)
    with store.transaction() as conn:
        conn.execute("UPDATE questions SET status = 'closed' WHERE page = ? AND status != 'closed'", (page,))
        cur = conn.execute("INSERT INTO questions (page, key, prompt, choices, status, opened) "
                           "VALUES (?, ?, ?, ?, 'open', ?)", (page, key, prompt, json.dumps(clean), clock()))
        qid = cur.lastrowid
    return get_question(store, int(qid))


def get_question(store: SqlStore, question_id: int) -> Question:
    with store.connect() as conn:
        row = conn.execute("SELECT * FROM questions WHERE id = ?", (question_id,)).fetchone()
    if row is None:
        raise LabError(f"no question {question_id}: it may have been replaced; reload the page")
    return _question(row)


def current_question(store: SqlStore, page: str) -> Question | None:
    """The page's open or revealed question (the newest), or None."""
    with store.connect() as conn:
        row = conn.execute("SELECT * FROM questions WHERE page = ? AND status != 'closed' ORDER BY id DESC LIMIT 1",
                           (page,)).fetchone()
    return _question(row) if row else None


def answer(store: SqlStore, question_id: int, voter: str, choice: str, *,
           clock: Callable[[], float] = time.time) -> None:
    """Record (or change) `voter`'s answer while the question is open."""
    if not voter:
        raise ConfigError("an answer needs a voter (a nickname or session id)")
    with store.transaction() as conn:
        row = conn.execute("SELECT * FROM questions WHERE id = ?", (question_id,)).fetchone()
        if row is None:
            raise LabError(f"no question {question_id}: it may have been replaced; reload the page")
        q = _question(row)
        if not q.is_open:
            raise LabError("answers are closed: the teacher has already revealed this question")
        if choice not in q.choices:
            raise ConfigError(f"{choice!r} is not a choice of this question: pick one of {', '.join(q.choices)}")
        conn.execute("INSERT OR REPLACE INTO answers (question_id, voter, choice, at) VALUES (?, ?, ?, ?)",
                     (question_id, voter, choice, clock()))


def my_answer(store: SqlStore, question_id: int, voter: str) -> str | None:
    with store.connect() as conn:
        row = conn.execute("SELECT choice FROM answers WHERE question_id = ? AND voter = ?",
                           (question_id, voter)).fetchone()
    return row[0] if row else None


def tally(store: SqlStore, question_id: int) -> Tally:
    """Answers per choice, in the question's order (choices nobody picked count 0)."""
    q = get_question(store, question_id)
    with store.connect() as conn:
        counts = dict(conn.execute("SELECT choice, COUNT(*) FROM answers WHERE question_id = ? GROUP BY choice",
                                   (question_id,)).fetchall())
    rows = tuple((c, int(counts.get(c, 0))) for c in q.choices)
    return Tally(question_id, rows, sum(n for _, n in rows))


def answer_count(store: SqlStore, question_id: int) -> int:
    """How many have answered (what the teacher sees before the reveal: no distribution to give anything away)."""
    with store.connect() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM answers WHERE question_id = ?", (question_id,)).fetchone()[0])


def reveal(store: SqlStore, question_id: int, *, actor: Actor, actual: str | None = None,
           clock: Callable[[], float] = time.time) -> Question:
    """Freeze the answers and show the tally beside `actual` (the choice the lab's result supports)."""
    require_teacher(actor, "reveal the answers")
    q = get_question(store, question_id)
    if actual is not None and actual not in q.choices:
        raise ConfigError(f"the actual answer {actual!r} is not a choice of this question")
    with store.transaction() as conn:
        changed = conn.execute("UPDATE questions SET status = 'revealed', revealed = ?, actual = ? "
                               "WHERE id = ? AND status = 'open'", (clock(), actual, question_id)).rowcount
    if not changed:
        raise LabError(f"question {question_id} is {q.status}, not open: there is nothing to reveal")
    return get_question(store, question_id)


def close(store: SqlStore, question_id: int, *, actor: Actor) -> None:
    """Take the question off the page (its answers stay in the database)."""
    require_teacher(actor, "close a question")
    with store.connect() as conn:
        conn.execute("UPDATE questions SET status = 'closed' WHERE id = ?", (question_id,))
