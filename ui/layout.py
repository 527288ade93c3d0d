"""The shape every concept page shares: a title with its lesson, a takeaway, a "try this", errors as messages.

Pages call these instead of styling text themselves, so all pages read alike on a projector.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator, Sequence

import streamlit as st

from core.errors import LabError
from ui.text import error, plain  # noqa: F401 - pages take them from here with the other page pieces

log = logging.getLogger(__name__)


def page_header(title: str, intro: str, *, page: str, report: str | None = None) -> None:
    """Title, a short explanation in the lab's own words, and what the report found (if it has a number).

    `page` is the page's key, its script's name (the one the page gives ui.class_mode.question_gate): a deep link
    that bypassed app.py goes round through it (ui.sidebar.enter), and while a class question is open on the page
    the report's numbers are hidden with its results."""
    from ui.sidebar import enter

    enter(page)
    st.title(title)
    st.markdown(intro)
    if report and not _question_open(page):
        st.caption(f"📄 The report: {report}")


def _question_open(page: str) -> bool:
    """Whether a class question is open on the page: ui.class_mode.question_gate hides the page's results then."""
    from core.classroom.questions import current_question
    from ui.runlib import library

    q = current_question(library(), page)
    return q is not None and q.is_open


def takeaway(text: str) -> None:
    st.success(f"**Takeaway.** {text}", icon=":material/lightbulb:")


def try_this(items: Sequence[str]) -> None:
    with st.container(border=True):
        st.markdown("**Try this**\n" + "\n".join(f"- {item}" for item in items))


def presenter() -> bool:
    from ui.sidebar import current

    return current().presenter


def show_chart(where, chart, **kw) -> None:
    """Draw an altair chart in `where` (st, a column, an st.empty), with projector-sized text in presenter mode
    (ui.charts.projector). Every chart of the lab goes through here: `st.vega_lite_chart` with the spec of
    ui.charts.to_vega_lite, not `st.altair_chart` (see there why)."""
    from ui.charts import projector, to_vega_lite

    where.vega_lite_chart(to_vega_lite(projector(chart) if presenter() else chart), **kw)


SCROLL_X = "scroll_x_"  # the key prefix of scroll_x's containers (Streamlit gives each the class st-key-<key>)
_SCROLL_CSS = f"<style>[class*='st-key-{SCROLL_X}'] {{ overflow-x: auto; }}</style>"


def scroll_x(key: str, where=st):
    """A container whose content, where wider than the screen (a confusion matrix on a phone), scrolls sideways
    inside it: the page itself never does, and nothing is cut off."""
    where.markdown(_SCROLL_CSS, unsafe_allow_html=True)
    return where.container(key=SCROLL_X + key)


PRESENTER_METRICS_PER_ROW = 3  # at 1280×720 five projector-sized numbers in a row broke inside ("1.00e / +01")


def metric_columns(n: int, where=st) -> list:
    """Columns for a row of n metrics in `where`; in presenter mode at most PRESENTER_METRICS_PER_ROW to a row (the
    rest on the next rows, the same widths), so their enlarged numbers stay whole on a projector."""
    per_row = PRESENTER_METRICS_PER_ROW if presenter() else max(1, n)
    cols: list = []
    while len(cols) < n:
        cols += list(where.columns(per_row))[:n - len(cols)]
    return cols


def chart_height(normal: int = 280) -> int:
    """Charts grow in presenter mode, so the back row can read them."""
    return int(normal * 1.6) if presenter() else normal


@contextlib.contextmanager
def friendly_errors(what: str = "This step") -> Iterator[None]:
    """Wrap the calls that can raise a problem the user can fix (core.errors.LabError): it shows as its one-line
    message. Anything else is a bug: the page says so in plain words with a short reference, and the full
    traceback goes to the server log (logging, with the same reference), so the evidence is kept. Wrap the
    calls that can fail, not a whole page body. Streamlit's st.rerun / st.stop pass through (BaseException)."""
    try:
        yield
    except LabError as e:
        error(str(e))
    except Exception:  # noqa: BLE001 - the page must survive; the log keeps the traceback
        ref = uuid.uuid4().hex[:8]
        log.exception("%s failed (reference %s)", what, ref)
        error(f"{what} failed: something went wrong inside the lab. The full traceback is in the server's log "
              f"(reference {ref}).")


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}%}"
