"""scripts/classroom_load.py's summary: the JSON fields the performance note reads, from known samples.
(The script itself drives real browsers against a server; tests/browser runs it for one student.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "classroom_load.py"
spec = importlib.util.spec_from_file_location("classroom_load", SCRIPT)
load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(load)


def test_percentile_interpolates_between_ranks_like_numpy():
    xs = [4.0, 1.0, 3.0, 2.0]
    assert load.percentile(xs, 50) == pytest.approx(2.5) and load.percentile(xs, 0) == 1.0
    assert load.percentile(xs, 100) == 4.0 and load.percentile(xs, 95) == pytest.approx(3.85)
    assert load.percentile([7.0], 95) == 7.0 and load.percentile([], 50) is None


def test_a_run_is_lost_when_it_was_active_and_failed_or_vanished():
    looks = [{"a": "running", "b": "completed", "c": "queued", "d": "completed"},
             {"a": "running", "b": "completed", "c": "running", "d": "completed", "e": "queued"},
             {"a": "failed", "b": "completed", "c": "completed", "e": "stopped"}]
    assert load.lost_runs(looks) == ["a", "d"]  # a failed while active; d vanished; e was stopped (a choice)
    assert load.lost_runs([]) == [] and load.lost_runs([{"a": "failed"}]) == []  # failed before the test


def test_summary_has_the_fields_for_one_student():
    loads = [{"page": "home", "seconds": 2.0, "student": 0}, {"page": "lr_finder", "seconds": 4.0, "student": 0}]
    out = load.summarize(loads, students=1, errors=["student 0 augmentation: TimeoutError: slow"],
                         actions=[{"what": "answer", "seconds": 0.5}],
                         looks=[{"r1": "running"}, {"r1": "running"}], train_status="completed",
                         rss_mb={"before": 1000.0, "loaded": 1300.0, "peak": 1400.0, "after": 1250.0},
                         extra={"answers": 1})
    for field in ("students", "page_loads", "p50_s", "p95_s", "errors", "runs_lost", "rss_mb_before",
                  "rss_mb_after", "rss_mb_per_student"):
        assert field in out
    assert (out["students"], out["page_loads"], out["errors"], out["runs_lost"]) == (1, 2, 1, 0)
    assert out["p50_s"] == pytest.approx(3.0) and out["p95_s"] == pytest.approx(3.9) and out["max_s"] == 4.0
    assert out["rss_mb_per_student"] == pytest.approx(300.0) and out["rss_mb_peak"] == 1400.0
    assert out["per_page"]["lr_finder"] == {"n": 1, "p50_s": 4.0, "p95_s": 4.0, "max_s": 4.0}
    assert out["actions"]["answer"]["n"] == 1 and out["answers"] == 1
    assert out["error_details"] == ["student 0 augmentation: TimeoutError: slow"]


def test_a_training_run_that_did_not_complete_counts_as_lost():
    out = load.summarize([], students=2, train_status="unfinished", rss_mb={"before": None})
    assert out["runs_lost"] == 1 and out["lost_runs"] == ["trained run (unfinished)"]
    assert out["page_loads"] == 0 and out["p95_s"] is None and out["rss_mb_per_student"] is None


# --- --follow: delays matched against hand-made timelines (times are plain numbers, no clock) ------------------

CNN = {"nets_preset": "cnn"}
CHANGES = [{"what": "mlp_vs_cnn", "at": 100.0, "page": "mlp_vs_cnn", "state": {}},
           {"what": "nets_preset=cnn", "at": 110.0, "page": "mlp_vs_cnn", "state": CNN},
           {"what": "+10 steps", "at": 120.0, "page": "lr_finder", "state": {"lrf_at": "10"}}]


def test_view_names_the_page_and_drops_a_browsers_own_keys():
    assert load.view("", "nick=ana&dataset_kind=folder&nets_preset=cnn") == ("home", (("nets_preset", "cnn"),))
    assert load.view("pages/lr_finder.py", {"lrf_at": "10", "presenter": "1"}) == ("lr_finder", (("lrf_at", "10"),))
    assert load.view("mlp_vs_cnn", "") == ("mlp_vs_cnn", ())


def test_arrival_is_the_first_time_the_page_shows_the_teachers_state_after_the_change():
    shown = [(90.0, "home", ()), (102.5, "mlp_vs_cnn", (("x", "1"),)), (103.0, "mlp_vs_cnn", ())]
    assert load.arrival(shown, 100.0, ("mlp_vs_cnn", ()), 108.0) == 103.0  # the right page, wrong state: not yet
    assert load.arrival(shown, 104.0, ("mlp_vs_cnn", ()), 108.0) == 104.0  # already shown at the change: 0 s
    assert load.arrival(shown, 100.0, ("mlp_vs_cnn", ()), 102.9) is None  # past the bound
    assert load.arrival([], 100.0, ("home", ()), 200.0) is None
    assert load.arrival([(95.0, "home", ())], 100.0, ("mlp_vs_cnn", ()), 200.0) is None


def test_follow_delays_per_student_and_change_with_a_missed_change():
    timelines = {
        0: {"client": "websocket", "shown": [(50.0, "home", {}), (102.0, "mlp_vs_cnn", {}),
                                             (112.5, "mlp_vs_cnn", CNN), (121.0, "lr_finder", {"lrf_at": "5"}),
                                             (123.0, "lr_finder", {"lrf_at": "10"})]},
        # the browser came to the experiment only after the teacher's next change: that change is missed
        1: {"client": "browser", "shown": [(60.0, "home", {}), (104.0, "mlp_vs_cnn", {}),
                                           (125.0, "lr_finder", {"lrf_at": "10"})]},
    }
    got = load.follow_delays(CHANGES, timelines, bound_s=8.0)
    assert [(f["student"], f["change"], f["seconds"]) for f in got] == [
        (0, 0, 2.0), (1, 0, 4.0), (0, 1, 2.5), (1, 1, None), (0, 2, 3.0), (1, 2, 5.0)]
    assert {f["client"] for f in got if f["student"] == 1} == {"browser"}
    late = load.follow_delays(CHANGES[2:], timelines, bound_s=4.0)  # the last change: bound alone
    assert [f["seconds"] for f in late] == [3.0, None]


def test_summary_reports_follow_delays_per_kind_and_counts_a_missed_change_as_an_error():
    follows = [{"student": 0, "client": "websocket", "change": 0, "what": "mlp_vs_cnn", "seconds": 2.0},
               {"student": 1, "client": "browser", "change": 0, "what": "mlp_vs_cnn", "seconds": 4.0},
               {"student": 0, "client": "websocket", "change": 1, "what": "nets_preset=cnn", "seconds": 3.0},
               {"student": 1, "client": "browser", "change": 1, "what": "nets_preset=cnn", "seconds": None}]
    loads = [{"page": "home", "seconds": 1.0, "student": 0, "client": "websocket"},
             {"page": "home", "seconds": 3.0, "student": 1, "client": "browser"}]
    out = load.summarize(loads, students=2, errors=["teacher: x"], follows=follows,
                         looks=[{"r": "running"}, {"r": "completed"}])
    assert (out["follow_changes"], out["follow_delays"], out["changes_missed"]) == (2, 3, 1)
    assert (out["follow_p50_s"], out["follow_max_s"]) == (3.0, 4.0) and out["follow_p95_s"] == pytest.approx(3.9)
    assert out["follow_per_client"] == {"websocket": {"n": 2, "p50_s": 2.5, "p95_s": 2.95, "max_s": 3.0},
                                        "browser": {"n": 1, "p50_s": 4.0, "p95_s": 4.0, "max_s": 4.0}}
    assert out["follow_per_change"]["1: nets_preset=cnn"]["n"] == 1
    assert out["errors"] == 2 and "student 1 (browser) never showed the teacher's change 1" in out["error_details"][1]
    assert (out["p95_s"], out["runs_lost"]) == (pytest.approx(2.9), 0)
    assert "follow_p95_s" not in load.summarize(loads, students=2)  # without --follow: no follow fields


def test_the_tour_reads_pages_picks_and_buttons():
    assert load.tour_steps(load.DEFAULT_FOLLOW_TOUR)[:5] == [
        ("page", "mlp_vs_cnn", ""), ("pick", "nets_preset", "cnn"), ("pick", "nets_preset", "mlp"),
        ("page", "lr_finder", ""), ("click", "+10 steps", "")]
    assert load.tour_steps("button:Reveal the answers, ") == [("click", "Reveal the answers", "")]
    assert load.pick_option(["a", "b"], "b") == "b"
    from core.lessons.presets import get_preset

    label = f"{get_preset('cnn').title}  (report: x)"
    assert load.pick_option(["other", label], "cnn") == label
    with pytest.raises(LookupError):
        load.pick_option(["other"], "cnn")


def test_training_cover_is_the_share_of_the_tour_a_cli_run_trained_through(tmp_path):
    from core.config import TrainConfig
    from core.runs.library import open_library

    lib = open_library(tmp_path, recover=False)
    assert load.training_cover(str(tmp_path), 100.0, 200.0) == 0.0  # nothing trained
    lib.insert_run(TrainConfig(), device="cpu", status="completed", started_by="cli",
                   extra={"started": 50.0, "finished": 150.0})  # over halfway through the tour
    lib.insert_run(TrainConfig(), device="cpu", status="completed", started_by="app",
                   extra={"started": 0.0, "finished": 300.0})  # someone else's run does not count
    assert load.training_cover(str(tmp_path), 100.0, 200.0) == pytest.approx(0.5)
    lib.insert_run(TrainConfig(), device="cpu", status="running", started_by="cli", extra={"started": 150.0})
    assert load.training_cover(str(tmp_path), 100.0, 200.0) == pytest.approx(1.0)  # still training: to the end
    assert load.training_cover(None, 100.0, 200.0) is None
