"""Text that is data - error messages, paths, run names - shown as written, never as markdown (a `*.jpg` would
become italics, `$x$` maths, `[a](b)` a link). No other ui module is imported here, so any of them may use it.
"""

from __future__ import annotations

import streamlit as st

_MARKDOWN = str.maketrans({ch: "\\" + ch for ch in "\\*_`[]$~<>#|"})


def plain(text: str) -> str:
    """`text` escaped so Streamlit's markdown shows every character as written."""
    return str(text).translate(_MARKDOWN)


def error(text: str, *, where=None, icon: str = ":material/error:") -> None:
    """An error box with the message exactly as written; `where` a container (default st)."""
    (where or st).error(plain(text), icon=icon)
