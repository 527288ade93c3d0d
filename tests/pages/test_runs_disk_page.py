"""The run library page says what each run takes on disk and warns the teacher before the disk runs out."""

import os
import shutil
from collections import namedtuple

from core.runs.library import open_library
from tests.pages.conftest import problems, tiny_run

TINY = dict(dataset_kind="synthetic", subset="500", test_subset="500", device="cpu")
Usage = namedtuple("Usage", "total used free")


def test_each_run_shows_its_size_and_the_page_the_free_space(open_page, lab_dirs):
    data_dir, runs_dir = lab_dirs
    run_id = tiny_run(runs_dir, data_dir)
    folder = open_library(runs_dir).run_dir(run_id)
    assert os.path.samefile(folder / "best.pt", folder / "last.pt")  # one epoch, improved: one file
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name != "best.pt")
    at = open_page("runs", **TINY)
    assert problems(at) == [] and not at.warning
    table = at.dataframe[0].value
    assert list(table["id"]) == [run_id]
    assert float(table["on disk (MB)"].iloc[0]) * 1e6 == size  # the linked best.pt is not counted twice
    assert any(c.value.startswith(f"All runs take {size / 1e6:,.0f} MB on disk in {runs_dir}; ") for c in at.caption)


def test_a_nearly_full_disk_is_a_warning_on_the_page(open_page, lab_dirs, monkeypatch):
    data_dir, runs_dir = lab_dirs
    run_id = tiny_run(runs_dir, data_dir)
    size = (open_library(runs_dir).run_dir(run_id) / "last.pt").stat().st_size
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 * 10**9, 99 * 10**9, 300 * 10**6))
    at = open_page("runs", **TINY)
    assert [w.value for w in at.warning] == [
        f"Only 300 MB free on the disk of the run library ({runs_dir}); one checkpoint of the largest model here "
        f"takes {size / 1e6:,.0f} MB. A run that cannot write its checkpoint fails; delete runs you no longer need."]


def test_the_teacher_sees_what_the_whole_report_will_take_before_queueing_it(open_page, monkeypatch):
    at = open_page("home", dataset_kind="synthetic")  # AppTest is on loopback: the teacher
    assert problems(at) == []
    said = [c.value for c in at.caption if c.value.startswith("Their checkpoints will take about ")]
    assert len(said) == 1 and " GB (" in said[0] and said[0].endswith(" free).")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 * 10**9, 99 * 10**9, 3 * 10**9))
    at = open_page("home", dataset_kind="synthetic")
    (warning,) = [w.value for w in at.warning if w.value.startswith("Their checkpoints need about ")]
    assert "but only 3.0 GB are free on the run library's disk: the later runs would not start" in warning


def test_a_student_is_not_told_about_the_disk(open_page, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "owl")
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    at = open_page("home", dataset_kind="synthetic")
    assert problems(at) == []
    assert not any("checkpoints" in c.value for c in at.caption)


def test_only_the_teacher_is_warned_on_the_run_library_page(open_page, lab_dirs, monkeypatch):
    data_dir, runs_dir = lab_dirs
    tiny_run(runs_dir, data_dir)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 * 10**9, 99 * 10**9, 300 * 10**6))
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "owl")
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    at = open_page("runs", **TINY)
    assert problems(at) == [] and not at.warning
    assert any(c.value.startswith("All runs take ") for c in at.caption)  # the figures are for everyone
