"""Altair builders for the "Inside the network" pages (filters, saliency, where it errs): plain data in,
`alt.Chart` out, no Streamlit, so each is unit-tested on its own.

Confusion matrices are (C, C) int64 with rows = true class and columns = predicted class (core.explain.confusion).
Conventions follow ui/charts.py: fractions shown as percentages, every mark has a tooltip. In a confusion
heat map the diagonal (right answers) and the rest (mistakes) get their own colour scales: with one scale the
diagonal's hundreds would wash every mistake out to white.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
import torch

from ui.charts import memo

RIGHT_COLOR, WRONG_COLOR, OTHER_COLOR = "#2a9d55", "#d1495b", "#8a97a8"
TEXT_CELLS = 12  # matrices up to this many classes print their counts in the cells
FLAG_ABOVE, PASS_BELOW = 0.8, 0.5  # core.explain.sanity's thresholds (rank correlation), drawn as guide lines


# --- confusion matrices ---------------------------------------------------------------------------------------

def confusion_rows(cm: torch.Tensor, classes: Sequence[str], keep: Sequence[int] | None = None, *,
                   drop_zeros: bool = False) -> list[dict[str, Any]]:
    """One row per cell: true, pred (names), count, fraction (of the true class's images), right (diagonal).

    keep: the class indices to include (rows and columns), in display order; default all. drop_zeros leaves
    out empty cells (a 100×100 matrix is mostly zeros; the chart's background shows them as empty).
    """
    c = cm.shape[0]
    if len(classes) != c or cm.shape != (c, c):
        raise ValueError(f"{len(classes)} class names for a matrix of shape {tuple(cm.shape)}")
    idx = list(range(c)) if keep is None else list(keep)
    totals = cm.sum(1).tolist()
    m = cm.tolist()
    rows = []
    for i in idx:
        for j in idx:
            n = int(m[i][j])
            if drop_zeros and n == 0:
                continue
            rows.append({"true": classes[i], "pred": classes[j], "count": n,
                         "fraction": n / totals[i] if totals[i] else 0.0, "right": i == j})
    return rows


@memo
def confusion_chart(cm: torch.Tensor, classes: Sequence[str], *, keep: Sequence[int] | None = None,
                    title: str = "", cell: int | None = None, text: bool | None = None) -> alt.LayerChart:
    """Heat map of the confusion matrix: rows = true class, columns = predicted class, in `keep`'s order.

    Right answers (the diagonal) are green, mistakes red, each on its own scale of "fraction of the true
    class's images"; empty cells stay blank; tooltips give counts. cell: the side of a cell in pixels (default: 40, smaller for many
    classes so 100 fit in ~640 px; sized by step because Streamlit counts axes and legends into a fixed
    width). text: print the counts in the cells (default: up to TEXT_CELLS classes).
    """
    idx = list(range(cm.shape[0])) if keep is None else list(keep)
    n = max(1, len(idx))
    names = [classes[i] for i in idx]
    df = pd.DataFrame(confusion_rows(cm, classes, idx, drop_zeros=n > 20),
                      columns=["true", "pred", "count", "fraction", "right"])
    step = cell or max(6, min(40, 640 // n))
    font = 11 if n <= 30 else 7
    base = alt.Chart(df).encode(
        x=alt.X("pred:N", sort=names, scale=alt.Scale(domain=names), title="predicted class",
                axis=alt.Axis(labelLimit=140, labelFontSize=font, labelOverlap=False, labelAngle=-50,
                              orient="top")),
        y=alt.Y("true:N", sort=names, scale=alt.Scale(domain=names), title="true class",
                axis=alt.Axis(labelLimit=140, labelFontSize=font, labelOverlap=False)),
        tooltip=[alt.Tooltip("true:N", title="true class"), alt.Tooltip("pred:N", title="predicted"),
                 alt.Tooltip("count:Q", title="images"), alt.Tooltip("fraction:Q", title="of the true class",
                                                                      format=".1%")],
    )
    right = base.transform_filter("datum.right && datum.count > 0").mark_rect().encode(
        color=alt.Color("fraction:Q", title="right", scale=alt.Scale(scheme="greens", domain=[0, 1]),
                        legend=alt.Legend(format=".0%", orient="right", gradientLength=120)))
    wrong = base.transform_filter("!datum.right && datum.count > 0").mark_rect().encode(
        color=alt.Color("fraction:Q", title="mistakes", scale=alt.Scale(scheme="reds", domainMin=0),
                        legend=alt.Legend(format=".0%", orient="right", gradientLength=120)))
    layers = [right, wrong]
    if text if text is not None else n <= TEXT_CELLS:
        layers.append(base.transform_filter("datum.count > 0").mark_text(fontSize=12).encode(
            text="count:Q",
            color=alt.condition("datum.fraction > 0.5", alt.value("white"), alt.value("#222"))))
    return alt.layer(*layers).resolve_scale(color="independent").properties(
        width=alt.Step(step), height=alt.Step(step), title=title)


def most_confused_classes(cm: torch.Tensor, n: int) -> list[int]:
    """The n classes involved in the most mistakes (as the true class or as the wrong answer), most first;
    ties by class index. For showing a readable corner of a 100×100 matrix."""
    off = cm.clone()
    off.fill_diagonal_(0)
    involved = off.sum(0) + off.sum(1)  # (C,)
    order = sorted(range(cm.shape[0]), key=lambda i: (-int(involved[i]), i))
    return order[:max(0, n)]


def grouped_order(classes: Sequence[str], fine_to_coarse: Sequence[int] | None = None,
                  among: Sequence[int] | None = None) -> list[int]:
    """Class indices ordered by superclass, then name (CIFAR-100: the 5 fine classes of a superclass sit side
    by side, so confusions inside a superclass form blocks along the diagonal); without superclasses, by
    name. among: order only these indices."""
    idx = list(range(len(classes))) if among is None else list(among)
    if fine_to_coarse is None:
        return sorted(idx, key=lambda i: (classes[i], i))
    return sorted(idx, key=lambda i: (fine_to_coarse[i], classes[i], i))


# --- per-class accuracy --------------------------------------------------------------------------------------

def per_class_rows(accs: Sequence[float], classes: Sequence[str],
                   superclasses: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows {class, accuracy[, superclass]} sorted by accuracy (best first), classes absent (NaN) left out."""
    if len(accs) != len(classes):
        raise ValueError(f"{len(accs)} accuracies for {len(classes)} classes")
    rows = []
    for i, (name, acc) in enumerate(zip(classes, accs)):
        if acc is None or acc != acc:  # NaN: no test image of this class
            continue
        row = {"class": name, "accuracy": float(acc)}
        if superclasses is not None:
            row["superclass"] = superclasses[i]
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["accuracy"], r["class"]))


@memo
def per_class_chart(accs: Sequence[float], classes: Sequence[str], *, overall: float | None = None,
                    superclasses: Sequence[str] | None = None, height: int = 260,
                    title: str = "") -> alt.LayerChart:
    """Bars of each class's test accuracy, best left to worst right, coloured by accuracy, with a dashed
    rule at the overall accuracy."""
    rows = per_class_rows(accs, classes, superclasses)
    df = pd.DataFrame(rows, columns=["class", "accuracy"] + (["superclass"] if superclasses is not None else []))
    order = [r["class"] for r in rows]
    many = len(order) > 30
    tooltip = [alt.Tooltip("class:N"), alt.Tooltip("accuracy:Q", format=".1%")]
    if superclasses is not None:
        tooltip.append(alt.Tooltip("superclass:N"))
    bars = alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=order, title=None,
                axis=alt.Axis(labelAngle=-60, labelFontSize=8 if many else 12, labelOverlap=False)),
        y=alt.Y("accuracy:Q", title="test accuracy", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="redyellowgreen", domain=[0, 1]), legend=None),
        tooltip=tooltip)
    layers: list[alt.Chart] = [bars]
    if overall is not None:
        rule = pd.DataFrame([{"overall": float(overall), "label": f"overall {overall:.0%}"}])
        layers.append(alt.Chart(rule).mark_rule(strokeDash=[6, 4], color="#333").encode(
            y="overall:Q", tooltip=[alt.Tooltip("overall:Q", title="overall accuracy", format=".1%")]))
        layers.append(alt.Chart(rule).mark_text(align="right", dy=-6, x="width", color="#333").encode(
            y="overall:Q", text="label:N"))
    return alt.layer(*layers).properties(height=height, title=title)


# --- predictions ----------------------------------------------------------------------------------------------

def top_k_rows(guesses: Sequence[Any], true_name: str | None = None) -> list[dict[str, Any]]:
    """Rows {rank, class, prob, superclass, kind} from core.explain.predict's Guesses. kind: "right" (the
    true class), "wrong" (the top answer when it is not the true class), "other"."""
    rows = []
    for rank, g in enumerate(guesses, start=1):
        if true_name is not None and g.name == true_name:
            kind = "right"
        elif rank == 1 and true_name is not None:
            kind = "wrong"
        else:
            kind = "other" if rank > 1 or true_name is not None else "top"
        label = f"{g.name} ({g.superclass})" if getattr(g, "superclass", None) else g.name
        rows.append({"rank": rank, "class": label, "prob": float(g.prob), "superclass": g.superclass or "",
                     "kind": kind})
    return rows


@memo
def top_k_chart(guesses: Sequence[Any], true_name: str | None = None, *, height: int | None = None) -> alt.LayerChart:
    """The model's top-k as horizontal bars with their probabilities printed: green = the true class, red =
    a wrong top answer, blue = the top answer when the truth is unknown (an upload), gray = the rest."""
    rows = top_k_rows(guesses, true_name)
    df = pd.DataFrame(rows, columns=["rank", "class", "prob", "superclass", "kind"])
    order = [r["class"] for r in rows]
    colors = alt.Scale(domain=["right", "wrong", "top", "other"],
                       range=[RIGHT_COLOR, WRONG_COLOR, "#3b7dd8", OTHER_COLOR])
    base = alt.Chart(df).encode(
        y=alt.Y("class:N", sort=order, title=None, axis=alt.Axis(labelLimit=260, labelFontSize=13)),
        x=alt.X("prob:Q", title="probability", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
        tooltip=["rank:O", "class:N", alt.Tooltip("prob:Q", format=".2%")])
    bars = base.mark_bar().encode(color=alt.Color("kind:N", scale=colors, legend=None))
    text = base.mark_text(align="left", dx=4, fontSize=13).encode(text=alt.Text("prob:Q", format=".1%"))
    return alt.layer(bars, text).properties(height=height or 34 * max(1, len(rows)) + 20)


# --- the sanity check -----------------------------------------------------------------------------------------

def sanity_rows(steps: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows {step, label, rank_corr, ssim, target_prob} from core.explain.sanity's SanitySteps; label says what has
    been randomized by then ("trained" at step 0, "+ layer" after)."""
    return [{"step": s.step, "label": "trained" if s.step == 0 else f"+ {s.layer}", "rank_corr": float(s.rank_corr),
             "ssim": float(s.ssim), "target_prob": float(s.target_prob)} for s in steps]


@memo
def sanity_chart(steps: Sequence[Any], *, height: int = 300, title: str = "") -> alt.LayerChart:
    """Rank correlation with the trained network's map after each randomization step, with the check's two
    thresholds as guide lines: above FLAG_ABOVE at the end = the map ignores the weights."""
    rows = sanity_rows(steps)
    df = pd.DataFrame(rows, columns=["step", "label", "rank_corr", "ssim", "target_prob"])
    order = [r["label"] for r in rows]
    lo = min([0.0] + [r["rank_corr"] for r in rows if r["rank_corr"] == r["rank_corr"]])
    y = alt.Y("rank_corr:Q", title="rank correlation", scale=alt.Scale(domain=[lo, 1]))
    many = len(rows) > 10  # MobileNetV2's 19 blocks: slanted labels (Streamlit's height includes the axes)
    line = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=70), strokeWidth=3).encode(
        x=alt.X("label:N", sort=order, title="layers randomized so far (top down)",
                axis=alt.Axis(labelAngle=-40 if many else 0, labelLimit=120)),
        y=y,
        tooltip=["label:N", alt.Tooltip("rank_corr:Q", title="rank correlation", format=".2f"),
                 alt.Tooltip("ssim:Q", title="SSIM", format=".2f"),
                 alt.Tooltip("target_prob:Q", title="probability of the class", format=".1%")])
    guides = pd.DataFrame([{"rank_corr": FLAG_ABOVE, "text": "above: the map ignores the weights"},
                           {"rank_corr": PASS_BELOW, "text": "below: the map depends on them"}])
    rules = alt.Chart(guides).mark_rule(strokeDash=[5, 4], color="#888").encode(y=y)
    notes = alt.Chart(guides).mark_text(align="right", x="width", dx=-4, dy=-7, color="#666").encode(
        y=y, text="text:N")
    return alt.layer(line, rules, notes).properties(height=height, title=title)


# --- filters --------------------------------------------------------------------------------------------------

@memo
def weight_change_chart(rows: Sequence[dict[str, Any]], *, height: int | None = None) -> alt.LayerChart:
    """How far training moved each layer: bars of {layer, change} (‖trained − start‖ / ‖start‖), in the
    network's order, with the value printed."""
    df = pd.DataFrame(list(rows), columns=["layer", "change"])
    order = list(df["layer"])
    base = alt.Chart(df).encode(
        y=alt.Y("layer:N", sort=order, title=None, axis=alt.Axis(labelLimit=220, labelFontSize=12)),
        x=alt.X("change:Q", title="change in the weights, relative to where they started",
                axis=alt.Axis(format=".0%", tickCount=5)),
        tooltip=["layer:N", alt.Tooltip("change:Q", title="relative change", format=".1%")])
    bars = base.mark_bar(color="#3b7dd8")
    text = base.mark_text(align="left", dx=4, fontSize=12).encode(text=alt.Text("change:Q", format=".0%"))
    return alt.layer(bars, text).properties(height=height or 28 * max(1, len(order)) + 50)
