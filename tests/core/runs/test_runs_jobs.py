"""Background training through real trainer processes (core/runs/trainer.py) and the CLI, on tiny synthetic runs.

Each trainer process imports torch (seconds on a busy 2-core box), so this file spawns as few as it can:
ten queued runs, one stop/kill/resume chain and one CLI run. Figures of the ten-run test are printed
(`pytest -s` shows them)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.config import DataConfig
from core.runs import trainer
from core.runs.library import open_library
from core.runs.recorder import attach_worker
from tests.fakes import tiny_config as tiny

REPO = Path(__file__).resolve().parents[3]


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    """Poll another process's progress; `timeout` only guards against a hang, it bounds no speed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def logs(lib, run_id) -> str:
    path = lib.run_dir(run_id) / "train.log"
    return path.read_text(errors="replace") if path.exists() else "(no log)"


@pytest.mark.slow
def test_ten_concurrent_submissions_all_complete_one_at_a_time(tmp_path):
    lib = open_library(tmp_path / "runs")
    barrier = threading.Barrier(10)
    ids: list[str] = []
    t0 = time.time()

    def press_start(i):
        barrier.wait()
        ids.append(lib.submit(tiny(epochs=1), name=f"student {i}"))

    threads = [threading.Thread(target=press_start, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r.status for r in lib.list_runs()]
    queued_at_submit = statuses.count("queued")
    max_running, samples = 0, 0
    deadline = time.time() + 600
    while time.time() < deadline:
        runs = lib.list_runs()
        running = sum(r.status == "running" for r in runs)
        max_running, samples = max(max_running, running), samples + 1
        if all(not r.active for r in runs):
            break
        lib.recover()  # what a page does on every poll
        time.sleep(0.2)
    runs = sorted(lib.list_runs(), key=lambda r: r.queue_order or 0)
    completed = sum(r.status == "completed" for r in runs)
    figures = dict(submitted=10, max_running=max_running, queued_at_submit=queued_at_submit, completed=completed,
                   lost=10 - completed, wall_s=round(time.time() - t0, 1), samples=samples,
                   trainer_processes=len({r.pid for r in runs}))
    print(f"\nten concurrent submissions: {figures}")
    failed = {r.id: (r.status, r.reason, logs(lib, r.id)[-800:]) for r in runs if r.status != "completed"}
    assert failed == {}
    assert sorted(ids) == sorted(r.id for r in runs) and len(runs) == 10
    assert (max_running, queued_at_submit) == (1, 9)
    # One at a time, in queue order: each run was claimed only after the previous one had finished.
    ordered = sorted(runs, key=lambda r: r.started)
    assert [r.id for r in ordered] == [r.id for r in runs]
    for before, after in zip(ordered, ordered[1:]):
        assert after.started >= before.finished
    assert all([c.epoch for c in lib.curves(r.id)] == [1] for r in runs)
    assert all(f"run {r.id} " in logs(lib, r.id) and "epoch 1: test accuracy" in logs(lib, r.id) for r in runs)


@pytest.mark.slow
def test_stop_kill_and_resume_give_one_continuous_curve(tmp_path):
    lib = open_library(tmp_path / "runs")
    # Long enough that a stop requested after epoch 1 arrives mid-run even on a fast, idle machine (the stop
    # flag is read every 0.5 s; 8 epochs of 300 images once finished in under a second with CPU bf16).
    epochs = 30
    run_id = lib.submit(tiny(epochs=epochs, data=DataConfig(dataset="synthetic", subset=1000, test_subset=100)),
                        name="stop me")

    # 1) stop from "the app" once an epoch is in: the trainer checkpoints and ends `stopped`
    wait_for(lambda: lib.get(run_id).epochs_done >= 1, 180, "the first epoch\n" + logs(lib, run_id))
    assert lib.request_stop(run_id) == "running"
    run = wait_for(lambda: (r := lib.get(run_id)).status != "running" and r, 60, "the stop")
    assert run.status == "stopped", (run.reason, logs(lib, run_id))
    assert run.reason.startswith("stopped by request at epoch")  # honoured mid-run (below: before the last epoch)
    stopped_at = run.epochs_done
    assert 1 <= stopped_at < epochs and (lib.run_dir(run_id) / "last.pt").is_file()

    # 2) resume; kill the new trainer hard once it has trained a further epoch
    lib.resume(run_id)
    wait_for(lambda: lib.get(run_id).epochs_done > stopped_at, 180, "an epoch after resuming\n" + logs(lib, run_id))
    pid = lib.get(run_id).pid
    assert pid is not None and lib.get(run_id).status == "running"
    os.kill(pid, signal.SIGKILL)
    run = wait_for(lambda: lib.recover(force=True) and lib.get(run_id), 30, "recover() to notice the kill", 0.2)
    assert run.status == "failed"
    assert "trainer process stopped unexpectedly (killed or crashed) at epoch" in run.reason
    assert "last heartbeat" in run.reason
    killed_at = run.epochs_done
    assert [c.epoch for c in lib.curves(run_id)] == list(range(1, killed_at + 1))  # the store is readable

    # 3) a failed run with a checkpoint resumes too, and finishes the same curve
    lib.resume(run_id)
    run = wait_for(lambda: not (r := lib.get(run_id)).active and r, 240, "the end of the run", 0.2)
    assert (run.status, run.reason) == ("completed", ""), logs(lib, run_id)
    curve = lib.curves(run_id)
    assert [c.epoch for c in curve] == list(range(1, epochs + 1))  # each epoch exactly once
    assert run.epochs_done == epochs and run.best_test_acc == max(c.test_acc for c in curve)
    assert run.test_acc == curve[-1].test_acc and len(run.per_class_acc) == 10
    log = logs(lib, run_id)
    assert log.count(f"run {run_id} ") == 3 and log.count("resuming from its checkpoint") == 2


SERVER = r"""
import os, signal, sys
from core.config import DataConfig, ModelConfig, TrainConfig
from core.runs.library import open_library
lib = open_library(sys.argv[1])
model = ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 32})
bad = TrainConfig(data=DataConfig(dataset="folder:/nonexistent/x"), model=model, device="cpu")
good = TrainConfig(data=DataConfig(dataset="synthetic", subset=200, test_subset=100), model=model, batch_size=50,
                   epochs=1, device="cpu")
print(lib.submit(bad, name="bad dataset"), lib.submit(good, name="next in line"), flush=True)
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a server in a terminal has it (nohup or CI may ignore it)
os.killpg(0, signal.SIGHUP)  # the server's terminal closes: its whole process group is hung up
"""


@pytest.mark.slow
def test_trainers_outlive_their_server_and_a_failed_run_hands_over_to_a_fresh_process(tmp_path):
    lib = open_library(tmp_path / "runs")
    server = subprocess.run([sys.executable, "-c", SERVER, str(lib.root)], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                            timeout=120)
    assert server.returncode == -signal.SIGHUP, server.stderr  # the "server" is gone...
    bad, good = server.stdout.split()
    # ...and its trainer goes on: the bad run fails in it, the next run gets a fresh process
    wait_for(lambda: not lib.get(good).active, 240, "both runs\n" + logs(lib, bad) + logs(lib, good), 0.2)
    b, g = lib.get(bad), lib.get(good)
    assert b.status == "failed" and b.reason.startswith("/nonexistent/x does not exist. A folder dataset needs")
    assert g.status == "completed", (g.reason, logs(lib, good))
    assert b.pid != g.pid  # after a failure the queue continues in a fresh process
    assert g.started >= b.finished


@pytest.mark.slow
def test_a_cli_run_is_recorded_live_and_ends_completed(tmp_path):
    root = tmp_path / "runs"
    lib = open_library(root)
    cmd = [sys.executable, "-m", "core", "train", "--preset", "cnn", "--dataset", "synthetic", "--subset", "200",
           "--test-subset", "100", "--epochs", "8", "--batch-size", "50", "--set", "model.widths=[4,4,8,8]",
           "--set", "model.fc=32", "--device", "cpu", "--runs-dir", str(root), "--json", "--name", "from a terminal"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Live means: when the CLI prints epoch 1 (it records each event before printing it), the library already
    # holds that epoch while the run is still running. The process is paused right there (SIGSTOP), so what the
    # library says is read mid-run, without polling races.
    lines = []
    for raw in proc.stdout:
        lines.append(json.loads(raw))
        if lines[-1]["event"] == "epoch" and lines[-1]["epoch"] == 1:
            proc.send_signal(signal.SIGSTOP)
            run_id = lines[-1]["run_id"]
            live, curves = lib.get(run_id), lib.curves(run_id)
            proc.send_signal(signal.SIGCONT)
            break
    rest, err = proc.communicate(timeout=120)
    lines += [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 0, err
    run_ids = {line["run_id"] for line in lines}
    assert run_ids == {run_id} and all("run_id" in line for line in lines)
    assert live.status == "running" and live.epochs_done >= 1, "an epoch should be visible before the process ends"
    assert [c.epoch for c in curves][:1] == [1]
    run = lib.get(run_id)
    assert (run.status, run.started_by, run.preset, run.name) == ("completed", "cli", "cnn", "from a terminal")
    assert run.test_acc == lines[-1]["test_acc"] and lines[-1]["event"] == "finished"
    assert [c.epoch for c in lib.curves(run_id)] == list(range(1, 9))  # 8 epochs: the pause at 1 lands mid-run
    assert [c.test_acc for c in lib.curves(run_id)] == [e["test_acc"] for e in lines if e["event"] == "epoch"]


# ---- the trainer's error handling, in-process (no torch import cost) ------------------------------------

@pytest.fixture
def claimed(tmp_path, monkeypatch):
    lib = open_library(tmp_path / "runs")
    monkeypatch.setattr(lib.supervisor, "spawn", lambda run_id: None)

    def make(config):
        run_id = lib.submit(config)
        return lib, attach_worker(lib, run_id)

    return make


def test_a_setup_error_fails_the_run_with_its_message(claimed):
    lib, rec = claimed(tiny(data=DataConfig(dataset="folder:/nonexistent/x")))
    assert trainer.train_claimed(rec) == "failed"
    rec.close()
    run = lib.get(rec.run_id)
    assert run.status == "failed" and run.reason.startswith("/nonexistent/x does not exist. A folder dataset needs")


def test_an_unexpected_exception_fails_the_run_and_logs_the_traceback(claimed, monkeypatch, capsys):
    from core.train import engine

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
        yield  # a generator, like the engine

    monkeypatch.setattr(engine, "train", broken)
    lib, rec = claimed(tiny())
    assert trainer.train_claimed(rec) == "failed"
    rec.close()
    run = lib.get(rec.run_id)
    assert (run.status, run.reason) == ("failed", "RuntimeError: boom")
    assert "Traceback" in capsys.readouterr().err


def test_a_trainer_for_a_run_that_is_not_claimed_does_nothing(tmp_path, capsys):
    lib = open_library(tmp_path / "runs")
    run_id = lib.insert_run(tiny(), device="cpu", status="stopped", started_by="app")
    assert trainer.main(["--runs-dir", str(lib.root), "--run-id", run_id]) == 0
    assert lib.get(run_id).status == "stopped" and "nothing to do" in capsys.readouterr().err
