"""`python -m core train --estimate` prints a time and records no run; a completed run refines the rate kept in the
library's settings; a run at a far too high learning rate ends diverged and the library says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.runs.library import open_library
from core.train.estimate import SETTING_PREFIX, Rate

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--dataset", "synthetic", "--subset", "200", "--test-subset", "100", "--epochs", "2", "--batch-size", "50",
        "--set", "model.widths=[8,8,8,8]", "--set", "model.fc=32", "--device", "cpu", "--set", "eval_batch_size=100"]


def cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "CIFAR_LAB_DATA": str(tmp_path / "data"),
           "CIFAR_LAB_RUNS": str(tmp_path / "runs")}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def rates(tmp_path: Path) -> dict[str, Rate]:
    lib = open_library(tmp_path / "runs", recover=False)
    with lib.connect() as conn:
        rows = conn.execute("SELECT key, value FROM settings WHERE key LIKE ?", (SETTING_PREFIX + "%",)).fetchall()
    return {k: Rate.from_json(v) for k, v in rows}


def test_estimate_prints_seconds_records_no_run_and_a_completed_run_refines_the_rate(tmp_path):
    out = cli("train", *TINY, "--estimate", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    e = json.loads(lines[0])
    assert e["seconds"] > 0 and e["basis"].startswith("calibrated: ")
    assert open_library(tmp_path / "runs", recover=False).list_runs() == []  # nothing recorded
    (key, calibrated), = rates(tmp_path).items()
    assert calibrated is not None and calibrated.runs == 0

    human = cli("train", *TINY, "--estimate", tmp_path=tmp_path)  # the kept rate: no second calibration
    assert human.returncode == 0 and human.stdout.startswith("≈ ") and "on this CPU (calibrated: " in human.stdout
    assert rates(tmp_path)[key] == calibrated

    run = cli("train", *TINY, "--json", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    refined = rates(tmp_path)[key]
    assert refined is not None and refined.runs == 1 and refined != calibrated
    again = json.loads(cli("train", *TINY, "--estimate", "--json", tmp_path=tmp_path).stdout)
    assert again["basis"].startswith("measured over 1 run: ")


def test_the_cnn_at_lr_100_ends_diverged_early_and_is_listed_so(tmp_path):
    out = cli("train", "--preset", "cnn", "--dataset", "synthetic", "--subset", "1280", "--test-subset", "100",
              "--batch-size", "64", "--epochs", "5", "--lr", "100", "--device", "cpu", "--json", tmp_path=tmp_path)
    assert out.returncode == 1, out.stderr
    last = json.loads(out.stdout.splitlines()[-1])
    assert last["event"] == "finished" and last["status"] == "diverged" and last["epochs_done"] < 5
    assert (last["epoch"], last["step"]) == (1, 10) and last["loss"] > 10  # 20 steps per epoch
    assert last["reason"].startswith("diverged at epoch 1, step 10: loss ")
    (record,) = open_library(tmp_path / "runs", recover=False).list_runs()
    assert record.status == "diverged" and record.reason == last["reason"]
    listed = cli("runs", "--json", tmp_path=tmp_path)
    assert [r["status"] for r in json.loads(listed.stdout)] == ["diverged"]
    resume = cli("runs", "resume", record.id, tmp_path=tmp_path)
    assert resume.returncode != 0 and "a tenth of the LR (10)" in resume.stderr
