"""core/lessons/verdicts.py and the LR-scenario values of core/runs/sweeps.py: the scenario values and labels,
the best finished run, the too-high verdict."""

from __future__ import annotations

import math

import pytest

from core.config import OptimConfig, TrainConfig, to_dict
from core.lessons.verdicts import (
    lesson_of,
    mark_best,
    scenario_labels,
    too_high_verdict,
)
from core.runs.sweeps import lr_scenario_values, new_sweep_id


def record(lr: float, status: str = "completed", acc: float | None = 0.5, optimizer: str = "adam",
           num_classes: int | None = 10, as_dict: bool = False) -> dict:
    cfg = TrainConfig(optim=OptimConfig(name=optimizer, lr=lr))
    return {"config": to_dict(cfg) if as_dict else cfg, "status": status, "test_acc": acc, "num_classes": num_classes}


@pytest.mark.parametrize(("good", "optimizer", "expected"), [
    (1e-4, "adam", (3.3e-6, 1e-4, 1e-2, 30.0, 100.0)),      # Adam: × 100 up, ÷ 30 down
    (1e-4, "adamw", (3.3e-6, 1e-4, 1e-2, 30.0, 100.0)),
    (0.05, "sgd", (1.7e-3, 0.05, 1.5, 30.0, 30.0)),         # SGD: × 30 both ways
    (3.0, "adam", (0.1, 3.0, 100.0, 30.0, 100.0)),          # capped at 100
    (1e-3, "rmsprop", (3.3e-5, 1e-3, 3e-2, 30.0, 30.0)),    # unknown optimizers: × 30
])
def test_lr_scenario_values_round_to_two_digits_and_cap(good, optimizer, expected):
    got = lr_scenario_values(good, optimizer)
    assert [math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, expected)] == [True] * 5
    assert got.grid == {"lr": [got.low, got.good, got.high]}


def test_lesson_of_reads_the_sweep_id_prefix():
    assert lesson_of(new_sweep_id(["lr-scenarios"])) == "lr-scenarios"
    assert lesson_of("batch-epochs-0123abcd") == "batch-epochs"
    assert lesson_of("more-data-0123abcd") == "more-data"
    assert lesson_of("lr-0123abcd") is None and lesson_of("lr-scenarios") is None


def test_scenario_labels_only_for_three_lr_runs_of_the_lesson():
    assert scenario_labels("lr-scenarios", ["lr"], [1e-2, 1e-4, 3.3e-6]) == {
        3.3e-6: "too low", 1e-4: "good", 1e-2: "too high"}
    assert scenario_labels("lr-scenarios", ["lr", "seed"], [1e-2, 1e-4, 3.3e-6]) == {}
    assert scenario_labels("lr-scenarios", ["lr"], [1e-4, 1e-2]) == {}
    assert scenario_labels(None, ["lr"], [1e-2, 1e-4, 3.3e-6]) == {}


def test_mark_best_keeps_finished_rows_and_marks_the_first_highest():
    rows = [{"status": "completed", "test_acc": 0.4, "is_best": True}, {"status": "running", "test_acc": 0.9},
            {"status": "diverged", "test_acc": None}, {"status": "completed", "test_acc": 0.6},
            {"status": "stopped", "test_acc": 0.6}, {"status": "queued", "test_acc": None}]
    finished, best = mark_best(rows)
    assert [(r["status"], r["is_best"]) for r in finished] == [
        ("completed", False), ("diverged", False), ("completed", True), ("stopped", False)]
    assert best is finished[2]
    assert rows[0]["is_best"] is True and "is_best" not in rows[3]  # copies: the input is left alone
    assert mark_best([{"status": "running", "test_acc": 0.1}]) == ([], None)
    assert mark_best([{"status": "failed", "test_acc": None}]) == ([{"status": "failed", "test_acc": None,
                                                                      "is_best": False}], None)


def test_too_high_verdict_waits_for_every_run():
    assert too_high_verdict([]) is None
    assert too_high_verdict([record(1e-4), record(1e-2, status="running")]) is None
    assert too_high_verdict([record(1e-4, status="queued"), record(1e-2)]) is None


@pytest.mark.parametrize(("status", "acc", "num_classes", "outcome"), [
    ("diverged", None, 10, "diverged"),
    ("diverged", 0.5, 10, "diverged"),       # a NaN loss wins over whatever accuracy was recorded before
    ("completed", 0.149, 10, "collapsed"),   # under 1.5 × chance (10 classes: 15%)
    ("completed", 0.15, 10, "stalled"),
    ("completed", 0.014, 100, "collapsed"),  # CIFAR-100: chance 1%, collapsed under 1.5%
    ("completed", 0.016, 100, "stalled"),
    ("completed", 0.14, None, "collapsed"),  # unknown class count: 10
    ("completed", 0.8, 2, "stalled"),        # two classes: chance 50%, collapsed under 75%
    ("completed", 0.7, 2, "collapsed"),
    ("stopped", None, 10, "stalled"),
])
def test_too_high_verdict_judges_the_highest_lr(status, acc, num_classes, outcome):
    records = [record(3.3e-6, acc=0.2), record(1e-2, status, acc, num_classes=num_classes, as_dict=True),
               record(1e-4, acc=0.5)]
    verdict = too_high_verdict(records)
    assert verdict.outcome == outcome and verdict.lr == 1e-2 and verdict.test_acc == acc and verdict.adaptive


def test_too_high_verdict_says_whether_the_optimizer_rescales_its_steps():
    sgd = too_high_verdict([record(0.05, optimizer="sgd"), record(1.5, optimizer="sgd", acc=0.3)])
    assert (sgd.outcome, sgd.adaptive, sgd.lr) == ("stalled", False, 1.5)
