"""Class-mode charts (pure Altair, no streamlit): the tally of a predict-then-reveal question."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

from ui.charts import memo

ACTUAL_COLOR = "#2e7d32"
OTHER_COLOR = "#90a4ae"
LABEL_CHARS = 18  # a choice's label wraps at about this many characters (two short lines on a phone)


@memo
def tally_chart(rows: Sequence[Mapping[str, Any]], actual: str | None = None, *, height: int = 220) -> alt.LayerChart:
    """Horizontal bars, one per choice in the question's order (rows: choice, answers, share); the choice the lab's
    result supports is green and its label starts with "✓". Readable on a phone: each choice is wrapped to lines
    of about LABEL_CHARS characters (so the bars keep most of the width), and the counts are written after the
    bars, with room for them, instead of on an axis of crowded numbers."""
    frame = pd.DataFrame([{**r, "is_actual": r["choice"] == actual,
                           "shown": _wrapped(("✓ " if r["choice"] == actual else "") + str(r["choice"])),
                           "label": f"{r['answers']} ({r['share']:.0%})"} for r in rows])
    most = max([int(r["answers"]) for r in rows] + [1])
    base = alt.Chart(frame).encode(
        y=alt.Y("shown:N", sort=list(frame["shown"]), title=None,
                axis=alt.Axis(labelExpr="split(datum.label, '\\n')", labelLimit=160, labelPadding=6)),
        x=alt.X("answers:Q", title=None, axis=None, scale=alt.Scale(domain=[0, most * 1.6])))
    bars = base.mark_bar().encode(
        color=alt.condition(alt.datum.is_actual, alt.value(ACTUAL_COLOR), alt.value(OTHER_COLOR)),
        tooltip=["choice", "answers", alt.Tooltip("share:Q", format=".0%")])
    text = base.mark_text(align="left", dx=4).encode(text="label:N")
    # 14 px as the chart's own config, not on the marks: presenter mode (ui.charts.projector) replaces it by 16
    return (bars + text).properties(height=height).configure_axis(labelFontSize=14).configure_text(fontSize=14)


def _wrapped(text: str) -> str:
    """`text` in lines of at most about LABEL_CHARS characters, joined by newlines (the axis splits them)."""
    return "\n".join(textwrap.wrap(text, LABEL_CHARS)) or text
