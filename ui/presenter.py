"""Presenter (projector) mode: whether this session asked for it, and the page styling that goes with it.

Everything a back row must read grows: metric values, their labels, captions, buttons and the menu never
truncate; charts get projector-sized text through `ui.charts.projector` (ui.layout.show_chart applies it).
This module reads only the session and the URL, so app.py can ask before the sidebar is drawn (the menu
moves to the top in presenter mode, which puts the lab settings first in the sidebar).
"""

from __future__ import annotations

import streamlit as st

KEY = "presenter"  # the sidebar toggle's key and query parameter (ui/sidebar.py draws it)

CSS = """<style>
  /* room: the page starts near the top and uses the projector's width */
  .stMainBlockContainer, .block-container { max-width: 100% !important; padding-top: 3.5rem !important;
    padding-left: 3rem !important; padding-right: 3rem !important; }
  html, body, [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.2rem; }
  [data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { font-size: 1.05rem !important; }
  /* the key numbers: large, and their labels whole */
  [data-testid="stMetricValue"], [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p,
  [data-testid="stMetricValue"] div { font-size: 2.9rem !important; line-height: 1.15 !important; font-weight: 600; }
  [data-testid="stMetricLabel"], [data-testid="stMetricLabel"] p { font-size: 1.25rem !important; }
  [data-testid="stMetricDelta"], [data-testid="stMetricDelta"] p { font-size: 1.15rem !important; }
  [data-testid="stMetricLabel"] *, [data-testid="stMetricValue"] *, .stButton button *,
  [data-testid="stSidebarNav"] *, [data-testid="stTopNavLinkContainer"] * {
    white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
  .stButton button { height: auto !important; min-height: 2.8rem; }
  .stButton button p { font-size: 1.15rem !important; }
  /* tables (the report card): body-sized text, and its two accuracy columns as large as a heading */
  [data-testid="stMarkdownContainer"] th, [data-testid="stMarkdownContainer"] td { font-size: 1.2rem; }
  .st-key-report_card td:nth-child(2) strong, .st-key-report_card td:nth-child(3) strong { font-size: 1.9rem; }
</style>"""


def requested() -> bool:
    """Presenter mode for this session: the toggle's value once drawn, else the URL's `presenter` (first run)."""
    if KEY in st.session_state:
        return bool(st.session_state[KEY])
    return str(st.query_params.get(KEY, "")).lower() in ("1", "true", "yes", "on")


def apply_css() -> None:
    st.markdown(CSS, unsafe_allow_html=True)
