"""The range-test chart: log LR axis fixed to the tested range, the data drawn is the finder's, and a rule for each
suggestion that has an LR (none for those without) plus the report's LR when it is in range, each named in the
legend (never written on the chart, where close rules struck through each other's labels)."""

import math

from core.train.lr_finder import smooth
from core.train.lr_suggest import Suggestion, suggest
from ui import charts_lr

LRS = [1e-6 * 10 ** (i / 10) for i in range(61)]  # 1e-6 … 1
LOSSES = [2.3 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3.5))) + (5 * (lr - 0.1) if lr > 0.1 else 0) for lr in LRS]
SMOOTHED = smooth(LOSSES, 0.9)


def layers(chart) -> list[dict]:
    return chart.to_dict()["layer"]


def data_of(chart, layer: dict) -> list[dict]:
    return chart.to_dict()["datasets"][layer["data"]["name"]]


def test_log_x_axis_fixed_to_the_tested_range_and_the_curves_are_the_finders():
    chart = charts_lr.lr_finder_chart(LRS[:20], LOSSES[:20], SMOOTHED[:20], lr_range=(1e-6, 1.0))
    curve = layers(chart)[0]
    assert curve["encoding"]["x"]["scale"] == {"type": "log", "domain": [1e-6, 1.0]}
    assert curve["encoding"]["x"]["field"] == "lr"
    rows = data_of(chart, curve)
    assert [r["loss"] for r in rows if r["series"] == "smoothed"] == SMOOTHED[:20]
    assert [r["loss"] for r in rows if r["series"] == "loss of each step"] == LOSSES[:20]
    last = data_of(chart, layers(chart)[1])  # the latest point, circled
    assert last == [{"step": 20, "lr": LRS[19], "series": "smoothed", "loss": SMOOTHED[19]}]


def test_a_rule_for_each_suggestion_with_an_lr_only_named_in_the_legend():
    found = suggest(LRS, SMOOTHED)
    assert all(s.lr is not None for s in found.values())
    partial = [found["steepest"], Suggestion("descent 2/3", None, None, "too noisy"), found["minimum/10"]]
    chart = charts_lr.lr_finder_chart(LRS, LOSSES, SMOOTHED, lr_range=(1e-6, 1.0), suggestions=partial,
                                      report_lr=1e-4)
    (rule,) = [layer for layer in layers(chart) if layer["mark"]["type"] in ("rule", "text")]  # no text on it
    assert rule["encoding"]["x"]["scale"]["type"] == "log"
    rows = data_of(chart, rule)
    assert [(r["name"], r["lr"]) for r in rows] == [("steepest", found["steepest"].lr),
                                                    ("minimum/10", found["minimum/10"].lr), ("report", 1e-4)]
    labels = [f"steepest {found['steepest'].lr:.1e}", f"minimum/10 {found['minimum/10'].lr:.1e}", "report 0.0001"]
    colour = rule["encoding"]["color"]
    assert colour["field"] == "label" and colour["scale"]["domain"] == labels
    assert colour["legend"]["orient"] == "bottom" and colour["legend"]["columns"] == 1  # two were cut on a phone


def test_no_rules_without_suggestions_and_report_only_inside_the_range():
    none = [Suggestion(n, None, None, "too few points") for n in ("steepest", "minimum/10", "descent 2/3")]
    chart = charts_lr.lr_finder_chart(LRS[:3], LOSSES[:3], SMOOTHED[:3], lr_range=(1e-6, 1.0), suggestions=none)
    assert [layer["mark"]["type"] for layer in layers(chart)] == ["line", "point"]
    outside = charts_lr.rules_frame(none, report_lr=1e-4, lr_range=(1e-3, 10.0))
    assert outside.empty


def test_empty_test_draws_the_axis_and_a_spike_does_not_flatten_the_curve():
    empty = charts_lr.lr_finder_chart([], [], [], lr_range=(1e-7, 10.0), report_lr=1e-4)
    assert layers(empty)[0]["encoding"]["x"]["scale"]["domain"] == [1e-7, 10.0]
    spiky = LOSSES[:30] + [1000.0]
    domain = layers(charts_lr.lr_finder_chart(LRS[:31], spiky, smooth(spiky, 0.98), lr_range=(1e-6, 1.0))
                    )[0]["encoding"]["y"]["scale"]["domain"]
    assert domain[1] < 100 and domain[0] < min(LOSSES[:30])



def test_the_recommended_rule_stands_out():
    rec = Suggestion("recommended", 1e-3, 2.0, "why")
    other = Suggestion("fastai valley", 1e-4, 2.2, "why")
    chart = charts_lr.lr_finder_chart(LRS, LOSSES, SMOOTHED, lr_range=(1e-6, 1.0), suggestions=[rec, other])
    (rule,) = [layer for layer in layers(chart) if layer["mark"]["type"] in ("rule", "text")]
    assert [r["kind"] for r in data_of(chart, rule)] == ["recommended", "other"]
    scale = rule["encoding"]["strokeWidth"]["scale"]
    width = dict(zip(scale["domain"], scale["range"], strict=True))
    assert width["recommended"] >= 2 * width["other"]  # the recommended line: at least twice as wide
    assert rule["encoding"]["color"]["scale"]["domain"] == ["recommended 1.0e-03", "fastai valley 1.0e-04"]
    alone = charts_lr.lr_finder_chart(LRS, LOSSES, SMOOTHED, lr_range=(1e-6, 1.0), suggestions=[rec], report_lr=1e-4)
    (rule,) = [layer for layer in layers(alone) if layer["mark"]["type"] == "rule"]
    legend = rule["encoding"]["color"]["legend"]  # the recommendation and the report alone: a corner legend
    assert legend["orient"] == "top-left" and rule["encoding"]["color"]["scale"]["domain"] == [
        "recommended 1.0e-03", "report 0.0001"]


def test_the_legend_of_every_rule_adds_its_rows_to_the_height():
    found = suggest(LRS, SMOOTHED)
    rec = Suggestion("recommended", 1e-3, 2.0, "why")
    two = charts_lr.lr_finder_chart(LRS, LOSSES, SMOOTHED, lr_range=(1e-6, 1.0), suggestions=[rec], report_lr=1e-4,
                                    height=300)
    every = charts_lr.lr_finder_chart(LRS, LOSSES, SMOOTHED, lr_range=(1e-6, 1.0), report_lr=1e-4, height=300,
                                      suggestions=[rec, *found.values()])
    assert two.to_dict()["height"] == 300  # the corner legend sits inside the plot
    assert every.to_dict()["height"] == 300 + charts_lr.LEGEND_ROW_PX * (2 + len(found))
