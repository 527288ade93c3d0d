"""Chart builders: the data that goes in is the data that is drawn, with the encodings a page relies on."""

from ui import charts

CURVES = {"run A": [{"epoch": 1, "train_loss": 2.0, "test_loss": 2.1, "train_acc": 0.3, "test_acc": 0.25},
                    {"epoch": 2, "train_loss": 1.5, "test_loss": 1.9, "train_acc": 0.5, "test_acc": 0.35}]}


def test_curves_frame_is_long_form_train_and_test():
    df = charts.curves_frame(CURVES)
    assert len(df) == 4 and set(df["split"]) == {"train", "test"}
    assert df[(df.epoch == 2) & (df.split == "test")]["accuracy"].item() == 0.35


def test_curves_chart_dashes_train_and_draws_the_report_rule():
    spec = charts.curves_chart(CURVES, "accuracy", report={"run A": 0.3}).to_dict()
    layers = spec["layer"]
    assert layers[0]["encoding"]["strokeDash"]["field"] == "split"
    assert layers[0]["encoding"]["y"]["axis"]["format"] == ".0%"
    assert layers[1]["mark"]["type"] == "rule"


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
