"""The shape every concept page shares: a title with its lesson, a takeaway, a "try this", errors as messages.

Pages call these instead of styling text themselves, so all pages read alike on a projector.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import streamlit as st

from core.errors import LabError
from ui.text import error, plain  # noqa: F401 - pages take them from here with the other page pieces


def page_header(title: str, intro: str, *, report: str | None = None) -> None:
    """Title, a short explanation in the lab's own words, and what the report found (if it has a number)."""
    st.title(title)
    st.markdown(intro)
    if report:
        st.caption(f"📄 The report: {report}")


def takeaway(text: str) -> None:
    st.success(f"**Takeaway.** {text}", icon=":material/lightbulb:")


def try_this(items: Sequence[str]) -> None:
    with st.container(border=True):
        st.markdown("**Try this**\n" + "\n".join(f"- {item}" for item in items))


def presenter() -> bool:
    from ui.settings import current

    return current().presenter


def show_chart(where, chart, **kw) -> None:
    """`where.altair_chart(chart, **kw)`, with projector-sized text in presenter mode (ui.charts.projector)."""
    from ui.charts import projector

    where.altair_chart(projector(chart) if presenter() else chart, **kw)


def chart_height(normal: int = 280) -> int:
    """Charts grow in presenter mode, so the back row can read them."""
    return int(normal * 1.6) if presenter() else normal


@contextlib.contextmanager
def friendly_errors(what: str = "This step") -> Iterator[None]:
    """Show a LabError as its message and any other failure as a short error - never a raw traceback."""
    try:
        yield
    except LabError as e:
        error(str(e))
    except Exception as e:  # noqa: BLE001 - the page must survive; the message says what failed
        error(f"{what} failed: {type(e).__name__}: {e}")


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}%}"
