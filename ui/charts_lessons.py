"""Altair builders for the report's last lessons (builder, sweeps, more data, ensembles): plain rows in,
`alt.Chart` out, no Streamlit, so each is unit-tested on its own.

Rows come from core.runs.sweeps (`accuracy_vs`, `curve_rows`), core.models.builder (`Summary.table()`) and core.explain.ensemble
(member accuracies, gain curves). Conventions follow ui/charts.py: accuracies are fractions shown as
percentages, train is dashed and test solid, every mark has a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

from ui.charts import dashed_lines, epoch_x, memo

# The learning-rate scenarios keep the same colours everywhere: slow = blue, good = green, diverging = red.
SCENARIO_COLORS = {"too low": "#3b7dd8", "good": "#2a9d55", "too high": "#d1495b"}
BEST_COLOR = "#d1495b"
ENSEMBLE_COLOR = "#d1495b"
MEMBER_COLOR = "#8a97a8"


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def numeric_axis(values: Iterable[Any]) -> bool:
    """True when every swept value is a finite number (a quantitative axis); else the axis is categorical."""
    values = list(values)
    return bool(values) and all(is_number(v) for v in values)


def log_axis(values: Iterable[Any]) -> bool:
    """A log axis suits positive numbers spanning at least a factor of 4 (learning rates, data sizes)."""
    values = [v for v in values if is_number(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 4


def _x(rows: Sequence[Mapping[str, Any]], x_title: str, log_x: bool | None) -> tuple[alt.X, str]:
    """The x encoding for swept values: quantitative (log when asked or when it suits) or the labels in order."""
    values = [r.get("value") for r in rows]
    if numeric_axis(values):
        log = log_axis(values) if log_x is None else log_x
        # no "nice" domain: a log scale would round 64..1024 out to 10..10,000 and bunch the points up
        scale = alt.Scale(type="log", nice=False, padding=28) if log else alt.Scale(zero=False, nice=False, padding=28)
        ticks = sorted({float(v) for v in values})
        small = min(abs(v) for v in ticks) < 1e-3 and min(ticks) > 0  # learning rates: 3.3e-6, not 0.0000033
        axis = alt.Axis(values=ticks, format="~e" if small else "~g", labelOverlap=True)
        return alt.X("value:Q", title=x_title, scale=scale, axis=axis), "value:Q"
    order = list(dict.fromkeys(str(r.get("label")) for r in rows))
    return alt.X("label:N", title=x_title, sort=order, axis=alt.Axis(labelAngle=0)), "label:N"


def _splits_frame(rows: Sequence[Mapping[str, Any]], show_train: bool) -> pd.DataFrame:
    out = []
    for r in rows:
        for split in ("test", "train") if show_train else ("test",):
            acc = r.get(f"{split}_acc")
            if acc is None or not is_number(acc):
                continue
            out.append({"value": r.get("value"), "label": str(r.get("label")), "series": r.get("series") or "",
                        "split": split, "accuracy": float(acc), "run": r.get("name") or "",
                        "best": bool(r.get("is_best")) and split == "test"})
    return pd.DataFrame(out, columns=["value", "label", "series", "split", "accuracy", "run", "best"])


@memo
def accuracy_vs_chart(rows: Sequence[Mapping[str, Any]], *, x_title: str = "swept value", log_x: bool | None = None,
                      show_train: bool = True, annotate: bool = False, height: int = 280,
                      title: str = "") -> alt.LayerChart:
    """Final test (solid) and train (dashed) accuracy against the swept value, one colour per `series`, the best
    run ringed and labelled. rows: core.runs.sweeps.accuracy_vs output (value, label, series, test_acc, train_acc,
    is_best, name). Numeric values get a quantitative axis (log when they span a wide range), others a
    categorical one in the given order. annotate: write each run's label (e.g. "too high") under its test point."""
    df = _splits_frame(rows, show_train)
    x, x_field = _x(rows, x_title, log_x)
    several = df["series"].nunique() > 1
    color = (alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=280)) if several
             else alt.value("#1f77b4"))
    tooltip = ["run:N", "split:N", "label:N", alt.Tooltip("accuracy:Q", format=".1%")]
    base = alt.Chart(df).encode(x=x, y=alt.Y("accuracy:Q", title="final accuracy", axis=alt.Axis(format=".0%")),
                                color=color, tooltip=tooltip)
    lines = dashed_lines(base.encode(detail="series:N"), point_size=60, orient="bottom")
    best = df[df["best"]]
    ring = alt.Chart(best).mark_point(size=420, filled=False, strokeWidth=3, color=BEST_COLOR).encode(
        x=alt.X(x_field), y="accuracy:Q", tooltip=tooltip)
    text = alt.Chart(best).mark_text(dy=-18, fontWeight="bold", color=BEST_COLOR).encode(
        x=alt.X(x_field), y="accuracy:Q", text=alt.value("best"))
    layers = [lines, ring, text]
    if annotate:
        tests = df[df["split"] == "test"]
        layers.append(alt.Chart(tests).mark_text(dy=16, color="#444").encode(
            x=alt.X(x_field), y="accuracy:Q", text="label:N"))
    return alt.layer(*layers).properties(height=height, title=title)


@memo
def time_vs_chart(rows: Sequence[Mapping[str, Any]], *, x_title: str = "swept value", log_x: bool | None = None,
                  height: int = 240, title: str = "wall time of each run") -> alt.Chart:
    """Training wall time (seconds) against the swept value, one colour per `series`."""
    df = pd.DataFrame([{"value": r.get("value"), "label": str(r.get("label")), "series": r.get("series") or "",
                        "seconds": float(r["seconds"]), "run": r.get("name") or ""}
                       for r in rows if is_number(r.get("seconds"))],
                      columns=["value", "label", "series", "seconds", "run"])
    x, _ = _x(rows, x_title, log_x)
    several = df["series"].nunique() > 1
    color = (alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=280)) if several
             else alt.value("#6c757d"))
    return alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=60)).encode(
        x=x, y=alt.Y("seconds:Q", title="training time (s)"), color=color, detail="series:N",
        tooltip=["run:N", "label:N", alt.Tooltip("seconds:Q", format=".1f")],
    ).properties(height=height, title=title)


@memo
def gap_vs_chart(rows: Sequence[Mapping[str, Any]], *, x_title: str = "swept value", log_x: bool | None = None,
                 height: int = 220, title: str = "overfitting gap: train − test accuracy") -> alt.LayerChart:
    """The train-test gap of each finished run against the swept value (a zero rule for reference)."""
    df = pd.DataFrame([{"value": r.get("value"), "label": str(r.get("label")), "gap": float(r["gap"]),
                        "run": r.get("name") or ""} for r in rows if is_number(r.get("gap"))],
                      columns=["value", "label", "gap", "run"])
    x, _ = _x(rows, x_title, log_x)
    line = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=60), color="#b5651d").encode(
        x=x, y=alt.Y("gap:Q", title="train − test", axis=alt.Axis(format="+.0%")),
        tooltip=["run:N", "label:N", alt.Tooltip("gap:Q", format="+.1%")])
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#888").encode(y="y:Q")
    return alt.layer(line, zero).properties(height=height, title=title)


@memo
def data_size_chart(rows: Sequence[Mapping[str, Any]], *, height: int = 300,
                    title: str = "accuracy against training-set size") -> alt.LayerChart:
    """"More data is better": test (solid) and train (dashed) accuracy against the number of training images on
    a log axis, the gap between them shaded. rows: core.runs.sweeps.accuracy_vs(records, "subset")."""
    band = pd.DataFrame([{"value": r["value"], "train_acc": float(r["train_acc"]), "test_acc": float(r["test_acc"])}
                         for r in rows if is_number(r.get("value")) and is_number(r.get("train_acc"))
                         and is_number(r.get("test_acc"))], columns=["value", "train_acc", "test_acc"])
    x, _ = _x(rows, "training images (log scale)", True)
    area = alt.Chart(band).mark_area(opacity=0.15, color="#b5651d").encode(
        x=x, y=alt.Y("train_acc:Q", title="final accuracy"), y2="test_acc:Q",
        tooltip=[alt.Tooltip("value:Q", title="training images"), alt.Tooltip("train_acc:Q", format=".1%"),
                 alt.Tooltip("test_acc:Q", format=".1%")])
    return alt.layer(area, accuracy_vs_chart(rows, x_title="training images (log scale)", log_x=True)
                     ).properties(height=height, title=title)


def curves_long(curve_rows: Iterable[Mapping[str, Any]], metric: str) -> pd.DataFrame:
    """core.runs.sweeps.curve_rows → one row per (run, epoch, split) with `value` = the metric (None dropped)."""
    field = {"accuracy": "acc"}.get(metric, metric)  # rows carry train_acc / train_loss
    out = []
    for r in curve_rows:
        for split in ("train", "test"):
            v = r.get(f"{split}_{field}")
            if v is None or not is_number(v):
                continue
            out.append({"label": r.get("label") or "", "epoch": r.get("epoch"), "split": split, "value": float(v)})
    return pd.DataFrame(out, columns=["label", "epoch", "split", "value"])


@memo
def sweep_curves_chart(curve_rows: Iterable[Mapping[str, Any]], metric: str = "accuracy", *,
                       colors: Mapping[str, str] | None = None, order: Sequence[str] | None = None,
                       log_y: bool = False, height: int = 280, title: str = "") -> alt.Chart:
    """Every run of a sweep per epoch, overlaid: one colour per run label (`colors` fixes them, e.g. the LR
    scenarios' blue/green/red), train dashed and test solid. metric: accuracy | loss (log_y for losses that
    blow up)."""
    df = curves_long(curve_rows, metric)
    labels = list(order) if order else list(dict.fromkeys(df["label"]))
    if colors:
        scale = alt.Scale(domain=labels, range=[colors.get(k, "#999999") for k in labels])
    else:
        scale = alt.Scale(domain=labels)
    accuracy = metric == "accuracy"
    y_scale = alt.Scale(type="log") if log_y and not accuracy else alt.Scale(zero=accuracy)
    y = alt.Y("value:Q", title="accuracy" if accuracy else "loss (cross-entropy)" + (", log scale" if log_y else ""),
              scale=y_scale, axis=alt.Axis(format=".0%") if accuracy else alt.Axis())
    return dashed_lines(alt.Chart(df).encode(
        x=epoch_x(df["epoch"]), y=y,
        color=alt.Color("label:N", title="run", scale=scale, sort=labels,
                        legend=alt.Legend(orient="bottom", labelLimit=320)),
        tooltip=["label:N", "split:N", "epoch:Q", alt.Tooltip("value:Q", title=metric,
                                                              format=".1%" if accuracy else ".3f")],
    )).properties(height=height, title=title)


@memo
def ensemble_bars_chart(members: Sequence[tuple[str, float]], ensemble: float, *, height: int = 260,
                        title: str = "each member alone, and the ensemble") -> alt.LayerChart:
    """One bar per member's test accuracy (grey) and one for the ensemble (red), with its value as text."""
    rows = [{"model": name, "accuracy": float(acc), "kind": "member"} for name, acc in members]
    rows.append({"model": "ensemble", "accuracy": float(ensemble), "kind": "ensemble"})
    df = pd.DataFrame(rows)
    order = [r["model"] for r in rows]
    enc = dict(x=alt.X("model:N", sort=order, title=None, axis=alt.Axis(labelAngle=-20, labelLimit=220)),
               y=alt.Y("accuracy:Q", title="test accuracy", axis=alt.Axis(format=".0%")))
    bars = alt.Chart(df).mark_bar().encode(
        **enc, color=alt.Color("kind:N", scale=alt.Scale(domain=["member", "ensemble"],
                                                         range=[MEMBER_COLOR, ENSEMBLE_COLOR]), legend=None),
        tooltip=["model:N", alt.Tooltip("accuracy:Q", format=".2%")])
    text = alt.Chart(df).mark_text(dy=-8).encode(**enc, text=alt.Text("accuracy:Q", format=".1%"))
    return alt.layer(bars, text).properties(height=height, title=title)


@memo
def gain_chart(curves: Mapping[str, Sequence[tuple[int, float]]], *, best_single: float | None = None,
               height: int = 260, title: str = "ensemble accuracy as members are added") -> alt.LayerChart:
    """Accuracy of the first k members' ensemble against k, one line per adding order (e.g. "best first",
    "as chosen"); a dotted rule at the best single member, so the gain reads as the height above it."""
    df = pd.DataFrame([{"order": name, "members": int(k), "accuracy": float(acc)}
                       for name, points in curves.items() for k, acc in points],
                      columns=["order", "members", "accuracy"])
    line = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=70)).encode(
        x=alt.X("members:Q", title="models in the ensemble", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("accuracy:Q", title="test accuracy", axis=alt.Axis(format=".0%"), scale=alt.Scale(zero=False)),
        color=alt.Color("order:N", title="adding", legend=alt.Legend(orient="bottom")),
        tooltip=["order:N", "members:Q", alt.Tooltip("accuracy:Q", format=".2%")])
    layers: list[alt.Chart] = [line]
    if best_single is not None:
        rule = pd.DataFrame({"accuracy": [float(best_single)], "what": ["best single model"]})
        layers.append(alt.Chart(rule).mark_rule(strokeDash=[4, 4], color="#555").encode(
            y="accuracy:Q", tooltip=["what:N", alt.Tooltip("accuracy:Q", format=".2%")]))
    return alt.layer(*layers).properties(height=height, title=title)


@memo
def params_chart(table: Sequence[Mapping[str, Any]], *, height: int | None = None,
                 title: str = "where the parameters are") -> alt.Chart:
    """Horizontal bars: parameters per layer (layers without any are left out), in network order.
    table: core.models.builder.Summary.table() rows (layer, params)."""
    rows = [{"layer": r["layer"], "params": int(r["params"])} for r in table if r.get("params")]
    df = pd.DataFrame(rows, columns=["layer", "params"])
    total = max(1, int(df["params"].sum())) if not df.empty else 1
    df["share"] = df["params"] / total
    order = list(df["layer"])
    return alt.Chart(df).mark_bar(color="#4c78a8").encode(
        y=alt.Y("layer:N", sort=order, title=None),
        x=alt.X("params:Q", title="parameters", axis=alt.Axis(format="~s")),
        tooltip=["layer:N", alt.Tooltip("params:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=height or max(80, 24 * max(1, len(order))), title=title)
