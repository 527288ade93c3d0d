"""`python -m core` end to end: presets, train --json (one JSON object per event, the last one `finished`),
exit codes, and one-line errors without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.main import main
from core.lessons.presets import PRESETS

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--dataset", "synthetic", "--subset", "200", "--test-subset", "100", "--epochs", "1", "--batch-size", "50",
        "--set", "model.widths=[8,8,8,8]", "--set", "model.fc=32", "--device", "cpu"]


def cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "CIFAR_LAB_DATA": str(tmp_path / "data"),
           "CIFAR_LAB_RUNS": str(tmp_path / "runs")}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_presets_lists_every_experiment_with_the_reports_number(capsys):
    assert main(["presets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(PRESETS)
    assert rows["mlp"]["report_acc"] == 0.26 and rows["resnet18-pretrained-aug"]["report_acc"] == 0.83
    # the disk one run's checkpoint takes: the base CNN has no buffers, Adam keeps two moments per weight
    from core.models.catalog import build_for_config
    from core.models.registry import count_params
    cnn = build_for_config(PRESETS["cnn"].config, 100, load_pretrained=False)
    assert rows["cnn"]["checkpoint_bytes"] == 3 * 4 * count_params(cnn)
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "cnn-flip-crop" in out and " checkpoint " in out.splitlines()[0]


def test_train_json_prints_one_event_per_line_and_ends_with_finished(tmp_path):
    out = cli("train", "--preset", "cnn", *TINY, "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[0]["event"] == "started" and events[-1]["event"] == "finished"
    assert {e["event"] for e in events} >= {"started", "step", "epoch", "finished"}
    fin = events[-1]
    assert fin["status"] == "completed" and 0.0 <= fin["test_acc"] <= 1.0
    assert len({e["run_id"] for e in events}) == 1  # every line carries the run's id


@pytest.mark.parametrize("args, words", [
    (["train", "--epochs", "three"], "invalid int value"),
    (["train", "--bogus"], "unrecognized arguments"),
    (["train", "--preset", "nope"], "invalid choice"),
    (["train", "--lr", "-1", "--dataset", "synthetic"], "lr must be a positive number"),
    (["train", "--set", "lrr=1"], "unknown setting 'lrr'"),
])
def test_bad_flags_and_values_exit_2_in_one_line(tmp_path, args, words):
    out = cli(*args, tmp_path=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in out.stderr


def test_a_run_that_cannot_start_or_that_diverges_exits_non_zero(tmp_path):
    missing = cli("train", "--preset", "cnn", "--dataset", "cifar10", "--no-record", tmp_path=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "cifar-10-python.tar.gz" in missing.stderr  # says which archive to put where
    diverged = cli("train", "--preset", "mlp", "--dataset", "synthetic", "--subset", "600", "--test-subset", "100",
                   "--epochs", "3", "--batch-size", "64", "--set", "model.hidden=[32]", "--optimizer", "sgd",
                   "--lr", "100", "--json", "--no-record", tmp_path=tmp_path)
    assert diverged.returncode == 1
    assert json.loads(diverged.stdout.splitlines()[-1])["status"] == "diverged"


@pytest.mark.parametrize("command", [["presets"], ["runs"]])
def test_a_reader_that_closes_early_ends_the_command_quietly(tmp_path, command):
    """`python -m core runs | head -1`: the reader is gone before the command writes its first line (closed
    here before the child even starts Python), and the command ends with the closed pipe's code, no traceback."""
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "CIFAR_LAB_DATA": str(tmp_path / "data"),
           "CIFAR_LAB_RUNS": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-m", "core", *command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader closes early: every write of the command meets a closed pipe
    _, err = proc.communicate(timeout=300)
    assert err.decode() == "" and proc.returncode == 141
