"""Class-mode charts (pure Altair, no streamlit): the tally of a predict-then-reveal question."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

from ui.charts import memo

ACTUAL_COLOR = "#2e7d32"
OTHER_COLOR = "#90a4ae"


@memo
def tally_chart(rows: Sequence[Mapping[str, Any]], actual: str | None = None, *, height: int = 220) -> alt.LayerChart:
    """Horizontal bars, one per choice in the question's order (rows: choice, answers, share); the choice the lab's
    result supports is green and labelled "← the result"."""
    frame = pd.DataFrame([{**r, "is_actual": r["choice"] == actual,
                           "label": f"{r['answers']} ({r['share']:.0%})" + ("  ← the result" if r["choice"] == actual
                                                                          else "")} for r in rows])
    order = [r["choice"] for r in rows]
    base = alt.Chart(frame).encode(
        y=alt.Y("choice:N", sort=order, title=None, axis=alt.Axis(labelLimit=360)),
        x=alt.X("answers:Q", title="answers", axis=alt.Axis(tickMinStep=1, format="d")))
    bars = base.mark_bar().encode(
        color=alt.condition(alt.datum.is_actual, alt.value(ACTUAL_COLOR), alt.value(OTHER_COLOR)),
        tooltip=["choice", "answers", alt.Tooltip("share:Q", format=".0%")])
    text = base.mark_text(align="left", dx=4).encode(text="label:N")
    # 14 px as the chart's own config, not on the marks: presenter mode (ui.charts.projector) replaces it by 16
    return (bars + text).properties(height=height).configure_axis(labelFontSize=14).configure_text(fontSize=14)
