"""Follow the teacher: which page the teacher is presenting, kept in the run library's settings table.

The teacher's browser writes {page, title, at} whenever the page it shows changes; students' banners poll it
(Streamlit cannot push to other sessions) and offer a one-click jump. The teacher's live run is not stored
here: it is whatever run of the teacher's is running (or queued) in the run library, read at each poll.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from core.classroom.roles import Actor, require_teacher
from core.classroom.settings import KeyValueStore

SETTING_KEY = "class_presenting"


@dataclass(frozen=True)
class Presenting:
    page: str  # the page's script path, e.g. pages/mlp_vs_cnn.py (what st.switch_page takes)
    title: str  # what the menu calls it
    at: float  # unix seconds of the last change


def present(store: KeyValueStore, page: str, title: str, *, actor: Actor,
            clock: Callable[[], float] = time.time) -> bool:
    """Record that the teacher shows `page`; returns whether that changed anything (no write when not)."""
    require_teacher(actor, "lead the class")
    now = presenting(store)
    if now is not None and now.page == page and now.title == title:
        return False
    store.set_setting(SETTING_KEY, json.dumps(asdict(Presenting(page, title, clock()))))
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
        return Presenting(str(d["page"]), str(d["title"]), float(d["at"]))
    except (ValueError, KeyError, TypeError):
        return None
