"""Follow the teacher: what the teacher is presenting — the page and what the page shows — kept in the run
library's settings table, and what a following student's page must do to show the same.

What a page shows lives in one place per page: its URL query string (ui/urlstate.py keeps every choice a page
offers there: the experiment, the LR finder's settings and the points stepped so far, the sample, the run). So
the teacher's browser records {page, title, state = its query string, at} whenever any of it changes, and a
following student's page takes the same query string and page (`follow_move`): a new page is followable without
code of its own. Keys that belong to one browser (its nickname, presenter mode, the sidebar's lab settings) are
never taken from the teacher (`PERSONAL_KEYS`).

Streamlit cannot push to other sessions, so students' pages poll `presenting` (ui/class_mode.py). The teacher's
live run is not stored here: it is whatever run of the teacher's is running (or queued), read at each poll.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.classroom.roles import Actor, require_teacher
from core.classroom.settings import KeyValueStore

SETTING_KEY = "class_presenting"
# One browser's own: who it is, how it is drawn, and the lab settings a class starts from (ui/sidebar.py).
PERSONAL_KEYS = frozenset({"nick", "presenter", "dataset_kind", "folder", "subset", "test_subset", "device"})


@dataclass(frozen=True)
class Presenting:
    page: str  # the page's script path, e.g. pages/mlp_vs_cnn.py (what st.switch_page takes)
    title: str  # what the menu calls it
    at: float  # unix seconds of the last change (of the page or of what it shows)
    state: tuple[tuple[str, str], ...] = ()  # the page's query string without PERSONAL_KEYS, sorted by key

    def state_dict(self) -> dict[str, str]:
        return dict(self.state)


def shared_state(query: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of a query string a follower takes: every key but PERSONAL_KEYS, as sorted (key, value) pairs."""
    return tuple(sorted((str(k), str(v)) for k, v in query.items() if k not in PERSONAL_KEYS))


def present(store: KeyValueStore, page: str, title: str, state: Mapping[str, str] | None = None, *,
            actor: Actor, clock: Callable[[], float] = time.time) -> bool:
    """Record that the teacher shows `page` with query string `state`; returns whether that changed anything (no
    write when not)."""
    require_teacher(actor, "lead the class")
    shown = shared_state(state or {})
    now = presenting(store)
    if now is not None and (now.page, now.title, now.state) == (page, title, shown):
        return False
    record = {"page": page, "title": title, "at": clock(), "state": dict(shown)}
    store.set_setting(SETTING_KEY, json.dumps(record))
    return True


def stop_presenting(store: KeyValueStore, *, actor: Actor) -> None:
    require_teacher(actor, "stop leading the class")
    store.set_setting(SETTING_KEY, "")


def presenting(store: KeyValueStore) -> Presenting | None:
    raw = store.get_setting(SETTING_KEY)
    if not raw:
        return None
    try:
        d = json.loads(raw)
        state = d.get("state") or {}
        if not isinstance(state, dict):
            return None
        return Presenting(str(d["page"]), str(d["title"]), float(d["at"]), shared_state(state))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class FollowMove:
    """What a following student's page does to show what the teacher shows."""

    page: str  # the page to be on (switch to it when it is not the current one)
    query: dict[str, str]  # the whole query string to set: the teacher's shared state + this browser's own keys
    switch_page: bool  # False: same page, only what it shows changes (rerun it with the new query string)
    at: float  # the teacher's change this move applies (the follower remembers it as seen)


def shows(teacher: Presenting | None, *, page: str, query: Mapping[str, str]) -> bool:
    """Whether a page on `page` with `query` shows what the teacher presents (same page, same shared state): the
    follower has taken the teacher's change. Judged on the run that shows it, not when the move is asked for: a
    move can be undone before it lands (a poll of the old page, sent before the switch reached the browser, is
    merged with it and carries the old page and query string), and the next poll must then move again."""
    return teacher is not None and teacher.page == page and teacher.state == shared_state(query)


def follow_move(teacher: Presenting | None, *, page: str, query: Mapping[str, str],
                seen_at: float | None) -> FollowMove | None:
    """The move that brings a follower on `page` with `query` to what the teacher presents, or None.

    The page is always followed: a following student who wanders off is brought back. What the page shows is
    taken at each change the teacher makes (`at` newer than `seen_at`, the last change this follower's page
    showed: see `shows`), so a follower may still try a value on the teacher's page until the teacher's next
    change.
    """
    if teacher is None or shows(teacher, page=page, query=query) or (teacher.page == page and teacher.at == seen_at):
        return None
    own = {k: str(v) for k, v in query.items() if k in PERSONAL_KEYS}
    return FollowMove(teacher.page, {**teacher.state_dict(), **own}, teacher.page != page, teacher.at)
