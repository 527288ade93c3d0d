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
