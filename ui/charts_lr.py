"""Altair chart of the learning-rate range test: loss against LR on a log axis, growing step by step, with the
suggestions and the report's LR as labelled vertical rules - the lab's recommendation wide and solid, the
other rules thin and dashed. No Streamlit here, so it is testable on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import altair as alt
import pandas as pd

from ui.charts import memo

SERIES = ["loss of each step", "smoothed"]
SUGGESTION_COLOURS = {"recommended": "#111111", "steepest": "#d1495b", "minimum/10": "#2e86ab",
                      "descent 2/3": "#3b8b3b", "fastai valley": "#8e44ad", "fastai slide": "#c27c0e",
                      "fastai minimum": "#1b998b", "fastai steep": "#e07a5f"}
REPORT_COLOUR = "#8a8f98"
RECOMMENDED = "recommended"  # core.train.lr_recommend.RECOMMENDED: the rule that stands out
LEGEND_ROW_PX = 22  # a row of the rules' legend below the chart: the chart grows by this much per rule
RULE_STYLE = {RECOMMENDED: ([1, 0], 5.0), "report": ([2, 3], 2.5), "other": ([6, 4], 1.8)}  # (dash, width)


def finder_frame(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float]) -> pd.DataFrame:
    """Long form: one row per step and series (raw loss, smoothed loss)."""
    rows = [{"step": i + 1, "lr": lr, "series": name, "loss": value}
            for i, (lr, raw, smooth) in enumerate(zip(lrs, losses, smoothed, strict=True))
            for name, value in zip(SERIES, (raw, smooth), strict=True)]
    return pd.DataFrame(rows, columns=["step", "lr", "series", "loss"])


def rules_frame(suggestions: Iterable[Any], report_lr: float | None = None,
                lr_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """One row per suggestion that has an LR (objects with .name and .lr, e.g. core.train.lr_finder.Suggestion), and
    the report's LR when given and inside lr_range. Suggestions without an LR are left out."""
    rows = [{"name": s.name, "lr": float(s.lr), "label": f"{s.name} {s.lr:.1e}",
             "kind": RECOMMENDED if s.name == RECOMMENDED else "other"} for s in suggestions if s.lr is not None]
    if report_lr is not None and (lr_range is None or lr_range[0] <= report_lr <= lr_range[1]):
        rows.append({"name": "report", "lr": float(report_lr), "label": f"report {report_lr:g}", "kind": "report"})
    return pd.DataFrame(rows, columns=["name", "lr", "label", "kind"])


def _y_domain(losses: Sequence[float], smoothed: Sequence[float]) -> list[float] | None:
    """Room for the whole smoothed curve and the raw losses up to 1.5× the first loss: one spiking step must not
    squash the curve into a flat line (spikes are clipped at the top)."""
    if not losses:
        return None
    low = min(min(losses), min(smoothed))
    high = max(max(smoothed), min(max(losses), 1.5 * max(losses[0], smoothed[0])))
    pad = max(0.05 * (high - low), 0.02 * abs(high), 1e-3)  # one point alone still gets a readable axis
    return [low - pad, high + pad]


@memo
def lr_finder_chart(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float], *,
                    lr_range: tuple[float, float], suggestions: Iterable[Any] = (), report_lr: float | None = None,
                    height: int = 320, title: str = "") -> alt.LayerChart:
    """Loss (each step, faint) and its smoothed curve (bold) against the LR on a log axis fixed to `lr_range`
    (start_lr, end_lr), so the curve grows across a steady axis; the latest point is circled. Suggestions with
    an LR and the report's LR are vertical rules, each named with its LR in the legend. `height`: the plot's; a
    legend of more than the recommendation and the report's LR adds its own rows below it."""
    frame = finder_frame(lrs, losses, smoothed)
    x_scale = alt.Scale(type="log", domain=[float(lr_range[0]), float(lr_range[1])])
    decades = [10.0 ** k for k in range(math.floor(math.log10(lr_range[0])), math.ceil(math.log10(lr_range[1])) + 1)]
    x = alt.X("lr:Q", title="learning rate (log scale)", scale=x_scale,
              axis=alt.Axis(values=decades, grid=True,  # 1e-7 … 1e-4, then 0.001 … 10
                            labelExpr="datum.value < 0.001 ? format(datum.value, '.0e') : format(datum.value, '~g')"))
    domain = _y_domain(losses, smoothed)
    y_scale = alt.Scale(zero=False, domain=domain or [0.0, 1.0])
    # before the first step there is no loss to label: an empty axis, not made-up numbers
    y = alt.Y("loss:Q", title="loss", scale=y_scale, axis=alt.Axis() if domain else alt.Axis(labels=False, ticks=False))
    colour = alt.Color("series:N", scale=alt.Scale(domain=SERIES, range=["#9aa5b1", "#1f4e79"]),
                       legend=alt.Legend(orient="top", title=None))
    tooltip = [alt.Tooltip("step:Q"), alt.Tooltip("lr:Q", format=".2e"), "series:N",
               alt.Tooltip("loss:Q", format=".3f")]
    curves = alt.Chart(frame).mark_line(clip=True).encode(
        x=x, y=y, color=colour, tooltip=tooltip,
        strokeWidth=alt.StrokeWidth("series:N", scale=alt.Scale(domain=SERIES, range=[1.2, 3.5]), legend=None),
        opacity=alt.Opacity("series:N", scale=alt.Scale(domain=SERIES, range=[0.7, 1.0]), legend=None))
    layers: list[alt.Chart] = [curves]
    if lrs:
        last = pd.DataFrame([{"step": len(lrs), "lr": lrs[-1], "series": "smoothed", "loss": smoothed[-1]}])
        layers.append(alt.Chart(last).mark_point(size=160, filled=True, color="#1f4e79", clip=True).encode(
            x=x, y=y, tooltip=tooltip))
    rules = rules_frame(suggestions, report_lr, lr_range)
    if not rules.empty:
        # Rules are named in a legend, never written on the chart: eight labels at close LRs were struck through
        # by each other's lines, and a phone cut off a label at its right edge. The recommendation and the
        # report's LR alone: a small legend in the top-left corner, above the flat start of the curve; with
        # the other rules, one column below the chart (two were cut at a phone's edge), the chart taller by it.
        others = bool((rules["kind"] == "other").any())
        if others:
            height += LEGEND_ROW_PX * len(rules)
        legend = alt.Legend(orient="bottom", title=None, columns=1, symbolType="stroke", symbolStrokeWidth=3,
                            labelLimit=240) if others else \
            alt.Legend(orient="top-left", title=None, symbolType="stroke", symbolStrokeWidth=3, labelLimit=240,
                       fillColor="white", padding=6)
        rule_colour = alt.Color("label:N", legend=legend, scale=alt.Scale(
            domain=list(rules["label"]), range=[SUGGESTION_COLOURS.get(n, REPORT_COLOUR) for n in rules["name"]]))
        kinds = list(RULE_STYLE)
        layers.append(alt.Chart(rules).mark_rule().encode(
            x=alt.X("lr:Q", scale=x_scale), color=rule_colour,
            tooltip=["name:N", alt.Tooltip("lr:Q", format=".2e")],
            strokeDash=alt.StrokeDash("kind:N", legend=None, scale=alt.Scale(
                domain=kinds, range=[RULE_STYLE[k][0] for k in kinds])),
            strokeWidth=alt.StrokeWidth("kind:N", legend=None, scale=alt.Scale(
                domain=kinds, range=[RULE_STYLE[k][1] for k in kinds]))))
    return alt.layer(*layers).resolve_scale(color="independent").properties(height=height, title=title)

