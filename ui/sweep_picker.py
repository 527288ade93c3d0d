"""The sweep picker the lesson pages share (Sweeps, More data): a dataset's sweeps - all of them, or one
lesson's - newest first, chosen in a selectbox whose choice lives in the URL so a link reopens the same sweep."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.runs.records import RunRecord
from ui import runlib, urlstate


def sweeps_on(dataset: str, prefix: str | None = None) -> dict[str, list[RunRecord]]:
    """sweep id → its runs (oldest first), newest sweep first; with `prefix`, only sweep ids "<prefix>-…"."""
    out: dict[str, list[RunRecord]] = {}
    for r in runlib.library().list_runs(dataset=dataset):
        if r.sweep_id and (prefix is None or r.sweep_id.startswith(prefix + "-")):
            out.setdefault(r.sweep_id, []).append(r)
    return {k: list(reversed(v)) for k, v in out.items()}


def pick_sweep(sweeps: dict[str, list[RunRecord]], *, label: str, url_key: str, key: str,
               describe: Callable[[str, list[RunRecord]], str], where=st) -> str:
    """Draw the picker over `sweeps` (non-empty) and return the chosen id; the URL's `url_key` preselects one
    (the widget key carries it, so following a new link resets the choice)."""
    ids = list(sweeps)
    wanted = urlstate.get(url_key)
    # Labels are made once per script run: one that says "3 min ago" must not change between this run and the
    # next widget-state read, or the choice no longer matches its option.
    labels = {s: describe(s, sweeps[s]) for s in ids}
    picked = where.selectbox(label, ids, ids.index(wanted) if wanted in ids else 0, key=f"{key}:{wanted}",
                             format_func=labels.__getitem__)
    urlstate.put(url_key, picked)
    return picked
