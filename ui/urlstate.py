"""Widgets whose value lives in the URL query string, as in TensorFlow Playground: a link reopens the view.

Each helper seeds the widget from `st.query_params` the first time a session sees the key, then writes the
widget's value back on every run. Values that do not parse (a hand-edited URL) fall back to the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

_SEEDED = "_url_seeded"


def _seed(key: str, options: Sequence[Any] | None, default: Any, parse: Callable[[str], Any]) -> None:
    seeded = st.session_state.setdefault(_SEEDED, set())
    if key in seeded and key in st.session_state:
        return  # seeded once; but a widget Streamlit dropped (not drawn in a finished run) is seeded again,
        # from the URL, or it would come back at its first option (a training subset of 500 instead of 2,000)
    seeded.add(key)
    raw = st.query_params.get(key)
    value = default
    if raw is not None:
        try:
            value = parse(raw)
        except (TypeError, ValueError):
            value = default
        if options is not None and value not in options:
            value = default
    if key not in st.session_state:
        st.session_state[key] = value


def _publish(key: str, value: Any, default: Any) -> None:
    text = "" if value is None else str(value)
    if value == default:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != text:
        st.query_params[key] = text


def _parser(example: Any) -> Callable[[str], Any]:
    if isinstance(example, bool):
        return lambda s: s.lower() in ("1", "true", "yes", "on")
    if isinstance(example, int):
        return int
    if isinstance(example, float):
        return float
    return str


def selectbox(where, label: str, options: Sequence[Any], *, key: str, default: Any, **kw: Any) -> Any:
    _seed(key, options, default, _parser(options[0] if options else default))
    value = where.selectbox(label, options, key=key, **kw)
    _publish(key, value, default)
    return value


def select_slider(where, label: str, options: Sequence[Any], *, key: str, default: Any, **kw: Any) -> Any:
    _seed(key, options, default, _parser(options[0]))
    value = where.select_slider(label, options, key=key, **kw)
    _publish(key, value, default)
    return value


def text_input(where, label: str, *, key: str, default: str = "", **kw: Any) -> str:
    _seed(key, None, default, str)
    value = where.text_input(label, key=key, **kw)
    _publish(key, value, default)
    return value


def toggle(where, label: str, *, key: str, default: bool = False, **kw: Any) -> bool:
    _seed(key, None, default, _parser(True))
    value = where.toggle(label, key=key, **kw)
    _publish(key, value, default)
    return value


def number_input(where, label: str, *, key: str, default: float | int, **kw: Any) -> Any:
    _seed(key, None, default, _parser(default))
    value = where.number_input(label, key=key, **kw)
    _publish(key, value, default)
    return value


def query() -> dict[str, str]:
    """The whole query string: what this page shows (followers take it, core/classroom/follow.py)."""
    return st.query_params.to_dict()


def take(query_string: dict[str, str]) -> None:
    """Show what `query_string` says: every widget seeded from the URL is seeded again from it on the next run
    (its session value is dropped), so the page draws the followed choices, not this session's last ones."""
    seeded = st.session_state.setdefault(_SEEDED, set())
    for key in seeded:
        st.session_state.pop(key, None)
    seeded.clear()
    st.query_params.from_dict(query_string)


def set_values(values: dict[str, Any]) -> None:
    """Put `values` in the query string and let their widgets seed from it on the next run (the caller reruns):
    e.g. a "use this budget" button setting a panel's epochs and the sidebar's training images."""
    seeded = st.session_state.setdefault(_SEEDED, set())
    for key, value in values.items():
        seeded.discard(key)
        st.session_state.pop(key, None)
        st.query_params[key] = str(value)


def get(key: str, default: str | None = None) -> str | None:
    """A raw query parameter (e.g. the selected run id)."""
    return st.query_params.get(key, default)


def put(key: str, value: Any | None) -> None:
    """Set (or, with None, remove) a raw query parameter."""
    if value is None:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != str(value):
        st.query_params[key] = str(value)
