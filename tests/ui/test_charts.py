"""Chart builders: the data that goes in is the data that is drawn, with the encodings a page relies on."""

from ui import charts

CURVES = {"run A": [{"epoch": 1, "train_loss": 2.0, "test_loss": 2.1, "train_acc": 0.3, "test_acc": 0.25},
                    {"epoch": 2, "train_loss": 1.5, "test_loss": 1.9, "train_acc": 0.5, "test_acc": 0.35}]}


def test_curves_frame_is_long_form_train_and_test():
    df = charts.curves_frame(CURVES)
    assert len(df) == 4 and set(df["split"]) == {"train", "test"}
    assert df[(df.epoch == 2) & (df.split == "test")]["accuracy"].item() == 0.35


def layers(spec: dict) -> list[dict]:
    """Every leaf layer of a chart's to_dict(), each with the encodings it inherits merged in."""
    out = []
    for layer in spec.get("layer", []):
        inherited = {**spec.get("encoding", {}), **layer.get("encoding", {})}
        out += layers({**layer, "encoding": inherited}) if "layer" in layer else [{**layer, "encoding": inherited}]
    return out or [spec]


def test_curves_chart_dashes_train_and_draws_the_report_rule():
    spec = charts.curves_chart(CURVES, "accuracy", report={"run A": 0.3}).to_dict()
    line, points, rule, label = layers(spec)
    assert line["mark"]["type"] == "line" and line["encoding"]["strokeDash"]["field"] == "split"
    assert line["encoding"]["y"]["axis"]["format"] == ".0%"
    assert rule["mark"]["type"] == "rule" and rule["mark"]["strokeDash"] == [2, 2]
    # the dotted line says what it is, at the right end of the epochs
    assert label["mark"]["type"] == "text" and label["encoding"]["text"]["field"] == "label"
    rows = spec["datasets"][label["data"]["name"]]
    assert [(r["label"], r["epoch"]) for r in rows] == [("report 30%", 2)]


def test_the_split_legend_draws_dashed_and_solid_strokes_not_dots():
    """A line mark with a point overlay gets dots in its strokeDash legend: the dots are their own layer."""
    for spec in (charts.curves_chart(CURVES).to_dict(), charts.curves_chart(CURVES, "loss").to_dict()):
        line, points = layers(spec)
        assert "point" not in line["mark"] and points["mark"]["type"] == "point"
        assert "strokeDash" not in points["encoding"]
        legend = line["encoding"]["strokeDash"]["legend"]
        assert legend["symbolType"] == "stroke" and legend["symbolStrokeWidth"] >= 2
        assert line["encoding"]["strokeDash"]["scale"] == {"domain": ["train", "test"], "range": [[5, 4], [1, 0]]}


def test_epoch_axis_is_whole_numbers_and_a_single_epoch_is_one_tick():
    one = layers(charts.curves_chart({"r": CURVES["run A"][:1]}).to_dict())[0]["encoding"]["x"]
    assert one["axis"] == {"format": "d", "values": [1]}  # "1", not "1.000000" on a zero-width domain
    assert one["scale"]["domain"] == [0.5, 1.5]
    two = layers(charts.curves_chart(CURVES).to_dict())[0]["encoding"]["x"]
    assert two["axis"] == {"format": "d", "tickMinStep": 1} and "domain" not in two["scale"]
    gap = layers(charts.gap_chart({"r": CURVES["run A"][:1]}).to_dict())[0]["encoding"]["x"]
    assert gap["axis"]["values"] == [1]


def test_projector_text_is_at_least_body_size_and_titles_are_not_cut():
    config = charts.projector(charts.curves_chart(CURVES, report={"run A": 0.3})).to_dict()["config"]
    assert config["axis"]["labelFontSize"] >= 16 and config["axis"]["titleFontSize"] >= 16
    assert config["legend"]["labelFontSize"] >= 16 and config["legend"]["titleFontSize"] >= 16
    assert config["title"]["fontSize"] > 16 and config["title"]["limit"] == 0  # 0 = no truncation
    assert config["text"]["fontSize"] >= 16  # the report line's label, and other text marks without a size


def test_schedule_chart_overlays_several_schedules_and_thins_long_ones():
    spec = charts.lr_schedule_chart({"a": [0.1] * 1000, "b": [0.2] * 10}, 10).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert {v["schedule"] for v in values} == {"a", "b"}
    assert sum(v["schedule"] == "a" for v in values) <= 400 and spec["encoding"]["color"]["field"] == "schedule"


def test_gap_chart_computes_train_minus_test():
    spec = charts.gap_chart(CURVES).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert [round(v["gap"], 6) for v in values] == [0.05, 0.15]


def test_report_bars_keep_the_report_order():
    rows = [{"preset": "MLP", "source": "report", "accuracy": 0.26}, {"preset": "CNN", "source": "report",
                                                                        "accuracy": 0.30},
            {"preset": "CNN", "source": "lab", "accuracy": 0.33}]
    spec = charts.report_bars(rows).to_dict()
    assert spec["encoding"]["y"]["sort"] == ["MLP", "CNN"]
    # the chart grows with its rows (a fixed height let Vega drop every other label on the projector): each bar
    # gets a step at least as tall as the projector's label text, two bars to a preset
    font = charts.to_vega_lite(charts.projector(charts.report_bars(rows)))["config"]["axis"]["labelFontSize"]
    assert spec["height"] == {"step": 17} and font * 1.5 < 2 * 17


def resolved(obj, datasets: dict):
    """The spec with every {"name": dataset} replaced by the rows it names (frames as records)."""
    if isinstance(obj, dict):
        if set(obj) == {"name"} and obj["name"] in datasets:
            rows = datasets[obj["name"]]
            return {"values": rows if isinstance(rows, list) else rows.to_dict("records")}
        return {k: resolved(v, datasets) for k, v in obj.items() if k != "datasets"}
    if isinstance(obj, list):
        return [resolved(v, datasets) for v in obj]
    return obj


def test_the_spec_for_streamlit_is_altairs_own_with_the_frames_pulled_out_by_content():
    import altair as alt

    chart = charts.curves_chart(CURVES, "accuracy", report={"run A": 0.3})
    with alt.theme.enable("none"):
        oracle = chart.to_dict()  # altair's own conversion, validated against the Vega-Lite schema
    spec = charts.to_vega_lite(chart)
    assert len(spec["datasets"]) == len(oracle["datasets"]) >= 2
    assert all(hasattr(frame, "to_dict") for frame in spec["datasets"].values())  # frames: Arrow later
    assert resolved(spec, spec["datasets"]) == resolved(oracle, oracle["datasets"])
    assert alt.data_transformers.active == "default" and alt.theme.active == "default"  # nothing left switched
    again = charts.to_vega_lite(charts.curves_chart(CURVES, "accuracy", report={"run A": 0.3}))
    assert list(again["datasets"]) == list(spec["datasets"])  # the same data keeps its names between runs
    other = charts.to_vega_lite(charts.curves_chart({"run A": CURVES["run A"][:1]}, "accuracy"))
    assert list(other["datasets"]) != list(spec["datasets"])  # other data, other names


def test_a_chart_is_built_once_per_arguments_and_each_caller_gets_its_own_spec():
    first = charts.curves_chart(CURVES, "accuracy", report={"run A": 0.3})
    assert charts.curves_chart(CURVES, "accuracy", report={"run A": 0.3}) is first  # thirty followers, one build
    assert charts.curves_chart(CURVES, "loss") is not first
    grown = {"run A": CURVES["run A"] + [{"epoch": 3, "train_loss": 1.2, "test_loss": 1.8, "train_acc": 0.6,
                                          "test_acc": 0.4}]}
    assert charts.curves_chart(grown, "accuracy", report={"run A": 0.3}) is not first  # keyed by value
    spec = charts.to_vega_lite(first)
    spec["autosize"] = {"type": "fit"}  # Streamlit edits the dict it is given...
    spec["datasets"].clear()
    again = charts.to_vega_lite(first)
    assert "autosize" not in again and again["datasets"]  # ...and the next caller gets the spec as built
    big = charts.projector(first)
    assert charts.projector(first) is big and charts.to_vega_lite(big)["config"]["axis"]["labelFontSize"] == 16


def test_a_builder_called_with_what_does_not_pickle_still_draws():
    rows = ({"preset": p, "source": "lab", "accuracy": a} for p, a in [("cnn", 0.3), ("mlp", 0.26)])  # a generator
    assert len(charts.report_bars(rows).data) == 2
