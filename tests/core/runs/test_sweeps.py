"""core/runs/sweeps.py and `python -m core sweep`: grid expansion, validation, queueing, lessons and chart rows."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from core.cli.main import main
from core.cli.sweep import parse_params
from core.config import DataConfig, OptimConfig, get_value, to_dict
from core.data.synthetic import make_synthetic
from core.errors import ConfigError
from core.lessons.presets import preset_config
from core.runs.library import open_library
from core.runs.records import EpochRow
from core.runs.sweeps import (
    accuracy_vs,
    batch_epochs_lesson,
    curve_rows,
    data_size_lesson,
    expand,
    lr_scenario_values,
    lr_scenarios,
    new_sweep_id,
    parse_grid,
    parse_values,
    record_from_run,
    split_values,
    submit_sweep,
    sweep_table,
    swept_keys,
)
from tests.fakes import tiny_config as tiny


class FakeSubmit:
    def __init__(self):
        self.calls = []

    def __call__(self, config, name=None, preset=None, sweep_id=None):
        self.calls.append(dict(config=config, name=name, preset=preset, sweep_id=sweep_id))
        return f"run{len(self.calls)}"


# --- expansion ------------------------------------------------------------------------------------------------

def test_expand_is_the_product_in_key_order_and_applies_each_combination():
    base = tiny()
    pairs = expand(base, {"lr": [1e-4, 1e-3], "batch_size": [25, 50, 100]})
    assert [o for o, _ in pairs] == [{"lr": lr, "batch_size": b} for lr in (1e-4, 1e-3) for b in (25, 50, 100)]
    for overrides, cfg in pairs:
        assert (cfg.optim.lr, cfg.batch_size) == (overrides["lr"], overrides["batch_size"])
        assert cfg.model == base.model and cfg.epochs == base.epochs and cfg.data == base.data
    assert expand(base, {"batch_size": [25, 50], "lr": [1e-4, 1e-3]})[1][0] == {"batch_size": 25, "lr": 1e-3}


def test_expand_accepts_any_override_key():
    pairs = expand(tiny(), {"model.widths": [[4, 4, 8, 8], [8, 8, 16, 16]], "flip_p": [0.0, 0.5],
                            "subset": [100, None], "seed": [0]})
    assert len(pairs) == 8
    last = pairs[-1][1]
    assert last.model.options["widths"] == (8, 8, 16, 16) and last.data.augment.flip_p == 0.5
    assert last.data.subset is None and get_value(last, "model.widths") == (8, 8, 16, 16)


@pytest.mark.parametrize(("grid", "message"), [
    ({}, "at least one setting to vary"),
    ({"lr": 1e-3}, "values for 'lr' must be a non-empty list"),
    ({"lr": []}, "values for 'lr' must be a non-empty list"),
    ({"dataset": "cifar10"}, "values for 'dataset' must be a non-empty list"),
    ({"lr": [1e-3, 0.001]}, "values for 'lr' repeat 0.001"),
    ({"learning_rate": [1e-3]}, "unknown setting 'learning_rate'; known: .*batch_size"),
    ({"lr": [1e-3], "optim.lr": [1e-2]}, "varies 'optim.lr' twice"),
    ({"batch_size": [50, 0]}, r"sweep run 2 of 2 \(batch_size=0\): batch_size must be a whole number"),
    ({"lr": [1e-3, 1e-2], "model.widths": [[8]]}, r"sweep run 1 of 2 \(lr=0.001, model.widths=\[8\]\): "
                                                  r"pool_after=\(2, 4\) names a conv layer past the last one"),
    ({"seed": list(range(11)), "lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
     "would queue 110 runs \\(11 × 10\\); at most 100"),
])
def test_bad_grids_raise_one_config_error_naming_the_problem(grid, message):
    with pytest.raises(ConfigError, match=message):
        expand(tiny(), grid)


def test_a_bad_combination_queues_nothing():
    submit = FakeSubmit()
    with pytest.raises(ConfigError, match="sweep run 3 of 3"):
        submit_sweep(tiny(), {"epochs": [1, 2, 0]}, submit)
    assert submit.calls == []


def test_sweep_ids_are_short_readable_and_unique():
    ids = {new_sweep_id(["lr", "data.augment.flip_p"]) for _ in range(300)}
    assert len(ids) == 300
    assert all(re.fullmatch(r"lr-flip_p-[0-9a-f]{8}", i) for i in ids)
    assert re.fullmatch(r"sweep-[0-9a-f]{8}", new_sweep_id())


def test_submit_sweep_queues_every_combination_under_one_id():
    submit = FakeSubmit()
    sweep_id, run_ids = submit_sweep(tiny(), {"lr": [1e-3, 1e-2], "seed": [0, 1]}, submit, preset="cnn")
    assert run_ids == ["run1", "run2", "run3", "run4"] and sweep_id.startswith("lr-seed-")
    assert {c["sweep_id"] for c in submit.calls} == {sweep_id} and {c["preset"] for c in submit.calls} == {"cnn"}
    assert [c["name"] for c in submit.calls] == ["cnn · lr=0.001, seed=0", "cnn · lr=0.001, seed=1",
                                                 "cnn · lr=0.01, seed=0", "cnn · lr=0.01, seed=1"]
    assert [(c["config"].optim.lr, c["config"].seed) for c in submit.calls] == [(1e-3, 0), (1e-3, 1), (1e-2, 0),
                                                                                (1e-2, 1)]
    _, _ = submit_sweep(tiny(), {"lr": [1e-3]}, submit, name_prefix="", sweep_id="mine")
    assert submit.calls[-1]["name"] == "lr=0.001" and submit.calls[-1]["sweep_id"] == "mine"


@pytest.fixture
def lib(tmp_path, monkeypatch):
    """A run library whose queue claims runs but starts no trainer process."""
    library = open_library(tmp_path / "runs")
    monkeypatch.setattr(library.supervisor, "spawn", lambda run_id: None)
    return library


def test_submit_sweep_into_the_run_library(lib):
    sweep_id, run_ids = submit_sweep(tiny(), {"lr": [1e-3, 1e-2]}, lib.submit, preset="cnn")
    runs = {r.id: r for r in lib.list_runs(sweep_id=sweep_id)}
    assert set(runs) == set(run_ids)
    assert sorted(r.config.optim.lr for r in runs.values()) == [1e-3, 1e-2]
    assert {r.sweep_id for r in runs.values()} == {sweep_id} and {r.preset for r in runs.values()} == {"cnn"}


# --- lessons ----------------------------------------------------------------------------------------------------

def test_lr_scenarios():
    lesson = lr_scenarios(preset_config("cnn"))  # Adam: ÷ 30 and × 100, as the sweeps page queues them
    assert lesson.grid == {"lr": [3.3e-6, 1e-4, 1e-2]} == lr_scenario_values(1e-4, "adam").grid
    assert list(lesson.labels["lr"].values()) == ["too low", "good", "too high"]
    assert "diverged" in lesson.explanation and "×100" in lesson.explanation
    assert lesson.config == preset_config("cnn")
    assert lr_scenarios(preset_config("cnn-sgd")).grid == {"lr": [1.7e-3, 0.05, 1.5]}  # SGD: × 30
    assert lr_scenarios(tiny(), good_lr=10.0).grid["lr"] == [0.33, 10.0, 100.0]  # capped
    assert lr_scenarios(tiny(), good_lr=0.1, factor=1000).grid["lr"] == [0.0033, 0.1, 100.0]
    with pytest.raises(ConfigError, match="good_lr must be a positive number"):
        lr_scenarios(tiny(), good_lr=0)
    assert len(expand(lesson.config, lesson.grid)) == 3


def test_data_size_and_batch_epochs_lessons():
    lesson = data_size_lesson(preset_config("cnn"), 50_000)
    assert lesson.grid == {"subset": [5000, 12500, 25000, 50000]}
    assert lesson.labels["subset"] == {5000: "10%", 12500: "25%", 25000: "50%", 50000: "100%"}
    assert "train-test gap" in lesson.explanation
    with pytest.raises(ConfigError, match="train_size"):
        data_size_lesson(tiny(), 0)
    lesson = batch_epochs_lesson(preset_config("cnn"))
    assert lesson.grid == {"batch_size": [64, 256, 1024], "epochs": [10, 20]}
    assert [o for o, _ in expand(lesson.config, lesson.grid)][:2] == [{"batch_size": 64, "epochs": 10},
                                                                      {"batch_size": 64, "epochs": 20}]
    assert batch_epochs_lesson(tiny(batch_size=32, epochs=1)).grid == {"batch_size": [16, 32, 128], "epochs": [1]}


# --- analysis ---------------------------------------------------------------------------------------------------

def record(lr, test, train, *, batch=50, curves=None, as_dict=False, run_id=None, status="completed"):
    cfg = tiny(optim=OptimConfig(lr=lr), batch_size=batch)
    return {"run_id": run_id or f"r{lr:g}-{batch}", "name": f"lr {lr:g}", "status": status,
            "config": to_dict(cfg) if as_dict else cfg, "test_acc": test, "best_test_acc": test,
            "train_acc": train, "seconds": 10.0, "curves": curves or []}


def test_sweep_table_infers_the_swept_keys_marks_the_best_and_the_gap():
    records = [record(1e-2, 0.05, 0.06), record(1e-4, 0.30, 0.50, as_dict=True), record(1e-3, 0.35, 0.70)]
    assert swept_keys(records) == ["lr"]
    rows = sweep_table(records)
    assert [r["lr"] for r in rows] == [1e-4, 1e-3, 1e-2]  # sorted by the swept value
    assert [r["is_best"] for r in rows] == [False, True, False]
    assert [round(r["gap"], 6) for r in rows] == [0.2, 0.35, 0.01]
    two = [record(1e-3, 0.3, 0.4, batch=25), record(1e-3, 0.2, 0.3, batch=50), record(1e-4, 0.1, None, batch=25)]
    assert swept_keys(two) == ["lr", "batch_size"]  # config order
    assert sweep_table(two)[0]["gap"] is None  # no train accuracy known
    given = [dict(record(1e-3, 0.3, 0.4), overrides={"lr": 1e-3}), dict(record(1e-2, 0.4, 0.4), overrides={"lr": 1e-2})]
    assert swept_keys(given) == ["lr"] and sweep_table(given)[1]["is_best"]


def test_accuracy_vs_labels_rows_for_the_chart_and_train_acc_falls_back_to_the_curve():
    lesson = lr_scenarios(tiny(), good_lr=1e-3)
    lo, good, hi = lesson.grid["lr"]
    records = [record(lo, 0.1, 0.1), record(good, 0.4, 0.6), record(hi, 0.01, None,
                                                                   curves=[{"epoch": 1, "train_acc": 0.02}])]
    rows = accuracy_vs(records, "lr", labels=lesson.labels["lr"])
    assert [(r["label"], r["is_best"]) for r in rows] == [("too low", False), ("good", True), ("too high", False)]
    assert rows[2]["train_acc"] == 0.02 and rows[2]["gap"] == pytest.approx(0.01)
    assert all(r["series"] == "" for r in rows)
    sized = [dict(record(1e-3, 0.2, 0.9), config=tiny(data=DataConfig(dataset="synthetic", subset=50))),
             dict(record(1e-3, 0.3, 0.5), config=tiny(data=DataConfig(dataset="synthetic", subset=None)))]
    rows = accuracy_vs(sized, "subset")
    assert [(r["value"], r["label"]) for r in rows] == [(50, "50"), (None, "all")]
    grid = [record(1e-3, 0.3, 0.4, batch=25), record(1e-4, 0.2, 0.3, batch=50)]
    assert [r["series"] for r in accuracy_vs(grid, "lr")] == ["batch_size=50", "batch_size=25"]


def test_curve_rows_and_records_from_the_run_library():
    epochs = [EpochRow(1, 2.0, 0.2, 2.1, 0.15, 1e-3, 1.0, 100.0), EpochRow(2, 1.5, 0.4, 1.9, 0.25, 1e-3, 1.0, 100.0)]
    run = SimpleNamespace(id="abc", name="cnn · lr=0.001", status="completed", config=tiny(), sweep_id="lr-1",
                          test_acc=0.25, best_test_acc=0.25, seconds=2.0)
    rec = record_from_run(run, epochs)
    assert rec["train_acc"] == 0.4 and rec["curves"][1]["test_acc"] == 0.25 and rec["run_id"] == "abc"
    other = record_from_run(SimpleNamespace(**{**vars(run), "id": "def", "config": tiny(optim=OptimConfig(lr=1e-2))}),
                            epochs[:1])
    rows = curve_rows([rec, other])
    assert [(r["run_id"], r["label"], r["epoch"], r["test_acc"]) for r in rows] == [
        ("abc", "lr=0.0001", 1, 0.15), ("abc", "lr=0.0001", 2, 0.25), ("def", "lr=0.01", 1, 0.15)]


# --- grids written as text (the Sweeps page and the CLI) -----------------------------------------------------------

def test_one_setting_s_values_as_text():
    assert parse_values("lr", " 1e-4, 1e-3 ") == [1e-4, 1e-3]
    assert parse_values("model.widths", "[8, 8], [16, 16]") == [[8, 8], [16, 16]]  # brackets keep their commas
    assert parse_values("optimizer", "adam, sgd") == ["adam", "sgd"]
    assert parse_values("subset", "500, all, none") == [500, None, None]  # every image
    assert parse_values("crop_mode", "all") == ["all"]  # "all" is every image only for a subset
    assert parse_values("batch_size", "64, big") == [64, "big"]  # the setting's own check is expand's
    with pytest.raises(ConfigError, match=r"^lr needs at least one value"):
        parse_values("lr", "  ")
    for text in ("1e-4,,1e-3", "1e-4, 1e-3,", ", 1"):
        with pytest.raises(ConfigError, match=r"has an empty value \(two commas in a row, or a trailing comma\?\)"):
            parse_values("lr", text)


def test_a_grid_as_text_and_what_expanding_it_says_of_a_bad_value():
    grid = parse_grid(["lr=1e-4,1e-3", "batch_size=64,big"])
    assert grid == {"lr": [1e-4, 1e-3], "batch_size": [64, "big"]}
    with pytest.raises(ConfigError, match=r"batch_size must be a whole number .*got 'big'"):
        expand(tiny(), grid)
    with pytest.raises(ConfigError, match="is written KEY=VALUE1,VALUE2"):
        parse_grid(["lr"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["lr=1", "lr=2"])


# --- the CLI ----------------------------------------------------------------------------------------------------

def test_param_parsing():
    assert split_values("1e-4,1e-3") == ["1e-4", "1e-3"]
    assert split_values("[32,32],[64,64]") == ["[32,32]", "[64,64]"]
    assert split_values('"a,b",c') == ['"a,b"', "c"]
    assert parse_params(["lr=1e-4,1e-3", "model.widths=[8,8],[16,16]", "flip_p=0,0.5", "subset=none,100",
                         "crop_mode=zero,reflect"]) == {
        "lr": [1e-4, 1e-3], "model.widths": [[8, 8], [16, 16]], "flip_p": [0, 0.5], "subset": [None, 100],
        "crop_mode": ["zero", "reflect"]}
    for bad, message in [("lr", "^--param: .* KEY=VALUE1,VALUE2"), ("=1,2", "KEY="), ("lr=", "lr needs at least one"),
                         ("lr=1,,2", "empty value")]:
        with pytest.raises(ConfigError, match=message):
            parse_params([bad])
    with pytest.raises(ConfigError, match="given twice"):
        parse_params(["lr=1", "lr=2"])


def test_cli_dry_run_prints_the_grid_without_a_library(tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    assert main(["sweep", "--preset", "cnn", "--param", "lr=1e-4,1e-3", "--param", "batch_size=128,256",
                 "--dry-run", "--json", "--runs-dir", str(runs_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sweep_id"] is None and [r["overrides"] for r in out["runs"]] == [
        {"lr": 1e-4, "batch_size": 128}, {"lr": 1e-4, "batch_size": 256},
        {"lr": 1e-3, "batch_size": 128}, {"lr": 1e-3, "batch_size": 256}]
    assert not runs_dir.exists()
    assert main(["sweep", "--lesson", "lr", "--lr", "0.01", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == ["3 run(s) (dry run, nothing queued):", "    1  lr=0.00033",
                                                    "    2  lr=0.01", "    3  lr=1"]  # the page's Adam × 100
    assert main(["sweep", "--lesson", "data-size", "--subset", "1000", "--param", "seed=0,1", "--dry-run",
                 "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 8
    # without --subset or --train-size the dataset's own training split (synthetic: 10 classes x 500) is 100%
    assert main(["sweep", "--lesson", "data-size", "--dataset", "synthetic", "--dry-run", "--json"]) == 0
    subsets = [r["overrides"]["subset"] for r in json.loads(capsys.readouterr().out)["runs"]]
    assert max(subsets) == 5000 == len(make_synthetic().train_y)


@pytest.mark.parametrize(("argv", "message"), [
    (["--param", "lr"], "--param: a swept setting is written KEY=VALUE1,VALUE2"),
    ([], "nothing to sweep"),
    (["--param", "lr=1e-3,-1"], r"sweep run 2 of 2 \(lr=-1\): lr must be a positive number"),
])
def test_cli_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert main(["sweep", "--dry-run", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err)


def test_cli_queues_the_runs_in_the_library(lib, capsys):
    argv = ["sweep", "--preset", "cnn", "--dataset", "synthetic", "--subset", "200", "--epochs", "1",
            "--device", "cpu", "--set", "model.widths=[4,4,8,8]", "--param", "lr=1e-3,1e-2", "--runs-dir",
            str(lib.root)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    runs = {r.id: r for r in lib.list_runs(sweep_id=out["sweep_id"])}
    assert set(runs) == {r["run_id"] for r in out["runs"]}
    for item in out["runs"]:
        run = runs[item["run_id"]]
        assert run.config.optim.lr == item["overrides"]["lr"] and run.started_by == "cli" and run.preset == "cnn"
        assert run.config.model.options["widths"] == (4, 4, 8, 8) and run.name.startswith("cnn · lr=")
    assert main([*argv, "--name", "demo"]) == 0
    captured = capsys.readouterr()
    sweep_id = re.match(r"sweep (\S+): 2 run\(s\) queued", captured.out).group(1)
    assert f"python -m core runs --sweep {sweep_id}" in captured.err
    assert sorted(r.name for r in lib.list_runs(sweep_id=sweep_id)) == ["demo · lr=0.001", "demo · lr=0.01"]


# --- sweep --wait -----------------------------------------------------------------------------------------------

class FakeRuns:
    """A library whose runs move queued -> running -> completed, one step per poll (no processes, no clock)."""

    def __init__(self, timeline):
        self.timeline, self.polls, self.recovered = timeline, 0, 0

    def recover(self, force=False):
        self.recovered += 1

    def find(self, run_id):
        status = self.timeline[run_id][min(self.polls, len(self.timeline[run_id]) - 1)]
        return SimpleNamespace(id=run_id, name=run_id, status=status, active=status in ("queued", "running"),
                               progress=None, epochs_done=0, epochs=2)


def test_wait_for_returns_only_when_no_run_is_queued_or_running():
    from core.cli.sweep import wait_for

    lib = FakeRuns({"a": ["running", "completed"], "b": ["queued", "queued", "running", "diverged"]})
    seen, sleeps = [], []

    def sleep(s):
        sleeps.append(s)
        lib.polls += 1

    runs = wait_for(lib, ["a", "b"], on_update=lambda rs: seen.append([r.status for r in rs]), sleep=sleep, poll_s=0.5)
    assert [r.status for r in runs] == ["completed", "diverged"]
    assert seen == [["running", "queued"], ["completed", "queued"], ["completed", "running"],
                    ["completed", "diverged"]]
    assert sleeps == [0.5, 0.5, 0.5] and lib.recovered == 4  # crash recovery at every poll: no endless wait


def test_progress_lines_on_a_pipe_write_a_line_per_ended_run():
    import io

    from core.cli.sweep import ProgressLines

    out = io.StringIO()
    show = ProgressLines(out).show
    mk = lambda s: SimpleNamespace(name="r", status=s, active=s in ("queued", "running"), progress=None,  # noqa: E731
                                   epochs_done=0, epochs=2)
    for states in (["running", "queued"], ["running", "queued"], ["completed", "running"], ["completed", "failed"]):
        show([mk(s) for s in states])
    assert out.getvalue().splitlines() == ["0/2 ended · r: epoch 1/2 · 1 queued", "1/2 ended · r: epoch 1/2",
                                           "2/2 ended"]


def test_cli_sweep_wait_returns_when_every_run_has_ended(tmp_path, capsys):
    """The must-show: `sweep --preset cnn --dataset synthetic --epochs 2 --param lr=1e-5,1e-3,1e1 --wait`, with a
    tiny network and subset so real trainer processes finish in seconds. 1e1 diverges: a result, exit 0."""
    runs_dir = tmp_path / "runs"
    argv = ["sweep", "--preset", "cnn", "--dataset", "synthetic", "--epochs", "2", "--param", "lr=1e-5,1e-3,1e1",
            "--subset", "200", "--test-subset", "100", "--device", "cpu", "--set", "model.widths=[4,4,8,8]",
            "--set", "model.fc=32", "--runs-dir", str(runs_dir), "--wait", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["runs"]) == 3
    runs = open_library(runs_dir).list_runs(sweep_id=out["sweep_id"])
    assert len(runs) == 3 and not [r for r in runs if r.active]  # none left queued or running
    by_lr = {r.config.optim.lr: r.status for r in runs}
    assert by_lr[1e-5] == "completed" and by_lr[1e-3] == "completed" and by_lr[10.0] in ("diverged", "completed")
    assert {r["run_id"]: r["status"] for r in out["runs"]} == {r.id: r.status for r in runs}


def test_cli_sweep_wait_exits_1_when_a_run_failed(tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    argv = ["sweep", "--preset", "cnn", "--dataset", f"folder:{tmp_path / 'no-such-folder'}", "--epochs", "1",
            "--param", "seed=0", "--device", "cpu", "--set", "model.widths=[4,4,8,8]", "--runs-dir", str(runs_dir),
            "--wait"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "1 of 1 run(s) did not finish" in captured.err and captured.out.count(" failed ") == 1
    assert {r.status for r in open_library(runs_dir).list_runs()} == {"failed"}
