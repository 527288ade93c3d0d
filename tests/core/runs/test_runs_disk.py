"""What the run library takes on disk: per-run bytes from the files themselves (best.pt linked to last.pt counted
once), the free space, the warning a teacher gets before runs start failing to save, and what a write to the
run library's database says when the disk is full (and that it changed nothing)."""

import os
import sqlite3

import pytest

from core.config import DataConfig, ModelConfig, TrainConfig
from core.errors import LabError
from core.runs import store
from core.runs.disk import DiskUsage, Room, disk_usage, room_for
from core.runs.library import open_library
from core.space import GB, free_bytes, size_text


def write(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_per_run_bytes_count_a_linked_best_once(tmp_path):
    write(tmp_path / "a" / "last.pt", 3000)
    os.link(tmp_path / "a" / "last.pt", tmp_path / "a" / "best.pt")  # what the engine does after an improved epoch
    write(tmp_path / "a" / "train.log", 100)
    write(tmp_path / "b" / "last.pt", 5000)
    write(tmp_path / "b" / "best.pt", 4000)  # an older best: a file of its own
    usage = disk_usage(tmp_path, ["a", "b", "gone"])
    assert usage.per_run == {"a": 3100, "b": 9000, "gone": 0}
    assert usage.used == 12100 and usage.largest_checkpoint == 5000
    assert usage.free is not None and usage.free > 0
    assert usage.summary().startswith(f"All runs take 0 MB on disk in {tmp_path}; ")


def test_the_warning_names_the_free_space_and_the_largest_checkpoint():
    low = DiskUsage("/srv/runs", used=10 * 10**9, free=int(0.5 * GB), per_run={}, largest_checkpoint=200_000_000)
    assert low.warning() == ("Only 500 MB free on the disk of the run library (/srv/runs); one checkpoint of the "
                             "largest model here takes 200 MB. A run that cannot write its checkpoint fails; delete "
                             "runs you no longer need.")
    assert DiskUsage("/srv/runs", 0, 50 * 10**9, {}, 200_000_000).warning() == ""
    # room for 2 GB but not for three checkpoints of a 1 GB model: still a warning
    assert DiskUsage("/srv/runs", 0, int(2.5 * GB), {}, 10**9).warning().startswith("Only 2.5 GB free")
    assert DiskUsage("/srv/runs", 0, None, {}, 10**9).warning() == ""  # the disk could not say: no guess


def test_the_library_reports_its_runs(tmp_path):
    lib = open_library(tmp_path / "runs")
    config = TrainConfig(data=DataConfig(dataset="synthetic"), model=ModelConfig("mlp", {}), device="cpu")
    run_id = lib.insert_run(config, device="cpu", status="completed", started_by="cli")
    write(lib.run_dir(run_id) / "last.pt", 777)
    usage = lib.disk_usage()
    assert usage.per_run == {run_id: 777} and usage.root == str(lib.root)


def test_size_text_reads_as_a_person_would():
    assert [size_text(n) for n in (0, 12_345_678, 999_999_999, 10**9, 12_345_678_901)] == \
        ["0 MB", "12 MB", "1,000 MB", "1.0 GB", "12.3 GB"]


def test_free_bytes_of_a_folder_not_made_yet_is_its_parents(tmp_path):
    assert free_bytes(tmp_path / "runs" / "not" / "yet") > 0


def test_room_says_whether_queued_checkpoints_fit():
    assert Room(12 * GB, 60 * GB).text() == "Their checkpoints will take about 12.0 GB (60.0 GB free)."
    short = Room(12 * GB, 5 * GB)
    assert not short.fits and short.text() == (
        "Their checkpoints need about 12.0 GB but only 5.0 GB are free on the run library's disk: the later runs "
        "would not start. Delete runs you no longer need first.")
    assert Room(12 * GB, None).fits and Room(12 * GB, None).text() == "Their checkpoints will take about 12.0 GB."


def test_room_for_adds_one_checkpoint_per_run(tmp_path):
    from core.train.memory import estimate_run_memory

    configs = [TrainConfig(data=DataConfig(dataset="synthetic"), model=ModelConfig("mlp", {}), device="cpu"),
               TrainConfig(data=DataConfig(dataset="synthetic"), model=ModelConfig("cnn", {}), device="cpu")]
    room = room_for(configs, tmp_path)
    assert room.need == sum(estimate_run_memory(c, "cpu").checkpoint for c in configs) > 0
    assert room.free is not None and room.free > 0  # (not compared: other processes write meanwhile)


class FullDisk(sqlite3.Connection):
    """A real SQLite connection whose writes fail the way they do on a full disk."""

    error = "database or disk is full"

    def execute(self, sql, *args):
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError(FullDisk.error)
        return super().execute(sql, *args)


@pytest.fixture
def full_library(tmp_path, monkeypatch):
    lib = open_library(tmp_path / "runs")
    config = TrainConfig(data=DataConfig(dataset="synthetic"), model=ModelConfig("mlp", {}), device="cpu")
    run_id = lib.insert_run(config, device="cpu", status="completed", started_by="cli", name="before")
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: real(*a, factory=FullDisk, **kw))
    return lib, run_id


def test_a_write_on_a_full_disk_is_a_lab_error_and_changes_nothing(full_library, monkeypatch):
    lib, run_id = full_library
    with pytest.raises(LabError, match=r"^the disk of the run library is full \(.* free in .*\): nothing was "
                                       r"saved\. Delete runs you no longer need"):
        lib.rename(run_id, "after")
    monkeypatch.undo()
    assert lib.get(run_id).name == "before"


def test_sqlites_io_error_means_a_full_disk_only_when_the_disk_is_nearly_full(full_library, monkeypatch):
    lib, run_id = full_library
    monkeypatch.setattr(FullDisk, "error", "disk I/O error")
    monkeypatch.setattr(store, "free_bytes", lambda root: 10 * 2**20)
    with pytest.raises(LabError, match="the disk of the run library is full"):
        lib.rename(run_id, "after")
    monkeypatch.setattr(store, "free_bytes", lambda root: 50 * 10**9)  # room: a real I/O problem, said as it is
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        lib.rename(run_id, "after")
