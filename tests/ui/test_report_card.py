"""The report card's markdown tables: one row per experiment, the report's number beside the lab's best run."""

from __future__ import annotations

from types import SimpleNamespace

from core.lessons.presets import PRESETS
from ui.report_card import report_card_table


def test_a_row_per_preset_with_the_reports_number_and_the_labs_best():
    presets = [PRESETS["mlp"], PRESETS["cnn"]]
    run = SimpleNamespace(best_test_acc=0.3012, status="completed", epochs_done=3, epochs=3, train_size=2000,
                          device="cpu", seconds=27.7)
    lines = report_card_table(presets, {"cnn": run}).splitlines()
    assert len(lines) == 2 + len(presets)  # header, alignment row, one row per experiment
    mlp, cnn = lines[2:]
    assert mlp.count("|") == cnn.count("|") == 5  # four cells: nothing in a lesson breaks the table
    assert f"**{PRESETS['mlp'].report_label}**" in mlp and "**—**" in mlp and "not run yet" in mlp
    assert "**30%**" in cnn and "3/3 epochs" in cnn and "2,000 images" in cnn


def test_a_pipe_in_a_title_or_lesson_is_escaped():
    odd = SimpleNamespace(name="odd", title="A | B", lesson="one | two", report_label="1%")
    (row,) = report_card_table([odd], {}).splitlines()[2:]
    assert "A \\| B" in row and "one \\| two" in row and row.count("|") - row.count("\\|") == 5
