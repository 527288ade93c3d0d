"""ui/charts_lessons.py: the lessons' chart builders encode what the pages promise - log axes for learning
rates and data sizes, train dashed / test solid, the best run marked, fixed scenario colours."""

from __future__ import annotations

import pytest

from ui import charts_lessons as cl

LR_ROWS = [
    {"value": 1e-5, "label": "too low", "series": "", "test_acc": 0.20, "train_acc": 0.22, "is_best": False,
     "name": "a", "seconds": 10.0, "gap": 0.02},
    {"value": 1e-4, "label": "good", "series": "", "test_acc": 0.40, "train_acc": 0.55, "is_best": True,
     "name": "b", "seconds": 11.0, "gap": 0.15},
    {"value": 1e-2, "label": "too high", "series": "", "test_acc": 0.10, "train_acc": None, "is_best": False,
     "name": "c", "seconds": 12.0, "gap": None},
]


def layer_data(spec: dict, layer: dict) -> list[dict]:
    """The rows a layer of a chart's to_dict() draws (Altair moves inline data to top-level datasets, and data
    shared by every layer up to the chart)."""
    return spec["datasets"][(layer.get("data") or spec["data"])["name"]]


def test_accuracy_vs_uses_a_log_axis_for_learning_rates_and_marks_the_best():
    spec = cl.accuracy_vs_chart(LR_ROWS, x_title="learning rate").to_dict()
    lines, ring, text = spec["layer"]
    line = lines["layer"][0]  # the dashed lines; the dots are a layer of their own (see ui.charts.dashed_lines)
    enc = {**lines["encoding"], **line["encoding"]}
    assert enc["x"]["field"] == "value" and enc["x"]["type"] == "quantitative"
    assert enc["x"]["scale"]["type"] == "log" and enc["x"]["title"] == "learning rate"
    assert enc["x"]["scale"]["nice"] is False  # the swept values span the axis, not 10^k..10^m
    assert enc["x"]["axis"]["values"] == [1e-5, 1e-4, 1e-2]  # a tick at each swept value
    assert enc["x"]["axis"]["format"] == "~e"  # 1e-5, not 0.00001
    assert enc["y"]["field"] == "accuracy" and enc["y"]["axis"]["format"] == ".0%"
    assert enc["strokeDash"]["field"] == "split"
    assert enc["strokeDash"]["scale"]["domain"] == ["train", "test"]
    rows = layer_data(spec, lines)
    # a missing train accuracy (the diverged run) is left out, not drawn as 0
    assert sorted((r["value"], r["split"]) for r in rows) == [
        (1e-5, "test"), (1e-5, "train"), (1e-4, "test"), (1e-4, "train"), (1e-2, "test")]
    best = layer_data(spec, ring)
    assert [(r["value"], r["split"], r["accuracy"]) for r in best] == [(1e-4, "test", 0.40)]
    assert text["mark"]["type"] == "text" and text["encoding"]["text"] == {"value": "best"}
    labelled = cl.accuracy_vs_chart(LR_ROWS, annotate=True).to_dict()
    names = labelled["layer"][3]
    assert names["encoding"]["text"]["field"] == "label"
    assert [r["label"] for r in layer_data(labelled, names)] == ["too low", "good", "too high"]  # test points only


def test_accuracy_vs_categorical_values_keep_their_order_and_series_get_colours():
    rows = [{"value": v, "label": v, "series": s, "test_acc": 0.3, "train_acc": 0.4, "is_best": False, "name": v + s}
            for s in ("epochs=1", "epochs=2") for v in ("sgd", "adam")]
    spec = cl.accuracy_vs_chart(rows).to_dict()
    enc = spec["layer"][0]["encoding"]
    assert enc["x"]["field"] == "label" and enc["x"]["type"] == "nominal" and enc["x"]["sort"] == ["sgd", "adam"]
    assert enc["color"]["field"] == "series"


def test_axis_helpers():
    assert cl.numeric_axis([1, 2.5]) and not cl.numeric_axis([1, "adam"]) and not cl.numeric_axis([True])
    assert not cl.numeric_axis([]) and not cl.numeric_axis([1, None])
    assert cl.log_axis([1e-4, 1e-3]) and not cl.log_axis([64, 128]) and not cl.log_axis([0, 10])


def test_linear_axis_when_values_are_close():
    rows = [{**r, "value": v} for r, v in zip(LR_ROWS, (64, 96, 128))]
    enc = cl.accuracy_vs_chart(rows).to_dict()["layer"][0]["encoding"]
    assert enc["x"]["scale"]["zero"] is False and "type" not in enc["x"]["scale"]
    assert enc["x"]["axis"]["format"] == "~g"


def test_data_size_chart_log_x_and_a_band_between_train_and_test():
    rows = [{"value": n, "label": f"{n}", "series": "", "test_acc": t, "train_acc": tr, "is_best": n == 5000,
             "name": str(n), "gap": tr - t} for n, t, tr in ((500, 0.3, 0.9), (5000, 0.5, 0.6))]
    spec = cl.data_size_chart(rows).to_dict()
    area = spec["layer"][0]
    assert area["mark"]["type"] == "area"
    assert area["encoding"]["x"]["scale"]["type"] == "log" and area["encoding"]["x"]["field"] == "value"
    assert area["encoding"]["y"]["field"] == "train_acc" and area["encoding"]["y2"]["field"] == "test_acc"
    assert [(r["value"], r["train_acc"], r["test_acc"]) for r in layer_data(spec, area)] == [
        (500, 0.9, 0.3), (5000, 0.6, 0.5)]
    inner = spec["layer"][1]["layer"][0]["encoding"]
    assert inner["x"]["scale"]["type"] == "log" and "log scale" in inner["x"]["title"]


def test_gap_and_time_charts_plot_their_fields():
    spec = cl.gap_vs_chart(LR_ROWS).to_dict()
    line = spec["layer"][0]
    assert line["encoding"]["y"]["field"] == "gap" and line["encoding"]["y"]["axis"]["format"] == "+.0%"
    assert [r["gap"] for r in layer_data(spec, line)] == pytest.approx([0.02, 0.15])  # None left out
    spec = cl.time_vs_chart(LR_ROWS).to_dict()
    assert spec["encoding"]["y"]["field"] == "seconds" and spec["encoding"]["x"]["scale"]["type"] == "log"
    assert [r["seconds"] for r in spec["datasets"][spec["data"]["name"]]] == [10.0, 11.0, 12.0]


def test_sweep_curves_fixed_colours_and_log_loss():
    rows = [{"label": lab, "epoch": e, "train_loss": 2.0 / e, "test_loss": 2.2 / e, "train_acc": 0.1 * e,
             "test_acc": None} for lab in ("too high · lr=0.01", "too low · lr=1e-06") for e in (1, 2)]
    colors = {"too low · lr=1e-06": cl.SCENARIO_COLORS["too low"], "too high · lr=0.01": cl.SCENARIO_COLORS["too high"]}
    order = list(colors)
    spec = cl.sweep_curves_chart(rows, "loss", colors=colors, order=order, log_y=True).to_dict()
    enc = {**spec["encoding"], **spec["layer"][0]["encoding"]}
    assert enc["color"]["scale"]["domain"] == order
    assert enc["color"]["scale"]["range"] == ["#3b7dd8", "#d1495b"]
    assert enc["y"]["scale"] == {"type": "log"} and "log scale" in enc["y"]["title"]
    assert enc["strokeDash"]["field"] == "split"
    data = spec["datasets"][spec["data"]["name"]]
    assert len(data) == 8 and {d["split"] for d in data} == {"train", "test"}
    acc = cl.sweep_curves_chart(rows, "accuracy").to_dict()
    assert acc["encoding"]["y"]["axis"]["format"] == ".0%"
    assert len(acc["datasets"][acc["data"]["name"]]) == 4  # test accuracy None: only the train points


def test_ensemble_bars_put_the_ensemble_last_in_its_own_colour():
    spec = cl.ensemble_bars_chart([("seed 0", 0.40), ("seed 1", 0.42)], 0.46).to_dict()
    bars = spec["layer"][0]
    assert bars["encoding"]["x"]["sort"] == ["seed 0", "seed 1", "ensemble"]
    assert bars["encoding"]["color"]["scale"] == {"domain": ["member", "ensemble"], "range": ["#8a97a8", "#d1495b"]}
    assert [(r["model"], r["kind"], r["accuracy"]) for r in layer_data(spec, bars)][-1] == ("ensemble", "ensemble", 0.46)


def test_gain_chart_lines_per_order_and_the_best_single_rule():
    spec = cl.gain_chart({"best first": [(1, 0.42), (2, 0.45)], "as chosen": [(1, 0.40), (2, 0.45)]},
                         best_single=0.42).to_dict()
    line, rule = spec["layer"]
    assert line["encoding"]["x"]["field"] == "members" and line["encoding"]["color"]["field"] == "order"
    assert len(layer_data(spec, line)) == 4
    assert rule["mark"]["type"] == "rule" and layer_data(spec, rule)[0]["accuracy"] == 0.42
    assert len(cl.gain_chart({"best first": [(1, 0.4)]}).to_dict()["layer"]) == 1  # no rule without a value


def test_params_chart_skips_layers_without_weights_and_shares_sum_to_one():
    table = [{"layer": "conv1", "params": 896}, {"layer": "relu1", "params": 0}, {"layer": "fc1", "params": 3104},
             {"layer": "pool9", "params": None}]
    spec = cl.params_chart(table).to_dict()
    data = spec["datasets"][spec["data"]["name"]]
    assert [d["layer"] for d in data] == ["conv1", "fc1"] and spec["encoding"]["y"]["sort"] == ["conv1", "fc1"]
    assert sum(d["share"] for d in data) == pytest.approx(1.0) and data[1]["share"] == pytest.approx(0.776)
