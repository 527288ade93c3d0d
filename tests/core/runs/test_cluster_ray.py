"""Runs through a REAL single-node Ray head on 127.0.0.1 (started and shut down here, no mocks): the CLI's run
through the Jobs API end to end, a stop mid-run and a resume from the checkpoint that came back through the
log, a follower killed mid-run and replaced by one that re-attaches to the same job (or finds it finished and
records it in full), and a job that fails before its trainer could report (the run carries the job's own reason).
Skipped, with the reason, where ray is not installed (`pip install -r requirements-cluster.txt`)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.job_submission", reason="ray is not installed: pip install -r requirements-cluster.txt")

from ray.job_submission import JobSubmissionClient  # noqa: E402

from core.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from core.runs.library import open_library  # noqa: E402
from core.runs.supervisor import pid_alive  # noqa: E402
from tests.core.runs.ray_head import RayHead  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
WAIT_S = 240.0  # bound on any one wait; a loaded 2-core CI box starts a job's Python and torch in ~10-30 s


@pytest.fixture(scope="module")
def head():
    h = RayHead(num_cpus=2)
    yield h
    h.stop()


@pytest.fixture
def on_cluster(head, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_RAY", head.address)
    monkeypatch.delenv("CIFAR_LAB_RAY_PYTHON", raising=False)
    return head


def wait_for(what: str, check, timeout: float = WAIT_S, every: float = 0.2):
    """Poll `check` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def tiny(epochs: int) -> TrainConfig:
    return TrainConfig(data=DataConfig(dataset="synthetic", subset=200, test_subset=100),
                       model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 32}), batch_size=50, epochs=epochs,
                       device="cpu")


def log_of(lib, run_id: str) -> str:
    path = lib.run_dir(run_id) / "train.log"
    return path.read_text(errors="replace")[-3000:] if path.is_file() else "(no log)"


def test_the_cli_trains_through_a_ray_job(on_cluster, tmp_path):
    runs = str(tmp_path / "runs")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "core", "train", "--preset", "cnn", "--dataset", "synthetic",
                           "--subset", "200", "--test-subset", "100", "--epochs", "2", "--batch-size", "50",
                           "--set", "model.widths=[4,4,8,8]", "--set", "model.fc=32", "--json", "--runs-dir", runs],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=WAIT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "note" and kinds[1] == "started" and kinds[-1] == "finished"
    assert kinds.count("epoch") == 2
    finished, run_id = events[-1], events[-1]["run_id"]
    assert (finished["status"], finished["epochs_done"]) == ("completed", 2)
    listed = json.loads(subprocess.run([sys.executable, "-m", "core", "runs", "--json", "--runs-dir", runs],
                                       capture_output=True, text=True, env=env, cwd=REPO, timeout=60).stdout)
    (run,) = listed
    assert (run["id"], run["status"], run["backend"], run["cluster"], run["device"], run["epochs_done"]) == (
        run_id, "completed", "ray", on_cluster.address, "ray", 2)
    assert run["job_id"].startswith(f"cifar-lab-{run_id}-")
    assert run["job_id"] in events[0]["message"]
    # Ray saw the same job finish, and the checkpoints came back through its log.
    assert JobSubmissionClient(on_cluster.address).get_job_status(run["job_id"]) == "SUCCEEDED"
    lib = open_library(runs)
    assert [r.epoch for r in lib.curves(run_id)] == [1, 2]
    import torch

    ckpt = torch.load(lib.run_dir(run_id) / "last.pt", map_location="cpu", weights_only=True)
    assert (ckpt["epoch"], len(ckpt["history"])) == (3, 2)  # where a resume would start: after epoch 2
    assert (lib.run_dir(run_id) / "best.pt").is_file()


def test_a_stop_ends_the_job_and_a_resume_continues_from_its_checkpoint(on_cluster, tmp_path):
    lib = open_library(tmp_path / "runs")
    run_id = lib.submit(tiny(epochs=200), preset="cnn")  # far more than we wait for: stopped mid-run
    assert lib.get(run_id).device == "ray"
    first = wait_for("the first epoch on the cluster", lambda: (r := lib.get(run_id)).epochs_done >= 1 and r,)
    assert first.status == "running" and first.backend == "ray", log_of(lib, run_id)
    job_id = first.job_id
    assert lib.request_stop(run_id) == "running"
    stopped = wait_for("the stop", lambda: (r := lib.get(run_id)).status != "running" and r)
    assert stopped.status == "stopped", (stopped.reason, log_of(lib, run_id))
    assert "stopped by request" in stopped.reason
    client = JobSubmissionClient(on_cluster.address)
    wait_for("Ray to mark the job stopped", lambda: client.get_job_status(job_id) == "STOPPED")
    assert (lib.run_dir(run_id) / "last.pt").is_file()  # came back with the `finished` line
    done = stopped.epochs_done
    assert 1 <= done < 200

    lib.resume(run_id)
    resumed = wait_for("the resumed job to train an epoch",
                       lambda: (r := lib.get(run_id)).epochs_done > done or r.status not in ("queued", "running"))
    resumed = lib.get(run_id)
    assert resumed.job_id != job_id and resumed.status == "running", (resumed.reason, log_of(lib, run_id))
    lib.request_stop(run_id)
    final = wait_for("the second stop", lambda: (r := lib.get(run_id)).status != "running" and r)
    assert final.status == "stopped", (final.reason, log_of(lib, run_id))
    epochs = [r.epoch for r in lib.curves(run_id)]
    assert epochs == list(range(1, final.epochs_done + 1))  # one curve, continued, no epoch twice
    wait_for("Ray to mark the resumed job stopped", lambda: client.get_job_status(resumed.job_id) == "STOPPED")


def test_a_follower_that_dies_is_replaced_by_one_that_re_attaches_to_the_same_job(on_cluster, tmp_path):
    lib = open_library(tmp_path / "runs")
    run_id = lib.submit(tiny(epochs=200), preset="cnn")
    first = wait_for("the first epoch on the cluster", lambda: (r := lib.get(run_id)).epochs_done >= 1 and r)
    job_id, follower = first.job_id, first.pid
    os.kill(follower, signal.SIGKILL)  # the lab's machine rebooted, say: the job trains on, nobody reads it
    wait_for("the follower to be gone", lambda: not pid_alive(follower))
    assert lib.recover(force=True) == []  # not failed: queued to re-attach, and a new follower started
    again = wait_for("a new follower", lambda: (r := lib.get(run_id)).pid not in (None, follower) and r)
    assert (again.job_id, again.reattaches) == (job_id, 1), (again.status, again.reason, log_of(lib, run_id))
    seen = wait_for("epochs through the new follower", lambda: (r := lib.get(run_id)).epochs_done > first.epochs_done
                    and not r.reattach_pending and r)
    assert seen.status == "running", (seen.reason, log_of(lib, run_id))
    lib.request_stop(run_id)
    final = wait_for("the stop", lambda: (r := lib.get(run_id)).status != "running" and r)
    assert final.status == "stopped", (final.reason, log_of(lib, run_id))
    assert [r.epoch for r in lib.curves(run_id)] == list(range(1, final.epochs_done + 1))  # read twice, once each
    assert f"re-attached to Ray job {job_id}" in final.messages and (lib.run_dir(run_id) / "last.pt").is_file()
    client = JobSubmissionClient(on_cluster.address)
    assert [j.submission_id for j in client.list_jobs() if (j.metadata or {}).get("cifar_lab_run") == run_id] == \
        [job_id]  # the same job all along: no second one trained beside it
    wait_for("Ray to mark the job stopped", lambda: client.get_job_status(job_id) == "STOPPED")


def test_a_job_that_finished_while_nobody_followed_it_is_recorded_in_full(on_cluster, tmp_path):
    lib = open_library(tmp_path / "runs")
    run_id = lib.submit(tiny(epochs=3), preset="cnn")
    first = wait_for("the first epoch on the cluster", lambda: (r := lib.get(run_id)).epochs_done >= 1 and r)
    os.kill(first.pid, signal.SIGKILL)
    client = JobSubmissionClient(on_cluster.address)
    wait_for("the job to finish on its own", lambda: client.get_job_status(first.job_id) == "SUCCEEDED")
    wait_for("the follower to be gone", lambda: not pid_alive(first.pid))
    assert lib.get(run_id).status == "running"  # nobody has looked yet
    assert lib.recover(force=True) == []
    done = wait_for("the run to end", lambda: (r := lib.get(run_id)).status not in ("queued", "running") and r)
    assert (done.status, done.epochs_done, done.job_id) == ("completed", 3, first.job_id), (done.reason,
                                                                                             log_of(lib, run_id))
    assert [r.epoch for r in lib.curves(run_id)] == [1, 2, 3]
    import torch

    ckpt = torch.load(lib.run_dir(run_id) / "last.pt", map_location="cpu", weights_only=True)
    assert len(ckpt["history"]) == 3  # the final checkpoint, read from the finished job's log


def test_a_job_that_dies_before_reporting_fails_the_run_with_the_jobs_reason(on_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_RAY_PYTHON", "/nonexistent/python")  # the worker cannot even start the trainer
    lib = open_library(tmp_path / "runs")
    run_id = lib.submit(tiny(epochs=1))
    run = wait_for("the run to end", lambda: (r := lib.get(run_id)).status not in ("queued", "running") and r)
    assert run.status == "failed", log_of(lib, run_id)
    assert run.reason.startswith(f"the Ray job {run.job_id} failed: "), run.reason
    assert "exit code 127" in run.reason  # Ray's own words: the shell could not find the command
    assert JobSubmissionClient(on_cluster.address).get_job_status(run.job_id) == "FAILED"
