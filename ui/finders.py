"""The server's shared LR range tests: one core.train.finder_pool.FinderPool per server process, so every
session with the same settings steps along one curve computed once, and at most CIFAR_LAB_MAX_FINDERS models
(default 2) are held for range tests at any moment, however many students open the page."""

from __future__ import annotations

import os

import streamlit as st

from core.train.finder_pool import FinderPool

DEFAULT_MAX_LIVE = 2


def max_live() -> int:
    """$CIFAR_LAB_MAX_FINDERS when it is a whole number >= 1, else 2 (each live test holds ~7x its model)."""
    raw = os.environ.get("CIFAR_LAB_MAX_FINDERS", "")
    return int(raw) if raw.isdigit() and int(raw) >= 1 else DEFAULT_MAX_LIVE


@st.cache_resource(show_spinner=False)
def pool() -> FinderPool:
    return FinderPool(max_live=max_live())
