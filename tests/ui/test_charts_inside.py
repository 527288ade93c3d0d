"""ui/charts_inside.py: the "Inside the network" charts draw exactly the matrix, accuracies, guesses and sanity
steps they are given - counts that add up, orders that hold, right/wrong colours, the check's thresholds."""

from __future__ import annotations

import pytest
import torch

from core.explain.features import Guess
from core.explain.sanity import SanityStep
from ui import charts_inside as ci

NAMES = ["cat", "dog", "frog"]
CM = torch.tensor([[5, 3, 0],   # cat: 5 right, 3 called dog
                   [1, 6, 1],   # dog
                   [0, 0, 4]])  # frog: all right


def data_of(spec: dict, layer: dict | None = None) -> list[dict]:
    """The rows a chart (or one of its layers) draws, from to_dict()'s top-level datasets."""
    ref = (layer or {}).get("data") or spec["data"]
    return spec["datasets"][ref["name"]]


def test_confusion_rows_count_every_cell_with_its_share_of_the_true_class():
    rows = ci.confusion_rows(CM, NAMES)
    assert len(rows) == 9 and sum(r["count"] for r in rows) == int(CM.sum()) == 20
    cell = {(r["true"], r["pred"]): r for r in rows}
    assert cell["cat", "dog"]["count"] == 3 and cell["cat", "dog"]["fraction"] == pytest.approx(3 / 8)
    assert cell["frog", "frog"]["right"] and not cell["dog", "frog"]["right"]
    kept = ci.confusion_rows(CM, NAMES, keep=[2, 0], drop_zeros=True)
    assert [(r["true"], r["pred"], r["count"]) for r in kept] == [("frog", "frog", 4), ("cat", "cat", 5)]
    assert kept[1]["fraction"] == pytest.approx(5 / 8)  # the share is of the whole row, not the kept part
    with pytest.raises(ValueError, match="2 class names"):
        ci.confusion_rows(CM, NAMES[:2])


def test_confusion_chart_colours_right_and_wrong_on_their_own_scales_and_prints_small_counts():
    spec = ci.confusion_chart(CM, NAMES, title="t").to_dict()
    right, wrong, text = spec["layer"]
    assert sum(r["count"] for r in data_of(spec)) == 20  # every cell, zeros included, for a small matrix
    assert right["transform"] == [{"filter": "datum.right && datum.count > 0"}]
    assert right["encoding"]["color"]["scale"] == {"scheme": "greens", "domain": [0, 1]}
    assert wrong["transform"] == [{"filter": "!datum.right && datum.count > 0"}]
    assert wrong["encoding"]["color"]["scale"]["scheme"] == "reds"
    assert spec["resolve"] == {"scale": {"color": "independent"}}
    assert text["mark"]["type"] == "text" and text["encoding"]["text"]["field"] == "count"
    x, y = right["encoding"]["x"], right["encoding"]["y"]
    assert x["field"] == "pred" and x["sort"] == NAMES and x["scale"]["domain"] == NAMES
    assert y["field"] == "true" and y["title"] == "true class"
    assert spec["width"] == {"step": 40} and spec["height"] == {"step": 40}

    big = torch.eye(30, dtype=torch.long) * 3
    big[0, 1] = 2
    keep = [1, 0] + list(range(2, 13))  # 13 classes shown
    spec = ci.confusion_chart(big, [f"c{i}" for i in range(30)], keep=keep).to_dict()
    assert len(spec["layer"]) == 2  # no counts printed past TEXT_CELLS classes
    assert spec["layer"][1]["encoding"]["x"]["sort"] == [f"c{i}" for i in keep]
    assert sum(r["count"] for r in data_of(spec)) == 2 + 3 * 13  # only the kept rows and columns
    hundred = ci.confusion_chart(torch.eye(100, dtype=torch.long), [str(i) for i in range(100)]).to_dict()
    assert len(data_of(hundred)) == 100  # zero cells left out of a 100×100 matrix
    assert hundred["width"] == {"step": 6}


def test_most_confused_classes_and_grouped_order():
    cm = torch.tensor([[9, 0, 0, 0], [0, 9, 4, 0], [0, 1, 9, 0], [2, 0, 0, 9]])
    # mistakes involving each class: 0: 2, 1: 5, 2: 5, 3: 2 -> ties by index
    assert ci.most_confused_classes(cm, 3) == [1, 2, 0]
    assert ci.most_confused_classes(cm, 0) == []
    names = ["oak", "maple", "bus", "apple"]
    assert ci.grouped_order(names) == [3, 2, 1, 0]  # by name
    assert ci.grouped_order(names, [0, 0, 1, 2]) == [1, 0, 2, 3]  # by superclass, then name
    assert ci.grouped_order(names, [0, 0, 1, 2], among=[3, 0, 1]) == [1, 0, 3]


def test_per_class_chart_sorts_best_first_leaves_out_absent_classes_and_marks_the_overall():
    accs = [0.5, float("nan"), 0.9, 0.5]
    rows = ci.per_class_rows(accs, ["b", "x", "c", "a"], superclasses=["s1", "s2", "s3", "s4"])
    assert [(r["class"], r["accuracy"], r["superclass"]) for r in rows] == [
        ("c", 0.9, "s3"), ("a", 0.5, "s4"), ("b", 0.5, "s1")]
    spec = ci.per_class_chart(accs, ["b", "x", "c", "a"], overall=0.6).to_dict()
    bars, rule, label = spec["layer"]
    assert bars["encoding"]["x"]["sort"] == ["c", "a", "b"]
    assert bars["encoding"]["y"]["axis"]["format"] == ".0%"
    assert data_of(spec, rule) == [{"overall": 0.6, "label": "overall 60%"}]
    assert label["encoding"]["text"]["field"] == "label"
    with pytest.raises(ValueError):
        ci.per_class_rows([0.1], ["a", "b"])


def test_top_k_marks_the_true_class_green_and_a_wrong_top_answer_red():
    guesses = [Guess("dog", 0.7, "mammals"), Guess("cat", 0.2, "mammals"), Guess("frog", 0.1, None)]
    rows = ci.top_k_rows(guesses, "cat")
    assert [(r["class"], r["kind"]) for r in rows] == [
        ("dog (mammals)", "wrong"), ("cat (mammals)", "right"), ("frog", "other")]
    assert [r["kind"] for r in ci.top_k_rows(guesses, "dog")] == ["right", "other", "other"]
    assert [r["kind"] for r in ci.top_k_rows(guesses)] == ["top", "other", "other"]  # an upload
    spec = ci.top_k_chart(guesses, "cat").to_dict()
    bars, text = spec["layer"]
    scale = bars["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"]))["right"] == ci.RIGHT_COLOR
    assert dict(zip(scale["domain"], scale["range"]))["wrong"] == ci.WRONG_COLOR
    assert bars["encoding"]["y"]["sort"] == ["dog (mammals)", "cat (mammals)", "frog"]
    assert text["encoding"]["text"]["format"] == ".1%"


def test_sanity_chart_draws_the_steps_in_order_with_the_checks_thresholds():
    steps = [SanityStep(0, "", (), torch.zeros(2, 2), 1.0, 1.0, 0.9),
             SanityStep(1, "fc", ("fc",), torch.zeros(2, 2), 0.4, 0.5, 0.3),
             SanityStep(2, "conv1", ("fc", "conv1"), torch.zeros(2, 2), -0.2, 0.1, 0.1)]
    rows = ci.sanity_rows(steps)
    assert [(r["label"], r["rank_corr"]) for r in rows] == [("trained", 1.0), ("+ fc", 0.4), ("+ conv1", -0.2)]
    spec = ci.sanity_chart(steps).to_dict()
    line, rules, notes = spec["layer"]
    assert line["encoding"]["x"]["sort"] == ["trained", "+ fc", "+ conv1"]
    assert line["encoding"]["y"]["scale"]["domain"] == [-0.2, 1]  # a negative correlation stays in view
    from core.explain.sanity import FLAG_ABOVE, PASS_BELOW

    assert (ci.FLAG_ABOVE, ci.PASS_BELOW) == (FLAG_ABOVE, PASS_BELOW)
    assert sorted(r["rank_corr"] for r in data_of(spec, rules)) == [PASS_BELOW, FLAG_ABOVE]
    assert notes["encoding"]["text"]["field"] == "text"


def test_weight_change_chart_keeps_the_networks_layer_order():
    rows = [{"layer": "conv1", "change": 0.16}, {"layer": "conv2", "change": 0.46}]
    spec = ci.weight_change_chart(rows).to_dict()
    assert spec["layer"][0]["encoding"]["y"]["sort"] == ["conv1", "conv2"]
    assert [r["change"] for r in data_of(spec)] == [0.16, 0.46]
    assert spec["height"] == 28 * 2 + 50
    assert spec["layer"][1]["encoding"]["text"] == {"field": "change", "format": ".0%", "type": "quantitative"}
