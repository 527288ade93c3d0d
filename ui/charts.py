"""Altair chart builders: plain data in, `alt.Chart` out. No Streamlit here, so each is testable on its own.

Conventions: accuracies are fractions and shown as percentages; every chart has tooltips; train is dashed and
test solid, so the overfitting gap reads at a glance on a projector.

Building an altair chart costs 5-50 ms of pure Python (it checks every channel against the Vega-Lite schema), and
thirty followers redraw the same charts of the same runs within a second of each other, one at a time under the
GIL. So the builders are `@memo`: the same arguments give the same (shared, never mutated) chart, and
`to_vega_lite` keeps the spec of the charts it has converted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import altair as alt
import pandas as pd

F = TypeVar("F", bound=Callable[..., Any])
MEMO_SIZE = 256  # charts (and specs) kept per process: a few pages' worth for each of a class's runs


class _Lru:
    """A small thread-safe LRU map: shared by every session of the server, holding only pure results."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_CHARTS = _Lru(MEMO_SIZE)
_PROJECTED = _Lru(MEMO_SIZE)


def memo(fn: F) -> F:
    """Cache a chart builder on its arguments (pickled: data frames, lists and dicts by value). Arguments that do
    not pickle build afresh. Callers treat the result as read-only, as altair's own methods (properties,
    configure_*, +) do: they return copies."""

    @functools.wraps(fn)
    def built(*args: Any, **kwargs: Any) -> Any:
        try:
            key = (fn.__module__, fn.__qualname__, pickle.dumps((args, sorted(kwargs.items())), protocol=5))
        except Exception:  # noqa: BLE001 - an unpicklable argument: no cache, same chart
            return fn(*args, **kwargs)
        chart = _CHARTS.get(key)
        if chart is None:
            chart = fn(*args, **kwargs)
            _CHARTS.put(key, chart)
        return chart

    return built  # type: ignore[return-value]


SPLIT_DASH = alt.Scale(domain=["train", "test"], range=[[5, 4], [1, 0]])
# Projector sizes (presenter mode): nothing a back row must read is smaller than body text.
PROJECTOR_FONT = {"label": 16, "title": 18, "chart_title": 22}


def split_dash(**legend: Any) -> alt.StrokeDash:
    """Train dashed, test solid - and the legend draws them as dashed and solid strokes, not as dots."""
    return alt.StrokeDash("split:N", scale=SPLIT_DASH, title="split",
                          legend=alt.Legend(symbolType="stroke", symbolStrokeWidth=3, symbolSize=500,
                                            symbolStrokeColor="#555", **legend))


def dashed_lines(base: alt.Chart, *, point_size: int = 30, **legend: Any) -> alt.LayerChart:
    """`base` drawn as lines (train dashed, test solid) with a dot on every epoch. The dots are a layer of their
    own: a line mark with a point overlay gets dots, not dashes, in its strokeDash legend."""
    # data and shared encodings stay on the layer chart, so the result reads like one chart (spec["encoding"])
    layer = alt.layer(alt.Chart().mark_line().encode(strokeDash=split_dash(**legend)),
                      alt.Chart().mark_point(filled=True, size=point_size, opacity=1), data=base.data)
    # the base's encoding object itself: .encode(**encoding.to_dict()) re-parses every channel from dicts against
    # the schema, ~50 ms per chart (most of a follower's page rerun)
    layer.encoding = base.encoding
    return layer


def epoch_x(epochs: Iterable[Any], title: str = "epoch") -> alt.X:
    """A whole-number epoch axis. A single epoch gets a one-tick axis centred on it ("1", not "1.000000" on a
    zero-width domain)."""
    values = sorted({int(e) for e in epochs if e is not None})
    if len(values) == 1:
        e = values[0]
        return alt.X("epoch:Q", title=title, scale=alt.Scale(domain=[e - 0.5, e + 0.5], nice=False),
                     axis=alt.Axis(values=[e], format="d"))
    return alt.X("epoch:Q", title=title, scale=alt.Scale(nice=False),
                 axis=alt.Axis(tickMinStep=1, format="d"))


def projector(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """The chart with projector-sized text: axis labels and legends 16 px, axis titles 18 px, the title 22 px
    and never cut off. Apply to a finished top-level chart (configure_* is not allowed inside a layer).
    The same chart object gives the same projector chart (kept, as `memo` keeps the chart)."""
    return _per_chart(_PROJECTED, chart, _projected)


def _projected(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    f = PROJECTOR_FONT
    return (chart.configure_axis(labelFontSize=f["label"], titleFontSize=f["title"], labelLimit=260)
            .configure_legend(labelFontSize=f["label"], titleFontSize=f["label"], labelLimit=400,
                              symbolSize=300, columnPadding=20)
            .configure_title(fontSize=f["chart_title"], limit=0, anchor="start")
            .configure_header(labelFontSize=f["label"], titleFontSize=f["title"])
            .configure_text(fontSize=f["label"]))


def _per_chart(kept: _Lru, chart: Any, make: Callable[[Any], Any]) -> Any:
    """make(chart), once per chart object: kept by identity, with the chart itself, so its id is not reused."""
    hit = kept.get(id(chart))
    if hit is None or hit[0] is not chart:
        hit = (chart, make(chart))
        kept.put(id(chart), hit)
    return hit[1]


_TO_DICT = threading.Lock()  # altair's theme and data transformer are process-wide settings


def _collect_frames(data: Any, datasets: dict[str, Any]) -> dict[str, Any]:
    """An altair data transformer: a data frame goes into `datasets` under a content hash (the same data keeps
    its name from run to run), and the spec refers to it by name; anything else is inlined as altair does."""
    if isinstance(data, pd.DataFrame):
        digest = hashlib.blake2b(pd.util.hash_pandas_object(data, index=True).values.tobytes(), digest_size=12)
        digest.update(",".join(map(str, data.columns)).encode())
        name = f"data-{digest.hexdigest()}"
        datasets[name] = data
        return {"name": name}
    return alt.utils.data.to_values(data)


alt.data_transformers.register("lab_frames", _collect_frames)


_SPECS = _Lru(MEMO_SIZE)


def to_vega_lite(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec for `st.vega_lite_chart`, its data frames under `datasets` (Streamlit sends
    them as Arrow, as it does for `st.altair_chart`). What is left out is validating the spec against the
    Vega-Lite schema on every script run (the chart tests call altair's validating to_dict()). `st.altair_chart`
    did that inside a lock every session of the server waits on - ~0.1 s per chart, one session at a time on the
    LR finder's live curve (docs/PERFORMANCE.md); the lock here holds only the unvalidated conversion.
    A chart converted before (the same object, as `memo` builders return) gives its kept spec: a fresh copy each
    time, as Streamlit edits the dict it is given."""
    spec, datasets = _per_chart(_SPECS, chart, _converted)
    return {**json.loads(spec), "datasets": dict(datasets)}


def _converted(chart: alt.TopLevelMixin) -> tuple[str, dict[str, Any]]:
    """(the spec without its data, as JSON; the data frames by name)."""
    datasets: dict[str, Any] = {}
    with _TO_DICT, alt.theme.enable("none"), alt.data_transformers.enable("lab_frames", datasets=datasets):
        spec = chart.to_dict(validate=False)
    datasets = {**spec.pop("datasets", {}), **datasets}
    return json.dumps(spec), datasets


def curves_frame(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Long-form frame from {run label: [epoch rows with train_loss/test_loss/train_acc/test_acc]}."""
    rows = []
    for label, epochs in curves.items():
        for e in epochs:
            for split in ("train", "test"):
                rows.append({"run": label, "epoch": e["epoch"], "split": split,
                             "loss": e.get(f"{split}_loss"), "accuracy": e.get(f"{split}_acc")})
    return pd.DataFrame(rows, columns=["run", "epoch", "split", "loss", "accuracy"])


@memo
def curves_chart(curves: Mapping[str, Sequence[Mapping[str, Any]]], metric: str = "accuracy", *,
                 height: int = 280, title: str | None = None, report: Mapping[str, float] | None = None) -> alt.Chart:
    """Train (dashed) and test (solid) `metric` per epoch, one colour per run. `report` draws each run's
    published accuracy as a dotted rule labelled "report NN%" at its right end (accuracy charts only)."""
    df = curves_frame(curves)
    y_title = "accuracy" if metric == "accuracy" else "loss (cross-entropy)"
    y = alt.Y(f"{metric}:Q", title=y_title, axis=alt.Axis(format=".0%") if metric == "accuracy" else alt.Axis())
    x = epoch_x(df["epoch"])
    base = alt.Chart(df).encode(
        x=x,
        y=y,
        color=alt.Color("run:N", title="run", legend=alt.Legend(orient="bottom", labelLimit=280, symbolType="stroke",
                                                                symbolStrokeWidth=3)),
        tooltip=["run:N", "split:N", alt.Tooltip("epoch:Q"), alt.Tooltip(f"{metric}:Q", format=".2%" if
                                                                        metric == "accuracy" else ".3f")],
    )
    chart = dashed_lines(base)
    if report and metric == "accuracy":
        last = df["epoch"].max() if not df.empty else 1
        rules = pd.DataFrame([{"run": k, "report": v, "epoch": last, "label": f"report {v:.0%}"}
                              for k, v in report.items() if v is not None])
        if not rules.empty:
            tip = ["run:N", alt.Tooltip("report:Q", title="report (CIFAR-100)", format=".0%")]
            rule = alt.Chart(rules).mark_rule(strokeDash=[2, 2], opacity=0.7).encode(
                y="report:Q", color=alt.Color("run:N"), tooltip=tip)
            label = alt.Chart(rules).mark_text(align="right", baseline="bottom", dy=-3, fontWeight="bold").encode(
                x=x, y="report:Q", text="label:N", color=alt.Color("run:N"), tooltip=tip)
            chart = alt.layer(chart, rule, label)
    return chart.properties(height=height, title=title or "")


@memo
def lr_schedule_chart(lrs: Sequence[float] | Mapping[str, Sequence[float]], steps_per_epoch: int, *,
                      height: int = 200, title: str = "learning rate over the run") -> alt.Chart:
    """The LR at every step (thinned to ≤ 400 points per curve), x in epochs. Pass {name: lrs} to overlay
    several schedules in one chart (one colour each)."""
    series = lrs if isinstance(lrs, Mapping) else {"lr": lrs}
    rows = []
    for name, values in series.items():
        stride = max(1, -(-len(values) // 400))  # ceil: at most 400 points
        rows += [{"schedule": name, "epoch": i / max(1, steps_per_epoch), "lr": v}
                 for i, v in list(enumerate(values))[::stride]]
    chart = alt.Chart(pd.DataFrame(rows, columns=["schedule", "epoch", "lr"])).mark_line(strokeWidth=2.5).encode(
        x=alt.X("epoch:Q", title="epoch"),
        y=alt.Y("lr:Q", title="learning rate", axis=alt.Axis(format="~g")),
        tooltip=["schedule:N", alt.Tooltip("epoch:Q", format=".2f"), alt.Tooltip("lr:Q", format=".3g")],
    )
    if len(series) > 1:
        chart = chart.encode(color=alt.Color("schedule:N", legend=alt.Legend(orient="top", title=None)))
    return chart.properties(height=height, title=title)


@memo
def scatter_chart(rows: Iterable[Mapping[str, Any]], x: str, y: str, *, label: str = "run", x_title: str = "",
                  y_title: str = "", log_x: bool = False, y_format: str = ".0%", height: int = 280,
                  title: str = "") -> alt.Chart:
    """Points with labels, e.g. test accuracy against training time or parameter count."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        df = pd.DataFrame(columns=[x, y, label])
    scale = alt.Scale(type="log") if log_x else alt.Scale(zero=False)
    enc = dict(x=alt.X(f"{x}:Q", title=x_title or x, scale=scale), y=alt.Y(f"{y}:Q", title=y_title or y,
                                                                          axis=alt.Axis(format=y_format)))
    points = alt.Chart(df).mark_circle(size=120).encode(
        **enc, color=alt.Color(f"{label}:N", legend=None), tooltip=[f"{label}:N", f"{x}:Q",
                                                                  alt.Tooltip(f"{y}:Q", format=y_format)])
    text = alt.Chart(df).mark_text(align="left", dx=8, dy=-6).encode(**enc, text=f"{label}:N")
    return (points + text).properties(height=height, title=title)


@memo
def report_bars(rows: Iterable[Mapping[str, Any]], *, height: int | None = None) -> alt.Chart:
    """Grouped horizontal bars: for each preset title, the report's accuracy and the lab's best run.
    rows: {"preset": str, "source": "report" | "lab", "accuracy": float}."""
    df = pd.DataFrame(list(rows), columns=["preset", "source", "accuracy"]).dropna()
    order = list(dict.fromkeys(df["preset"])) if not df.empty else []
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("preset:N", sort=order, title=None),
        yOffset=alt.YOffset("source:N", sort=["report", "lab"]),
        x=alt.X("accuracy:Q", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]), title="test accuracy"),
        color=alt.Color("source:N", scale=alt.Scale(domain=["report", "lab"], range=["#b0b7bf", "#d1495b"]),
                        title=None, legend=alt.Legend(orient="top")),
        tooltip=["preset:N", "source:N", alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(height=height or alt.Step(17))  # per bar (two to a preset): a fixed height squeezed 13 presets
    # into ~250 px on the projector, where Vega then dropped every other label


@memo
def histogram_chart(values: Mapping[str, Sequence[float]], *, x_title: str = "value", bins: int = 40,
                    height: int = 90, columns: int = 2, width: int = 260) -> alt.Chart:
    """One small histogram per series (e.g. activations per layer), faceted, shared x axis."""
    rows = [{"layer": k, "value": float(v)} for k, vs in values.items() for v in vs]
    df = pd.DataFrame(rows, columns=["layer", "value"])
    order = list(values)
    return alt.Chart(df).mark_bar(opacity=0.85).encode(
        x=alt.X("value:Q", bin=alt.Bin(maxbins=bins), title=x_title),
        y=alt.Y("count():Q", title="count"),
        tooltip=[alt.Tooltip("count():Q")],
    ).properties(height=height, width=width).facet(facet=alt.Facet("layer:N", sort=order, title=None),
                                                 columns=columns)


@memo
def bar_chart(rows: Iterable[Mapping[str, Any]], x: str, y: str, *, x_title: str = "", y_title: str = "",
              y_format: str = ".0%", height: int = 260, sort: str | None = "-y", color: str | None = None,
              title: str = "") -> alt.Chart:
    """A plain bar chart (per-class accuracy, members of an ensemble, ...)."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        df = pd.DataFrame(columns=[x, y])
    enc: dict[str, Any] = dict(x=alt.X(f"{x}:N", title=x_title or x, sort=sort),
                               y=alt.Y(f"{y}:Q", title=y_title or y, axis=alt.Axis(format=y_format)),
                               tooltip=[f"{x}:N", alt.Tooltip(f"{y}:Q", format=y_format)])
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
    return alt.Chart(df).mark_bar().encode(**enc).properties(height=height, title=title)


@memo
def gap_chart(curves: Mapping[str, Sequence[Mapping[str, Any]]], *, height: int = 240,
              title: str = "overfitting gap: train accuracy − test accuracy") -> alt.Chart:
    """Per epoch, how far train accuracy runs ahead of test accuracy, one line per run."""
    rows = [{"run": label, "epoch": e["epoch"], "gap": (e.get("train_acc") or 0) - (e.get("test_acc") or 0)}
            for label, epochs in curves.items() for e in epochs if e.get("train_acc") is not None]
    df = pd.DataFrame(rows, columns=["run", "epoch", "gap"])
    line = alt.Chart(df).mark_line(point=True).encode(
        x=epoch_x(df["epoch"]),
        y=alt.Y("gap:Q", title="train − test accuracy", axis=alt.Axis(format="+.0%")),
        color=alt.Color("run:N", legend=alt.Legend(orient="bottom", labelLimit=280)),
        tooltip=["run:N", "epoch:Q", alt.Tooltip("gap:Q", format="+.1%")])
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#888").encode(y="y:Q")
    return (line + zero).properties(height=height, title=title)
