"""core.lessons.class_budgets: the judgement of a comparison at a budget, against hand-computed numbers."""

import math

import pytest

from core.lessons.class_budgets import (
    BY_KEY,
    COMPARISONS,
    Runs,
    first_budget_showing,
    from_measurements,
    judge,
    judgements,
    measured,
    summary,
)
from core.lessons.presets import PRESETS


def runs(preset, test, train=None, images=2000, test_images=1000):
    train = train or [[0.5] * len(test[0])] * len(test)
    return Runs(preset, images, test_images, len(test[0]), tuple(range(len(test))), tuple(map(tuple, test)),
                tuple(map(tuple, train)), 60.0, "cmd", "test CPU")


def test_every_comparison_names_real_presets_and_the_report_steps_are_all_there():
    assert len(COMPARISONS) >= 7
    for c in COMPARISONS:
        assert c.first in PRESETS and c.second in PRESETS, c


def test_a_clear_gap_beyond_the_seed_noise_is_the_reports_order():
    a = runs("cnn-128", [[0.20, 0.30], [0.22, 0.31], [0.21, 0.29]])
    b = runs("cnn-bn", [[0.25, 0.40], [0.27, 0.41], [0.26, 0.39]])
    j = judge(BY_KEY["batch-norm"], a, b)
    assert j.epochs == 2 and j.seeds == 3
    assert j.first_mean == pytest.approx(0.30) and j.second_mean == pytest.approx(0.40)
    assert j.spread == pytest.approx(0.01)  # both seeds' standard deviation
    se = math.sqrt(0.01 ** 2 / 3 * 2)
    binomial = math.sqrt(0.3 * 0.7 / 1000 + 0.4 * 0.6 / 1000) / math.sqrt(3)
    assert j.noise == pytest.approx(max(0.01, 2 * max(se, binomial)))
    assert j.verdict == "report's order" and j.matches_report
    at_one = judge(BY_KEY["batch-norm"], a, b, epochs=1)  # the best so far after one epoch
    assert at_one.first_mean == pytest.approx(0.21) and at_one.second_mean == pytest.approx(0.26)


def test_a_gap_inside_the_noise_or_reversed_is_said_so():
    a = runs("cnn", [[0.30], [0.36], [0.33]])
    b = runs("cnn-128", [[0.31], [0.35], [0.34]])
    assert judge(BY_KEY["width"], a, b).verdict == "within noise"
    assert judge(BY_KEY["width"], b, a).verdict == "within noise"
    c = runs("cnn-128", [[0.20], [0.21], [0.20]])
    assert judge(BY_KEY["width"], a, c).verdict == "reversed"


def test_the_first_budget_showing_the_order_must_hold_at_the_larger_epochs_of_the_same_images():
    a = runs("cnn-128", [[0.30, 0.31, 0.32]] * 3)
    b = runs("cnn-bn", [[0.35, 0.31, 0.40]] * 3)  # ahead at 1 epoch, and at 2 and 3 by its best so far
    assert [j.verdict for j in judgements(BY_KEY["batch-norm"], [a, b])] == ["report's order"] * 3
    assert first_budget_showing(BY_KEY["batch-norm"], [a, b]).epochs == 1
    late = runs("cnn-bn", [[0.25, 0.29, 0.40]] * 3)
    assert first_budget_showing(BY_KEY["batch-norm"], [a, late]).epochs == 3
    assert "from 2,000 images × 3 epochs" in summary(BY_KEY["batch-norm"], [a, late])
    never = runs("cnn-bn", [[0.20, 0.22, 0.25]] * 3)
    assert first_budget_showing(BY_KEY["batch-norm"], [a, never]) is None
    assert "the other way round" in summary(BY_KEY["batch-norm"], [a, never])
    assert "not measured" in summary(BY_KEY["batch-norm"], [])


def test_a_scheduled_run_counts_only_at_its_own_length():
    # cnn-sgd anneals its learning rate over the run: its epoch 2 of 3 is not a 2-epoch run, so only 3 is judged,
    # while the constant-LR cnn stands for every prefix
    adam = runs("cnn", [[0.20, 0.25, 0.30]] * 3)
    sgd = runs("cnn-sgd", [[0.30, 0.35, 0.40]] * 3)
    assert [j.epochs for j in judgements(BY_KEY["sgd"], [adam, sgd])] == [3]
    assert first_budget_showing(BY_KEY["sgd"], [adam, sgd]).epochs == 3
    assert [j.epochs for j in judgements(BY_KEY["width"], [adam, runs("cnn-128", [[0.3] * 3] * 3)])] == [1, 2, 3]


def test_measurement_lines_become_one_row_per_preset_and_budget():
    line = {"preset": "cnn", "subset": 2000, "test_subset": 1000, "epochs": 2, "status": "completed",
            "test_acc": [0.2, 0.3], "train_acc": [0.25, 0.35], "wall_s": 50.0, "cpu": "CPU X",
            "command": "-m core train --preset cnn --seed 0"}
    rows = from_measurements([{**line, "seed": 0}, {**line, "seed": 1, "wall_s": 70.0},
                              {**line, "seed": 2, "status": "diverged"}])  # only completed runs count
    assert len(rows) == 1
    (row,) = rows
    assert row["seeds"] == [0, 1] and row["seconds"] == 60.0 and row["machine"] == "CPU X"
    assert row["command"].endswith("--seed S")


def test_the_shipped_measurements_load():
    for r in measured():
        assert r.preset in PRESETS and len(r.test_acc) == len(r.seeds) and all(len(c) == r.epochs for c in r.test_acc)
