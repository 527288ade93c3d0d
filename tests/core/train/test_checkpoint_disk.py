"""Checkpoints and the disk: best.pt is last.pt linked (written once), a save that fails leaves no half file
and keeps the last good checkpoint, a full disk is said as such (and the run resumes once there is room), and a
run that cannot fit one checkpoint fails before its first step. The oracle is the files on disk and the
optimizer state torch really keeps."""

import errno
import filecmp
import os

import pytest
import torch

from core.config import DataConfig, OptimConfig
from core.data.loading import load_dataset
from core.errors import LabError
from core.train import engine
from core.train.checkpoint import is_disk_full, keep_as, load_checkpoint
from core.train.files import BEST, LAST, checkpoint_for
from core.train.memory import estimate_run_memory
from tests.fakes import tiny_config


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def test_keep_as_links_and_a_later_save_leaves_the_copy_holding_the_old_file(tmp_path):
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    last.write_bytes(b"epoch 1")
    keep_as(last, best)
    assert best.read_bytes() == b"epoch 1" and os.path.samefile(last, best)  # one file on disk, not two
    tmp = tmp_path / "last.pt.tmp"
    tmp.write_bytes(b"epoch 2")
    os.replace(tmp, last)  # how save_checkpoint writes last.pt
    assert last.read_bytes() == b"epoch 2" and best.read_bytes() == b"epoch 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_keep_as_copies_where_hard_links_are_refused(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "last.pt").write_bytes(b"weights")
    keep_as(tmp_path / "last.pt", tmp_path / "best.pt")
    assert (tmp_path / "best.pt").read_bytes() == b"weights"
    assert not os.path.samefile(tmp_path / "last.pt", tmp_path / "best.pt")


def test_an_improving_run_writes_its_checkpoint_once(synthetic, tmp_path):
    events = list(engine.train(tiny_config(epochs=1), dataset=synthetic, checkpoint_dir=tmp_path))
    assert events[-1].status == "completed"
    assert os.path.samefile(tmp_path / "best.pt", tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / "best.pt")["best_acc"] == events[-1].best_test_acc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no .tmp left behind


@pytest.mark.parametrize("optim", [OptimConfig(name="adam", lr=1e-3), OptimConfig(name="sgd", lr=0.1, momentum=0.9),
                                   OptimConfig(name="sgd", lr=0.1, momentum=0.0)])
def test_the_checkpoint_estimate_is_the_size_of_what_a_saved_run_holds(synthetic, tmp_path, optim):
    config = tiny_config(epochs=1, optim=optim, data=DataConfig(dataset="synthetic", subset=64, test_subset=32))
    list(engine.train(config, dataset=synthetic, checkpoint_dir=tmp_path))
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    weights = sum(t.numel() * t.element_size() for t in saved["model"].values())
    state = sum(t.numel() * t.element_size() for s in saved["optimizer"]["state"].values() for t in s.values()
                if isinstance(t, torch.Tensor) and t.dim() > 0)  # Adam's scalar 'step' is not per weight
    assert estimate_run_memory(config, "cpu").checkpoint == weights + state
    framing = (tmp_path / "last.pt").stat().st_size - (weights + state)  # zip entries, pickle, the history
    assert 0 < framing < 50_000


def test_is_disk_full_knows_oserror_and_torch_save_wording():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed "
                                     "writing file data/3: file write failed"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_a_full_disk_fails_the_run_keeps_epoch_1_and_resume_finishes_it(synthetic, tmp_path, monkeypatch):
    real_save = torch.save
    saves = []

    def save_until_full(obj, f, *a, **kw):
        saves.append(f)
        if len(saves) == 2:  # the end of epoch 2: half a file, then the disk is full
            f.write(b"half")
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save_until_full)
    monkeypatch.setattr(engine, "disk_free", lambda folder: 123_000_000)
    events = list(engine.train(tiny_config(), dataset=synthetic, checkpoint_dir=tmp_path))
    fin = events[-1]
    assert fin.status == "failed" and fin.reason.startswith("the disk is full: a checkpoint could not be written")
    assert f"123 MB free in {tmp_path}" in fin.reason and "python -m core runs delete ID" in fin.reason
    assert "its checkpoint after epoch 1 is kept: resume" in fin.reason  # epoch 2's save is the one that failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # the half file is gone
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2  # epoch 1 done: training resumes at epoch 2

    monkeypatch.setattr(torch, "save", real_save)  # room again
    rest = list(engine.train(tiny_config(), dataset=synthetic, checkpoint_dir=tmp_path, resume=True))
    assert rest[0].start_epoch == 2 and rest[-1].status == "completed" and rest[-1].epochs_done == 2


def test_the_reason_says_there_is_nothing_to_resume_before_the_first_epoch(synthetic, tmp_path, monkeypatch):
    def full(obj, f, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    fin = list(engine.train(tiny_config(epochs=1), dataset=synthetic, checkpoint_dir=tmp_path))[-1]
    assert fin.status == "failed" and "the disk is full" in fin.reason
    assert "it had not finished an epoch, so there is nothing to resume" in fin.reason
    assert list(tmp_path.iterdir()) == []


def test_no_room_for_one_checkpoint_fails_before_the_first_step(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "disk_free", lambda folder: 1_000)
    events = engine.train(tiny_config(), dataset=synthetic, checkpoint_dir=tmp_path)
    with pytest.raises(LabError, match=r"not enough disk space for this run: one checkpoint of cnn takes about "
                                       r"\d[\d,]* MB and 0 MB are free in "):
        next(events)
    assert list(tmp_path.iterdir()) == []
    # without a checkpoint folder nothing is written, so there is nothing to check
    assert list(engine.train(tiny_config(epochs=1), dataset=synthetic))[-1].status == "completed"


def test_the_failed_save_keeps_the_previous_checkpoint_byte_for_byte(synthetic, tmp_path, monkeypatch):
    list(engine.train(tiny_config(epochs=1), dataset=synthetic, checkpoint_dir=tmp_path))
    before = tmp_path / "before.pt"
    before.write_bytes((tmp_path / "last.pt").read_bytes())

    def full(obj, f, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    fin = list(engine.train(tiny_config(epochs=2), dataset=synthetic, checkpoint_dir=tmp_path, resume=True))[-1]
    assert fin.status == "failed" and "its checkpoint after epoch 1 is kept" in fin.reason
    assert filecmp.cmp(before, tmp_path / "last.pt", shallow=False)


@pytest.mark.parametrize("free, expected", [(1_000, "the disk is full: a checkpoint could not be written"),
                                            (10**12, "RuntimeError: basic_ios::clear: iostream error")])
def test_a_save_torch_words_vaguely_is_judged_by_the_free_space(synthetic, tmp_path, monkeypatch, free, expected):
    # what torch.save raised on a real full tmpfs (docs/PERFORMANCE.md, "Disk"): nothing in it says "space"
    def vague(obj, f, *a, **kw):
        raise RuntimeError("basic_ios::clear: iostream error")

    monkeypatch.setattr(torch, "save", vague)
    monkeypatch.setattr(engine, "disk_free", lambda folder: free)
    monkeypatch.setattr(engine, "check_room", lambda run, folder: None)  # the disk filled up after the start
    fin = list(engine.train(tiny_config(epochs=1), dataset=synthetic, checkpoint_dir=tmp_path))[-1]
    assert fin.status == "failed" and fin.reason.startswith(expected)


def test_checkpoint_for_is_best_else_last_and_last_means_the_final_weights(tmp_path):
    assert (LAST, BEST) == ("last.pt", "best.pt")  # the names runs already on disk carry
    assert checkpoint_for(tmp_path) is None and checkpoint_for(tmp_path, "last") is None
    (tmp_path / "last.pt").write_bytes(b"last")
    assert checkpoint_for(tmp_path) == tmp_path / "last.pt"  # no best.pt yet
    (tmp_path / "best.pt").write_bytes(b"best")
    assert checkpoint_for(tmp_path) == tmp_path / "best.pt"
    assert checkpoint_for(tmp_path, "last") == tmp_path / "last.pt"
    with pytest.raises(LabError, match="'best' or 'last'"):
        checkpoint_for(tmp_path, "newest")
