"""The run panel starts a real (tiny) run through the run library, shows it live, and its curve and result
appear once it completes; the run library page lists it and opens its details."""

import time

import pytest

from core.runs.library import open_library
from tests.pages.conftest import charts, problems
from tests.pages.test_aug_lr_pages import hold_the_cpu_queue

pytestmark = pytest.mark.slow
TINY = dict(dataset_kind="synthetic", subset="500", test_subset="500", device="cpu")


def wait_for_end(runs_dir, timeout=180.0):
    lib = open_library(runs_dir)
    t0 = time.time()
    while time.time() - t0 < timeout:
        runs = lib.list_runs()
        if runs and not any(r.active for r in runs):
            return runs
        time.sleep(0.5)
    raise AssertionError(f"runs still active after {timeout}s: {[(r.id, r.status) for r in lib.list_runs()]}")


def test_start_a_run_from_the_panel_and_see_its_curve(open_page, lab_dirs):
    _, runs_dir = lab_dirs
    at = open_page("mlp_vs_cnn", **TINY)
    before = [c.proto.spec for c in charts(at)]  # the page's measured-budget chart only: nothing has run yet
    at.number_input(key="nets_mlp_epochs").set_value(2).run()
    [b for b in at.button if b.label.startswith("▶ Start")][0].click().run()
    assert problems(at) == []
    status = " ".join(m.value for m in at.markdown)
    assert "mlp" in status and ("running" in status or "queued" in status)

    (run,) = wait_for_end(runs_dir)
    assert run.status == "completed" and run.epochs_done == 2 and run.preset == "mlp"
    assert run.train_size == 500 and run.dataset == "synthetic"

    at.run()
    assert problems(at) == []
    specs = [c.proto.spec for c in charts(at)]
    new = [s for s in specs if s not in before]
    assert any('"accuracy"' in s and '"epoch"' in s for s in new)  # the curves of the finished run
    assert any(m.label == "Best test accuracy" for m in at.metric)
    report = [m for m in at.metric if m.label.startswith("Report")]
    assert report and report[0].value == "26%"  # the MLP's number from the report, beside ours

    page = open_page("runs", **TINY)
    assert problems(page) == []
    table = page.dataframe[0].value
    assert list(table["name"]) == [run.name] and list(table["status"]) == ["completed"]


def test_a_run_that_failed_at_setup_shows_its_error_as_written_and_offers_no_resume(open_page, lab_dirs):
    from core.lessons.presets import preset_config

    lib = open_library(lab_dirs[1])
    reason = "no image files in /data/pets/train/cat: expected *.jpg or *.png files, one folder per class"
    failed = lib.insert_run(preset_config("cnn", dataset="synthetic", subset=500), device="cpu", status="failed",
                            started_by="app", preset="cnn", extra={"reason": reason, "finished": 1.0})
    stopped = lib.insert_run(preset_config("mlp", dataset="synthetic", subset=500), device="cpu", status="stopped",
                             started_by="app", preset="mlp", extra={"reason": "stopped before it started"})
    at = open_page("mlp_vs_cnn", nets_preset="cnn", **TINY)
    assert not at.exception
    (shown,) = [e for e in at.error if "no image files" in e.value]
    assert shown.value.replace("\\", "") == reason  # escaped: the markdown shows the stars, not italics
    assert "\\*.jpg" in shown.value
    assert not [b for b in at.button if b.label == "↻ Resume"]  # nothing to continue: fix it, start a new run
    at = open_page("mlp_vs_cnn", nets_preset="mlp", **TINY)
    assert [b for b in at.button if b.label == "↻ Resume" and b.key.endswith(stopped)]  # it can start over
    assert failed != stopped


def test_an_image_folder_is_checked_when_entered_and_start_waits_for_a_good_one(open_page, tmp_path):
    from PIL import Image

    bad = tmp_path / "pets"
    (bad / "train" / "cat").mkdir(parents=True)  # no test/ split
    at = open_page("home", dataset_kind="folder", folder=str(bad))  # the sidebar is in the first run's tree
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert at.button(key="card_queue").disabled
    assert any(f"{bad / 'test'} is missing" in e.replace("\\", "") and "/\\*.jpg" in e for e in errors)
    at = open_page("mlp_vs_cnn", dataset_kind="folder", folder=str(bad))
    (start,) = [b for b in at.button if b.label.startswith("▶ Start")]
    assert start.disabled and "not a dataset" in start.help

    good = tmp_path / "tiny"
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("cat", "dog"):
            (good / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(good / split / cls / f"{i}.png")
    at = open_page("home", dataset_kind="folder", folder=str(good))
    assert not at.sidebar.error
    assert any("2 classes (cat, dog) · 6 train / 2 test images" in c.value for c in at.sidebar.caption)
    at = open_page("mlp_vs_cnn", dataset_kind="folder", folder=str(good))
    (start,) = [b for b in at.button if b.label.startswith("▶ Start")]
    assert not start.disabled


def test_mlp_vs_cnn_shows_the_measured_crossover_and_queues_the_bigger_budget(open_page, lab_dirs):
    from core.lessons.budgets import MEASURED, crossover

    m = MEASURED[("mlp", "cnn")]
    cross = crossover(m.first_test, m.second_test, m.test_images)
    at = open_page("mlp_vs_cnn", **TINY)
    assert problems(at) == []
    text = " ".join(x.value for x in at.markdown)
    assert f"overtakes it at {cross.epoch} epochs" in text and "The report's claim:" in text
    budget = cross.clear_epoch or cross.epoch
    hold_the_cpu_queue(lab_dirs[1])  # the runs wait in the queue: nothing trains in this test
    at.button(key="nets_budget").click().run()
    queued = [r for r in open_library(lab_dirs[1]).list_runs() if r.name != "stand-in"]
    assert sorted((r.preset, r.epochs, r.status) for r in queued) == [("cnn", budget, "queued"),
                                                                       ("mlp", budget, "queued")]


def test_a_diverged_run_shows_in_red_with_its_reason_and_trains_again_at_a_tenth_of_the_lr(open_page, lab_dirs):
    from core.lessons.presets import preset_config

    runs_dir = lab_dirs[1]
    hold_the_cpu_queue(runs_dir)  # the copy waits in the queue instead of training
    lib = open_library(runs_dir)
    reason = ("diverged at epoch 1, step 10: loss 3.2e+19 (started at 2.3) - the learning rate (100) is too high: "
              "train again at a tenth of it (10)")
    config = preset_config("cnn", dataset="synthetic", subset=500, device="cpu", lr=100.0)
    run_id = lib.insert_run(config, device="cpu", status="diverged", started_by="app", preset="cnn",
                            name="too hot", extra={"reason": reason, "finished": 1.0})
    at = open_page("mlp_vs_cnn", nets_preset="cnn", **TINY)
    assert not at.exception
    (shown,) = [e for e in at.error if "diverged at epoch 1, step 10" in e.value]
    assert shown.value.replace("\\", "") == reason
    status = " ".join(m.value for m in at.markdown)
    assert "too hot" in status and "— diverged" in status and "completed" not in status
    assert not [b for b in at.button if b.label == "↻ Resume"]
    (again,) = [b for b in at.button if b.label == "↻ Train again at a tenth of the LR (10)"]
    again.click().run()
    assert not at.exception
    (new,) = [r for r in lib.list_runs() if r.id not in (run_id,) and r.name != "stand-in"]
    assert new.status == "queued" and new.preset == "cnn" and new.config.optim.lr == 10.0

    page = open_page("runs", **TINY)  # the library: a running, a queued and a diverged run, none says None
    assert not page.exception
    table = page.dataframe[0].value
    cells = table.astype(str).to_numpy().ravel().tolist()
    assert not [c for c in cells if c in ("None", "nan", "NaN", "<NA>")], table
    rows = {n: r for n, r in zip(table["name"], table.to_dict("records"))}
    assert rows["stand-in"]["train images"] == "5,000" and rows["stand-in"]["best test acc"] == "—"
    assert rows[new.name]["train images"] == "500" and rows["too hot"]["status"] == "diverged"


def test_numbers_agree_a_running_runs_size_comes_from_its_config_and_digits_compare_only_on_cifar100(
        open_page, lab_dirs):
    import os

    from core.lessons.presets import get_preset, preset_config
    from core.models.catalog import model_size
    from core.runs.supervisor import HOST

    lib = open_library(lab_dirs[1])
    lib.set_setting("stale_after_s", 3600)
    running = preset_config("cnn", dataset="synthetic", subset=500, device="cpu")
    lib.insert_run(running, device="cpu", status="running", started_by="cli", owner="terminal", pid=os.getpid(),
                   host=HOST, preset="cnn", name="cnn live")
    lib.insert_run(preset_config("mlp", dataset="synthetic", subset=500, device="cpu"), device="cpu",
                   status="completed", started_by="app", preset="mlp", name="mlp done",
                   extra={"best_test_acc": 0.4, "test_acc": 0.4, "train_size": 500, "params": 1, "finished": 1.0})
    at = open_page("mlp_vs_cnn", nets_preset="mlp", **TINY)
    assert not at.exception
    tables = [d.value for d in at.dataframe if "parameters" in d.value.columns]
    (cnn_row,) = [r for t in tables for r in t.to_dict("records") if r["experiment"] == get_preset("cnn").title]
    assert cnn_row["parameters"] == f"{model_size(running, 10)[0] / 1e6:.1f}M" != "0.0M"
    assert cnn_row["images"] == "500"
    # synthetic is not the report's CIFAR-100: the report's number is shown, its digits are not compared
    (report,) = [m for m in at.metric if m.label.startswith("Report")]
    assert "points for this run" not in str(report.proto)
    assert any("digits measure different tasks, so they are not compared" in c.value for c in at.caption)


def test_use_the_budget_where_the_reports_order_showed(open_page):
    """The measured box's button sets the page's run panel (both presets of the comparison) and the sidebar's
    training images to the budget core.lessons.class_budgets found the order at, in the URL followers copy."""
    from core.lessons.class_budgets import BY_KEY, first_budget_showing

    shows = first_budget_showing(BY_KEY["width"])
    assert shows is not None  # measured: the width comparison shows the report's order (docs/LESSONS.md)
    at = open_page("filter_width", **TINY)
    (use,) = [b for b in at.button if b.label.startswith("Use ")]
    assert f"{shows.train_images:,} images × {shows.epochs} epochs" in use.label
    use.click().run()
    assert problems(at) == []
    assert at.query_params["width_cnn-128_epochs"] == str(shows.epochs)
    assert at.query_params["subset"] == str(shows.train_images)
    assert at.number_input(key="width_cnn_epochs").value == shows.epochs  # the panel shows the first preset
