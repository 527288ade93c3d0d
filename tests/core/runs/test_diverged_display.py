"""Issue 21, the display side in core: a diverged run's reason, summary and train-again (lr / 10, the owner
rules of resume), a run's size from its config while its record has none, missing values as "—", and the
takeaways and `python -m core runs` that name a diverged run instead of ranking it."""

import os

import pytest

from core.classroom.roles import PermissionDenied, student
from core.cli.main import main
from core.data.loading import dataset_facts
from core.errors import LabError
from core.lessons.presets import preset_config
from core.lessons.takeaways import RunFacts, compare
from core.lessons.verdicts import mark_best
from core.models.catalog import model_size
from core.runs.library import open_library
from core.runs.records import MISSING, diverged_reason, diverged_summary, or_missing
from core.runs.sizes import config_size, run_size
from core.runs.supervisor import HOST

REASON = ("diverged at epoch 1, step 10: loss 3.2e+19 (started at 2.3) - the learning rate (100) is too high: "
          "train again at a tenth of it (10)")


@pytest.fixture
def lib(tmp_path):
    lib = open_library(tmp_path / "runs")
    lib.set_setting("stale_after_s", 3600)
    # the CPU's one slot is taken by a live terminal run: what train_again queues waits instead of training
    lib.insert_run(preset_config("mlp", dataset="synthetic"), device="cpu", status="running", started_by="cli",
                   owner="terminal", pid=os.getpid(), host=HOST, name="stand-in")
    return lib


def diverged_run(lib, **kw):
    config = preset_config("cnn", dataset="synthetic", subset=500, device="cpu", lr=100.0)
    return lib.insert_run(config, device="cpu", status="diverged", started_by="app", preset="cnn", name="too hot",
                          extra={"reason": REASON, "finished": 1.0}, **kw)


def test_a_record_without_sizes_takes_its_configs_and_one_with_them_keeps_its_own(lib):
    config = preset_config("cnn", dataset="cifar10", subset=2000)
    queued = lib.get(lib.insert_run(config, device="cpu", status="queued", started_by="app", preset="cnn"))
    assert queued.params is None and queued.train_size is None
    assert run_size(queued) == (model_size(config, dataset_facts("cifar10").num_classes)[0], 2000)
    assert config_size(preset_config("cnn", dataset="synthetic", subset=125)) == (
        model_size(preset_config("cnn", dataset="synthetic"), 10)[0], 120)  # 12 of each of 10 classes
    assert config_size(preset_config("cnn", dataset="cifar100"))[1] == 50_000
    recorded = lib.get(lib.insert_run(config, device="cpu", status="completed", started_by="app",
                                      extra={"params": 7, "train_size": 11}))
    assert run_size(recorded) == (7, 11)


def test_missing_values_read_as_a_dash_never_none_or_nan():
    assert or_missing(None) == MISSING == "—"
    assert or_missing(float("nan"), ".1%") == MISSING and or_missing(float("inf")) == MISSING
    assert or_missing(2000, ",") == "2,000" and or_missing(0.5, ".1%") == "50.0%"


def test_train_again_queues_a_copy_at_a_tenth_of_the_lr_for_its_owner_only(lib):
    run_id = diverged_run(lib, actor=student("ana"))
    run = lib.get(run_id)
    assert diverged_reason(run) == REASON
    assert diverged_summary(run) == "diverged at step 10: the learning rate (100) is too high"
    with pytest.raises(LabError, match="diverged"):
        lib.resume(run_id)
    with pytest.raises(PermissionDenied):
        lib.train_again(run_id, actor=student("bo"))
    new = lib.get(lib.train_again(run_id, actor=student("ana")))
    assert new.status == "queued" and new.preset == "cnn" and new.by_name == "ana"
    assert new.config.optim.lr == pytest.approx(10.0)
    assert new.config == preset_config("cnn", dataset="synthetic", subset=500, device="cpu", lr=10.0)
    with pytest.raises(LabError, match="not diverged"):
        lib.train_again(new.id)


def test_a_diverged_run_without_a_reason_still_says_what_to_do(lib):
    run = lib.get(lib.insert_run(preset_config("cnn", lr=0.4), device="cpu", status="diverged", started_by="app"))
    assert diverged_reason(run) == ("diverged - the learning rate (0.4) is too high: train again at a tenth of it "
                                    "(0.04)")
    assert diverged_summary(run) == "diverged: the learning rate (0.4) is too high"


def test_a_takeaway_names_a_diverged_run_and_never_makes_it_the_winner():
    hot = RunFacts("lr 0.4", best_test_acc=0.9, status="diverged",
                   diverged="diverged at step 40: the learning rate (0.4) is too high")
    good = RunFacts("lr 0.01", best_test_acc=0.5, test_size=10_000)
    low = RunFacts("lr 0.0003", best_test_acc=0.3, test_size=10_000)
    verdict = compare([hot, good, low], by_design=["lr"])
    assert verdict.winner == "lr 0.01" and verdict.runner_up == "lr 0.0003"
    assert "lr 0.4 diverged at step 40: the learning rate (0.4) is too high" in verdict.text
    assert "lr 0.4" not in verdict.unfinished
    alone = compare([hot])
    assert alone.winner is None and "diverged at step 40" in alone.text
    rows, best = mark_best([{"status": "diverged", "test_acc": 0.9}, {"status": "completed", "test_acc": 0.5}])
    assert best == rows[1] and not rows[0]["is_best"]


def test_cli_runs_lists_a_diverged_run_with_its_reason(lib, capsys):
    run_id = diverged_run(lib)
    assert main(["runs", "--runs-dir", str(lib.root)]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith(run_id)]
    assert "diverged" in row and "completed" not in row
    assert f"{REASON} (`python -m core runs again {run_id}`)" in out
    assert main(["runs", "--runs-dir", str(lib.root), "show", run_id]) == 0
    assert f"status diverged - {REASON}" in capsys.readouterr().out
    assert main(["runs", "--runs-dir", str(lib.root), "again", run_id]) == 0
    assert "at lr 10 (a tenth of run" in capsys.readouterr().out
