"""The Start button says how long the run takes here (a rate kept in the run library), and a class time budget
cuts the run, saying what it cut and what the report used; the teacher may still start the full run."""

from core.classroom import settings as class_settings
from core.lessons.presets import preset_config
from core.runs.library import open_library
from core.train.calibrate import run_rate_key
from core.train.estimate import Rate, save_rate
from tests.pages.conftest import problems

TINY = dict(dataset_kind="synthetic", subset="500", test_subset="500", device="cpu")


def keep_rate(runs_dir, train_ips: float) -> None:
    lib = open_library(runs_dir)
    config = preset_config("mlp", dataset="synthetic", subset=500, test_subset=500, device="cpu")
    save_rate(lib.set_setting, run_rate_key(config, "cpu"), Rate(train_ips, 4 * train_ips, 1.0, 1.0))


def starts(at):
    return [b.label for b in at.button if b.label.startswith("▶ Start")]


def test_the_start_button_says_how_long_when_a_rate_is_kept(open_page, lab_dirs):
    at = open_page("mlp_vs_cnn", **TINY)
    assert problems(at) == []
    assert starts(at) == ["▶ Start (time: measured on its first run here)"]
    keep_rate(lab_dirs[1], 1000.0)
    at.run()
    (label,) = starts(at)
    assert label.startswith("▶ Start (≈ ") and label.endswith(" s on this CPU)")


def test_the_teacher_times_a_model_once_with_a_click(open_page, lab_dirs):
    at = open_page("mlp_vs_cnn", **TINY)
    assert starts(at) == ["▶ Start (time: measured on its first run here)"]
    at.button(key="nets:time_it").click().run()  # a few steps on random images, kept for every session
    assert problems(at) == []
    (label,) = starts(at)
    assert label.startswith("▶ Start (≈ ") and "on this CPU" in label
    assert not [b for b in at.button if b.label == "⏱ Time it here"]


def test_a_one_minute_budget_cuts_the_run_and_says_so(open_page, lab_dirs):
    keep_rate(lab_dirs[1], 10.0)  # 500 images x 20 epochs at 10 img/s: far over a minute
    class_settings.set_minutes_per_run(open_library(lab_dirs[1]), 1)
    at = open_page("mlp_vs_cnn", **TINY)
    assert problems(at) == []
    captions = " ".join(c.value for c in at.caption)
    assert "Cut to 1 epoch and " in captions and "to fit 1 minute; the report trained 20 epochs on 50,000" \
        in captions
    (label,) = starts(at)
    assert label.startswith("▶ Start (≈ ") and "on this CPU" in label
    assert [b.label for b in at.button if b.label.startswith("Start the full run (≈ ")]


def test_the_whole_report_says_its_total_and_how_many_are_not_timed(open_page, lab_dirs):
    keep_rate(lab_dirs[1], 1000.0)  # the MLP only: the other experiments were never timed here
    at = open_page("home", **TINY)
    assert problems(at) == []
    (label,) = [b.label for b in at.button if b.label.startswith("▶ Queue the whole report")]
    assert " on this CPU + " in label and " not timed yet)" in label
    assert at.button(key="card_queue").label.startswith("▶ Queue it (")


def test_the_teacher_sets_the_class_budget_in_the_sidebar(open_page, lab_dirs):
    lib = open_library(lab_dirs[1])
    class_settings.set_minutes_per_run(lib, 2)
    at = open_page("home", **TINY)
    box = at.number_input(key="class_minutes")
    assert box.value == 2.0
    box.set_value(5.0).run()
    assert problems(at) == [] and class_settings.minutes_per_run(lib) == 5.0
