"""The question tally chart: one bar per choice in the question's order, the lab's result marked."""

from ui.charts_class import ACTUAL_COLOR, tally_chart


def test_tally_chart_keeps_the_order_and_marks_the_result():
    rows = [{"choice": "MLP", "answers": 1, "share": 0.25}, {"choice": "CNN", "answers": 3, "share": 0.75},
            {"choice": "About the same (within 1 point)", "answers": 0, "share": 0.0}]
    spec = tally_chart(rows, actual="CNN").to_dict()
    data = next(iter(spec["datasets"].values()))
    assert [d["choice"] for d in data] == ["MLP", "CNN", "About the same (within 1 point)"]
    assert [d["is_actual"] for d in data] == [False, True, False]
    # a long choice wraps into short lines (a phone keeps most of its width for the bars); the result is ticked
    assert [d["shown"] for d in data] == ["MLP", "✓ CNN", "About the same\n(within 1 point)"]
    assert [d["label"] for d in data] == ["1 (25%)", "3 (75%)", "0 (0%)"]
    bars, text = spec["layer"]
    assert bars["encoding"]["y"]["sort"] == [d["shown"] for d in data]
    assert "split(datum.label" in bars["encoding"]["y"]["axis"]["labelExpr"]
    assert bars["encoding"]["color"]["condition"]["value"] == ACTUAL_COLOR
    assert text["encoding"]["text"]["field"] == "label"
    # no axis of crowded numbers: the counts are written after the bars, with room for the longest
    assert bars["encoding"]["x"]["axis"] is None and bars["encoding"]["x"]["scale"]["domain"] == [0, 3 * 1.6]


def test_tally_chart_without_a_result_marks_nothing():
    spec = tally_chart([{"choice": "a", "answers": 0, "share": 0.0}], actual=None).to_dict()
    data = next(iter(spec["datasets"].values()))
    assert data[0]["is_actual"] is False and data[0]["label"] == "0 (0%)" and data[0]["shown"] == "a"


def test_the_tally_reads_at_14_px_and_at_projector_size_in_presenter_mode():
    from ui.charts import PROJECTOR_FONT, projector

    rows = [{"choice": "MLP", "answers": 1, "share": 0.2}, {"choice": "CNN", "answers": 4, "share": 0.8}]
    plain = tally_chart(rows, "CNN").to_dict()
    assert plain["config"]["axis"]["labelFontSize"] == 14 and plain["config"]["text"]["fontSize"] == 14
    big = projector(tally_chart(rows, "CNN")).to_dict()
    assert big["config"]["axis"]["labelFontSize"] == big["config"]["text"]["fontSize"] == PROJECTOR_FONT["label"]
    assert "fontSize" not in str([layer.get("mark") for layer in big["layer"]])  # nothing on a mark overrides it
