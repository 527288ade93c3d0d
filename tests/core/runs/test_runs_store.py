"""The run library without trainer processes: storage round trips, concurrent writers, schema versions, the
queue's claiming rules, stop/resume bookkeeping, crash recovery, export/import and its errors, the runs CLI."""

import io
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.cli.main import main as cli_main
from core.config import to_json
from core.errors import LabError
from core.runs import recorder as runs_recorder
from core.runs import store as runs_store
from core.runs.library import RunLibrary, open_library, runs_root
from core.runs.recorder import Recorder, cli_recorder
from core.runs.records import EpochRow
from core.runs.scheduler import claim_terminal
from core.runs.supervisor import pid_alive
from core.runs.transfer import export_run, import_run
from core.train import events as ev
from tests.fakes import tiny_config as tiny

REPO = Path(__file__).resolve().parents[3]


def epoch_event(e: int, acc: float) -> ev.EpochEnd:
    return ev.EpochEnd(epoch=e, train_loss=2.0 / e, train_acc=acc / 2, test_loss=2.5 / e, test_acc=acc, lr=0.01 * e,
                       seconds=1.5, images_per_s=1000.0 + e)


def record_whole_run(lib: RunLibrary, run_id: str, accs: list[float], *, start: int = 1, status: str = "completed",
                     per_class=(0.5, float("nan"), 1.0)) -> None:
    """Feed a plausible event stream for a claimed run through a Recorder, as a trainer would."""
    rec = Recorder(lib, run_id)
    rec.record(ev.RunStarted(params=1234, trainable_params=1000, device="cpu", dataset="synthetic", model="cnn",
                             train_size=200, test_size=100, num_classes=3, steps_per_epoch=4, epochs=len(accs),
                             start_epoch=start))
    for i, acc in enumerate(accs[start - 1:], start=start):
        for s in range(4):
            rec.record(ev.Step(epoch=i, step=(i - 1) * 4 + s + 1, total_steps=4 * len(accs), loss=1.0, lr=0.1,
                               images_per_s=500.0))
        rec.record(epoch_event(i, acc))
    rec.record(ev.Note("torch.compile fell back"))
    rec.record(ev.Finished(status=status, reason="" if status == "completed" else "why", test_acc=accs[-1],
                           best_test_acc=max(accs), epochs_done=len(accs), seconds=3.0, per_class_acc=per_class))


def claimed_run(lib: RunLibrary, config=None, **kw) -> str:
    run_id = lib.insert_run(config or tiny(), device="cpu", status="queued", started_by="app", **kw)
    assert lib.kick("cpu") == [run_id]
    return run_id


# ---- storage ------------------------------------------------------------------------------------------

def test_runs_root_follows_override_then_env_then_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_RUNS", str(tmp_path / "env"))
    assert runs_root() == tmp_path / "env"
    assert runs_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("CIFAR_LAB_RUNS")
    monkeypatch.chdir(tmp_path)
    assert runs_root() == tmp_path / "runs"


def test_round_trip_of_a_recorded_run(lib):
    config = tiny(epochs=3)
    run_id = claimed_run(lib, config, name="my run", preset="cnn", sweep_id="sw1")
    record_whole_run(lib, run_id, [0.2, 0.5, 0.4])
    run = lib.get(run_id)
    assert run.config == config and run.name == "my run" and run.preset == "cnn" and run.sweep_id == "sw1"
    assert (run.status, run.reason, run.started_by, run.device, run.dataset) == ("completed", "", "app", "cpu",
                                                                                  "synthetic")
    assert run.test_acc == 0.4 and run.best_test_acc == 0.5 and run.epochs_done == 3 and run.params == 1234
    assert run.per_class_acc[0] == 0.5 and math.isnan(run.per_class_acc[1]) and run.per_class_acc[2] == 1.0
    assert run.messages == "torch.compile fell back\n" and run.seconds == 3.0
    assert run.started is not None and run.finished >= run.started >= run.created
    assert run.progress.step == 12 and run.progress.total_steps == 12 and run.progress.epoch == 3
    assert [c.epoch for c in lib.curves(run_id)] == [1, 2, 3]
    assert lib.curves(run_id)[1] == EpochRow(2, 1.0, 0.25, 1.25, 0.5, 0.02, 1.5, 1002.0)
    json.dumps(run.to_dict(), allow_nan=False)  # plain JSON for the pages


def test_queries_filter_sort_and_pick_the_best_run_per_preset(lib):
    a = claimed_run(lib, preset="cnn")
    record_whole_run(lib, a, [0.3, 0.4])
    b = claimed_run(lib, preset="cnn")
    record_whole_run(lib, b, [0.5, 0.6])
    c = claimed_run(lib, preset="mlp", sweep_id="s")
    record_whole_run(lib, c, [0.1, 0.2], status="stopped")
    d = lib.insert_run(tiny(), device="cpu", status="queued", started_by="app", preset="mlp")
    assert [r.id for r in lib.list_runs()] == [d, c, b, a]  # newest first
    assert [r.id for r in lib.list_runs(preset="cnn")] == [b, a]
    assert [r.id for r in lib.list_runs(status=("stopped", "queued"))] == [d, c]
    assert [r.id for r in lib.list_runs(sweep_id="s")] == [c]
    assert {p: r.id for p, r in lib.best_per_preset().items()} == {"cnn": b}
    assert list(lib.compare([a, b])) == [a, b] and lib.compare([a, b])[b][-1].test_acc == 0.6
    with pytest.raises(LabError, match="unknown status bogus"):
        lib.list_runs(status="bogus")


def test_rename_annotate_and_delete_with_its_files(lib):
    run_id = claimed_run(lib)
    record_whole_run(lib, run_id, [0.3, 0.4])
    (lib.run_dir(run_id) / "last.pt").parent.mkdir(parents=True, exist_ok=True)
    (lib.run_dir(run_id) / "last.pt").write_bytes(b"x")
    lib.rename(run_id, "  better  ")
    lib.annotate(run_id, tags="baseline", notes="first try")
    run = lib.get(run_id)
    assert (run.name, run.tags, run.notes) == ("better", "baseline", "first try")
    with pytest.raises(LabError, match="cannot be empty"):
        lib.rename(run_id, " ")
    lib.delete(run_id)
    assert lib.find(run_id) is None and not lib.run_dir(run_id).exists()
    with sqlite3.connect(lib.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0


def test_unknown_run_ids_are_clear_lab_errors(lib):
    for call in (lambda: lib.get("nope"), lambda: lib.curves("nope"), lambda: lib.rename("nope", "x"),
                 lambda: lib.delete("nope"), lambda: lib.request_stop("nope"), lambda: lib.resume("nope"),
                 lambda: export_run(lib, "nope"), lambda: lib.queue_position("nope")):
        with pytest.raises(LabError, match="no run with id 'nope'"):
            call()


def write_runs(root: str, n: int, name: str) -> None:
    """n runs of 20 epochs each, recorded as fast as possible (used in threads and in child processes)."""
    lib = open_library(root, recover=False)
    (Path(root) / f"ready-{name}").touch()  # imported and connected: the parent says go when everyone is
    while not (Path(root) / "go").exists():  # start together, so the writes really overlap
        time.sleep(0.01)
    for _ in range(n):
        run_id = lib.insert_run(tiny(), device="cpu", status="running", started_by="cli", owner="terminal", name=name)
        rec = Recorder(lib, run_id)
        for e in range(1, 21):
            for s in range(5):
                rec.record(ev.Step(epoch=e, step=(e - 1) * 5 + s + 1, total_steps=100, loss=1.0, lr=0.1,
                                   images_per_s=9.0))
            rec.record(ev.EpochEnd(epoch=e, train_loss=1.0, train_acc=e / 100, test_loss=1.0, test_acc=e / 100,
                                   lr=0.1, seconds=1.0, images_per_s=9.0))
            rec.record(ev.Note(f"note {e}"))
        rec.record(ev.Finished(status="completed", reason="", test_acc=0.2, best_test_acc=0.2, epochs_done=20,
                               seconds=1.0))


def test_concurrent_writers_in_threads_and_processes_lose_nothing(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()  # the library itself is created by whichever writer comes first
    monkeypatch.setattr(runs_recorder, "PROGRESS_EVERY_S", 0.0)  # every Step is a write: maximum contention
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNS_TEST_EVERY_STEP": "1"}
    procs = [subprocess.Popen([sys.executable, __file__, str(root), "1", f"proc{i}"], env=env, cwd=REPO)
             for i in range(3)]
    errors = []

    def write(i):
        try:
            write_runs(str(root), 1, f"thread{i}")
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    names = [f"proc{i}" for i in range(3)] + [f"thread{i}" for i in range(4)]
    while not all((root / f"ready-{n}").exists() for n in names):  # every writer has imported and connected
        assert all(p.poll() is None for p in procs), "a writer process died before it was ready"
        time.sleep(0.01)
    (root / "go").touch()
    for t in threads:
        t.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert errors == []
    lib = open_library(root)
    runs = lib.list_runs()
    assert sorted(r.name for r in runs) == sorted([f"proc{i}" for i in range(3)] + [f"thread{i}" for i in range(4)])
    for run in runs:
        assert run.status == "completed" and run.epochs_done == 20 and run.best_test_acc == 0.2
        assert [c.epoch for c in lib.curves(run.id)] == list(range(1, 21))
        assert [c.test_acc for c in lib.curves(run.id)] == [e / 100 for e in range(1, 21)]
        assert run.messages.splitlines() == [f"note {e}" for e in range(1, 21)]
        assert run.progress.step == 100


# ---- schema versions ----------------------------------------------------------------------------------

def test_a_library_from_a_newer_version_is_refused(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    with sqlite3.connect(root / "lab.db") as conn:
        conn.execute(f"PRAGMA user_version = {runs_store.SCHEMA_VERSION + 1}")
    with pytest.raises(LabError, match=r"newer CIFAR Lab .*upgrade CIFAR Lab, or choose another runs folder"):
        open_library(root)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "lab.db").write_bytes(b"these are my holiday photos, not a database" * 100)
    with pytest.raises(LabError, match="is not a CIFAR Lab run library .* choose another runs folder"):
        open_library(root)


def test_a_version_1_library_is_migrated_in_place(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    conn = sqlite3.connect(root / "lab.db", isolation_level=None)
    for statement in runs_store._statements(runs_store.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO settings VALUES ('max_per_device', '1'), ('stale_after_s', '20')")
    conn.execute("INSERT INTO runs (id, name, config, dataset, model, device, status, created, epochs_done, test_acc) "
                 "VALUES ('old1', 'from v1', ?, 'synthetic', 'cnn', 'cpu', 'completed', 1.0, 1, 0.3)",
                 (to_json(tiny()),))
    conn.execute("INSERT INTO epochs (run_id, epoch, test_acc) VALUES ('old1', 1, 0.3)")
    conn.close()
    lib = open_library(root)
    with sqlite3.connect(root / "lab.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == runs_store.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    run = lib.get("old1")
    assert (run.name, run.test_acc, run.sweep_id, run.per_class_acc, run.config) == ("from v1", 0.3, None, (), tiny())
    lib.annotate("old1", tags="v2 column")
    assert lib.get("old1").tags == "v2 column"


def test_a_library_deleted_by_hand_is_recreated_empty(lib):
    claimed_run(lib)
    for name in ("lab.db", "lab.db-wal", "lab.db-shm"):
        (lib.root / name).unlink(missing_ok=True)
    assert lib.list_runs() == []


# ---- the queue ----------------------------------------------------------------------------------------

def test_ten_simultaneous_submits_claim_one_slot(lib):
    barrier = threading.Barrier(10)
    ids = []

    def press_start(i):
        barrier.wait()
        ids.append(lib.submit(tiny(), name=f"s{i}"))

    threads = [threading.Thread(target=press_start, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = lib.list_runs()
    assert len(runs) == 10 and sorted(ids) == sorted(r.id for r in runs)
    assert sum(r.status == "running" for r in runs) == 1 and len(lib.spawned) == 1
    queued = sorted((r for r in runs if r.status == "queued"), key=lambda r: r.queue_order)
    assert [lib.queue_position(r.id) for r in queued] == list(range(9))
    assert lib.queue_position(lib.spawned[0]) is None and lib.device_load("cpu") == (1, 9)
    # finishing the running one starts exactly the next in line, and so on
    for expected in [r.id for r in queued[:3]]:
        rec = Recorder(lib, lib.spawned[-1])
        rec.record(ev.Finished(status="completed", reason="", test_acc=None, best_test_acc=None, epochs_done=0,
                               seconds=0.1))
        rec.close()
        assert lib.spawned[-1] == expected and lib.get(expected).status == "running"
    assert sum(r.status == "running" for r in lib.list_runs()) == 1


def test_max_per_device_is_a_shared_setting(lib):
    lib.set_max_per_device(2)
    ids = [lib.insert_run(tiny(), device="cpu", status="queued", started_by="app") for _ in range(3)]
    lib.kick()
    assert lib.spawned == ids[:2]
    assert RunLibrary(lib.root).max_per_device == 2  # another process sees the same limit
    with pytest.raises(LabError, match="whole number >= 1"):
        lib.set_max_per_device(0)


def test_workers_never_claim_a_terminal_run_and_the_terminal_waits_its_turn(lib):
    first = claimed_run(lib)
    cli = lib.insert_run(tiny(), device="cpu", status="queued", started_by="cli", owner="terminal", pid=os.getpid())
    app = lib.insert_run(tiny(), device="cpu", status="queued", started_by="app")
    assert claim_terminal(lib.store, cli) is None  # the slot is taken
    Recorder(lib, first).finish("completed", "")
    assert lib.kick() == []  # the terminal run is at the head: workers leave it alone
    assert claim_terminal(lib.store, cli) == "running" and lib.get(cli).status == "running"
    assert lib.get(app).status == "queued" and lib.queue_position(app) == 0
    assert Recorder(lib, app).should_stop() is True  # not running: a stray trainer would stop at once


def test_a_terminal_run_waits_for_its_slot_then_runs(lib):
    worker = claimed_run(lib)
    out, result = io.StringIO(), {}
    thread = threading.Thread(target=lambda: result.update(rec=cli_recorder(tiny(), lib.root, "cli", preset="cnn",
                                                                             poll_s=0.05, out=out)))
    thread.start()
    wait = time.time() + 20
    while "waiting" not in out.getvalue() and time.time() < wait:
        time.sleep(0.05)
    (cli,) = lib.list_runs(started_by="cli")
    assert out.getvalue() == f"waiting: 1 run(s) ahead on cpu (run {cli.id})\n"
    assert (cli.status, cli.owner, cli.pid, cli.preset) == ("queued", "terminal", os.getpid(), "cnn")
    Recorder(lib, worker).finish("completed", "")
    thread.join(timeout=20)
    rec = result["rec"]
    assert rec.run_id == cli.id and lib.get(cli.id).status == "running" and rec.should_stop() is False
    rec.abort(KeyboardInterrupt())
    rec.close()
    assert (lib.get(cli.id).status, lib.get(cli.id).reason) == ("stopped", "interrupted from the terminal")


def test_a_terminal_run_stopped_from_the_app_while_waiting_is_a_lab_error(lib):
    claimed_run(lib)
    errors = []

    def wait_in_line():
        try:
            cli_recorder(tiny(), lib.root, poll_s=0.05, out=io.StringIO())
        except LabError as e:
            errors.append(str(e))

    thread = threading.Thread(target=wait_in_line)
    thread.start()
    deadline = time.time() + 20
    while not lib.list_runs(started_by="cli") and time.time() < deadline:
        time.sleep(0.05)
    (cli,) = lib.list_runs(started_by="cli")
    assert lib.request_stop(cli.id) == "stopped"
    thread.join(timeout=20)
    assert errors == [f"run {cli.id} was stopped before it started (from the app or `python -m core runs`)"]


def test_stopping_a_queued_run_is_immediate_and_a_running_one_is_asked(lib):
    running = claimed_run(lib)
    queued = lib.insert_run(tiny(), device="cpu", status="queued", started_by="app")
    now = [100.0]  # a fake monotonic clock, in seconds
    rec = Recorder(lib, running, clock=lambda: now[0])
    assert rec.should_stop() is False
    assert lib.request_stop(queued) == "stopped"
    q = lib.get(queued)
    assert (q.status, q.reason, lib.queue_position(queued)) == ("stopped", "stopped before it started", None)
    assert lib.request_stop(running) == "running"
    now[0] += runs_recorder.STOP_POLL_S / 2
    assert rec.should_stop() is False  # the store is read at most every STOP_POLL_S: the answer is still cached
    now[0] += runs_recorder.STOP_POLL_S / 2
    assert rec.should_stop() is True


def test_resume_rules(lib):
    failed_at_setup = claimed_run(lib)
    Recorder(lib, failed_at_setup).finish("failed", "no image files in /x/train/cat: expected *.jpg")
    reason = lib.can_resume(lib.get(failed_at_setup))  # nothing to continue, and it would fail the same way
    assert "failed before training started (no image files in /x/train/cat: expected *.jpg)" in reason
    with pytest.raises(LabError, match="nothing to continue; fix that and start a new run"):
        lib.resume(failed_at_setup)
    never_trained = claimed_run(lib)
    lib.request_stop(never_trained)
    Recorder(lib, never_trained).finish("stopped", "stopped before training started")
    assert lib.can_resume(lib.get(never_trained)) == ""
    lib.resume(never_trained)  # nothing to lose: it starts over, without a checkpoint
    assert lib.get(never_trained).status == "running" and not lib.get(never_trained).resume_requested
    Recorder(lib, never_trained).finish("completed", "")
    with pytest.raises(LabError, match="already completed"):
        lib.resume(never_trained)

    assert "already completed" in lib.can_resume(lib.get(never_trained))
    trained = claimed_run(lib)
    record_whole_run(lib, trained, [0.1, 0.2], status="stopped")
    assert "checkpoint is missing" in lib.can_resume(lib.get(trained))
    with pytest.raises(LabError, match=r"cannot resume run .*: its folder .* was deleted"):
        lib.resume(trained)
    lib.run_dir(trained).mkdir(parents=True)
    with pytest.raises(LabError, match=r"its checkpoint .*last.pt is missing"):
        lib.resume(trained)
    (lib.run_dir(trained) / "last.pt").write_bytes(b"x")
    assert lib.can_resume(lib.get(trained)) == ""
    lib.resume(trained)
    run = lib.get(trained)
    assert run.status == "running" and run.resume_requested and run.reason == ""
    with pytest.raises(LabError, match="already running"):
        lib.resume(trained)


# ---- crash recovery -----------------------------------------------------------------------------------

def test_pid_alive_sees_dead_and_zombie_processes():
    assert pid_alive(os.getpid())
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert not pid_alive(done.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 20
    while time.time() < deadline and Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.05)
    assert not pid_alive(zombie.pid)  # exited but not reaped: a zombie is dead
    zombie.wait()


def test_a_ray_run_whose_follower_died_is_queued_to_re_attach_to_its_job_three_times_then_failed(lib):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    local = claimed_run(lib)
    ray_run = lib.insert_run(tiny(), device="ray", status="queued", started_by="app")
    assert lib.kick("ray") == [ray_run]

    def dies(stop=False):  # the follower submitted job J, then was killed (a stop asked just before, maybe)
        with sqlite3.connect(lib.db_path) as conn:
            conn.execute("UPDATE runs SET status = 'running', pid = ?, backend = 'ray', job_id = 'J', "
                         "stop_requested = ? WHERE id = ?", (dead.pid, int(stop), ray_run))
            conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, local))

    dies(stop=True)
    assert lib.recover(force=True) == [local]  # a local run's training died with its process; the job did not
    run = lib.get(ray_run)
    assert (run.status, run.reattach_pending, run.reattaches, run.job_id) == ("running", True, 1, "J")
    assert lib.spawned[-1] == ray_run and run.stop_requested  # a new follower, and the stop still stands
    assert "the process following Ray job J stopped; a new one re-attaches to the job" in run.messages
    for n in (2, 3):
        dies()
        lib.recover(force=True)
        assert lib.get(ray_run).reattaches == n and lib.get(ray_run).status == "running"
    dies()
    assert lib.recover(force=True) == [ray_run]  # a follower that keeps dying is shown, not hidden
    run = lib.get(ray_run)
    assert run.status == "failed" and "re-attached 3 times already" in run.reason
    assert "ray job stop J" in run.reason
    with sqlite3.connect(lib.db_path) as conn:  # as if the last re-attach had failed ("cannot re-attach ...")
        conn.execute("UPDATE runs SET reattach_pending = 1, epochs_done = 1 WHERE id = ?", (ray_run,))
    (lib.run_dir(ray_run)).mkdir(parents=True, exist_ok=True)
    (lib.run_dir(ray_run) / "last.pt").write_bytes(b"checkpoint")
    lib.resume(ray_run)  # a resume is a new job from the checkpoint, never a re-attach to the old one
    run = lib.get(ray_run)
    assert run.resume_requested and not run.reattach_pending


def test_recover_fails_dead_or_silent_runs_and_starts_the_next(lib):
    lib.set_max_per_device(3)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    a, b, c = (claimed_run(lib) for _ in range(3))
    with sqlite3.connect(lib.db_path) as conn:
        conn.execute("UPDATE runs SET pid = ?, epoch = 3 WHERE id = ?", (dead.pid, a))
        conn.execute("UPDATE runs SET pid = NULL, heartbeat = ?, epoch = 2 WHERE id = ?", (time.time() - 30, b))
        conn.execute("UPDATE runs SET pid = ?, heartbeat = ? WHERE id = ?", (os.getpid(), time.time(), c))
    nxt = lib.insert_run(tiny(), device="cpu", status="queued", started_by="app")
    lib.set_stale_after_s(5)
    assert sorted(lib.recover(force=True)) == sorted([a, b])
    ra, rb = lib.get(a), lib.get(b)
    assert ra.status == "failed" and "stopped unexpectedly (killed or crashed) at epoch 3; last heartbeat" in ra.reason
    assert "train.log" in ra.reason
    assert rb.status == "failed" and "stopped responding (no heartbeat for 30 s) at epoch 2" in rb.reason
    assert lib.get(c).status == "running"
    assert lib.get(nxt).status == "running" and lib.spawned[-1] == nxt  # the freed slot was used
    assert lib.recover() == []  # throttled: a page can call it on every poll
    with pytest.raises(LabError, match="longer than"):
        lib.set_stale_after_s(1)


def test_a_run_taken_over_by_recover_stops_its_recorder(lib):
    run_id = claimed_run(lib)
    rec = Recorder(lib, run_id)
    Recorder(lib, run_id).finish("failed", "marked by recover")
    rec._beat()
    assert rec.should_stop() is True
    rec.record(ev.Finished(status="stopped", reason="", test_acc=None, best_test_acc=None, epochs_done=0, seconds=1))
    assert lib.get(run_id).status == "failed"  # the late Finished does not overwrite it


# ---- export / import ----------------------------------------------------------------------------------

def _comparable(run):
    d = run.to_dict()
    for k in ("id", "started_by", "owner", "pid", "host", "heartbeat", "queue_order", "progress", "data_dir",
              "download", "stop_requested", "resume_requested"):
        d.pop(k)
    return d


def test_export_import_round_trip(lib, tmp_path):
    run_id = claimed_run(lib, tiny(epochs=3), name="to share", preset="cnn", sweep_id="sw", tags="t")
    record_whole_run(lib, run_id, [0.2, 0.5, 0.4])
    lib.annotate(run_id, notes="look at epoch 2")
    files = export_run(lib, run_id, tmp_path / "out" / "shared.json")
    assert [f.name for f in files] == ["shared.json", "shared.csv"]
    csv_lines = files[1].read_text().splitlines()
    assert csv_lines[0] == "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,images_per_s"
    assert len(csv_lines) == 4 and csv_lines[2].split(",")[4] == "0.5"

    other = open_library(tmp_path / "other")
    new_id = import_run(other, files[0])
    assert new_id == run_id  # free id: kept
    imported = other.get(new_id)
    assert imported.started_by == "import" and imported.imported
    assert _comparable(imported) == _comparable(lib.get(run_id))
    assert other.curves(new_id) == lib.curves(run_id)
    again = import_run(lib, files[0])  # clashes with the original: a new id
    assert again != run_id and lib.curves(again) == lib.curves(run_id)


def test_export_with_checkpoint_copies_it_and_import_brings_it_back(lib, tmp_path):
    run_id = claimed_run(lib)
    record_whole_run(lib, run_id, [0.2, 0.3])
    with pytest.raises(LabError, match=r"with its checkpoint: its folder .* was deleted"):
        export_run(lib, run_id, tmp_path / "a.json", with_checkpoint=True)
    lib.run_dir(run_id).mkdir(parents=True)
    (lib.run_dir(run_id) / "last.pt").write_bytes(b"weights")
    files = export_run(lib, run_id, tmp_path / "a.json", with_checkpoint=True)
    assert [f.name for f in files] == ["a.json", "a.csv", "a-last.pt"]
    other = open_library(tmp_path / "other")
    new_id = import_run(other, files[0])
    assert (other.run_dir(new_id) / "last.pt").read_bytes() == b"weights"
    files[2].unlink()  # a checkpoint is not required to import
    assert import_run(lib, files[0]) != run_id


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"format": "something-else", "version": 1}', "field 'format'"),
    ('{"format": "cifar-lab-run", "version": 99, "run": {}, "epochs": []}', "upgrade CIFAR Lab"),
    ('{"format": "cifar-lab-run", "version": 1, "epochs": []}', "missing field 'run'"),
    ('{"format": "cifar-lab-run", "version": 1, "run": {"id": "a", "name": "n", "status": "completed"}, '
     '"epochs": []}', "missing field 'run.config'"),
    ('{"format": "cifar-lab-run", "version": 1, "run": {"id": "a", "name": "n", "status": "completed", '
     '"config": {"epochs": -1}}, "epochs": []}', "its config is invalid: epochs must be"),
    ('{"format": "cifar-lab-run", "version": 1, "run": {"id": "a", "name": "n", "status": "completed", '
     '"config": {}}, "epochs": [{"epoch": "one"}]}', r"epochs\[0\] has no whole-number 'epoch'"),
    ('{"format": "cifar-lab-run", "version": 1, "run": {"id": "a", "name": 5, "status": "completed", '
     '"config": {}}, "epochs": []}', "'run.name' has the wrong type"),
])
def test_corrupt_export_files_are_clear_lab_errors(lib, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(LabError, match=message) as info:
        import_run(lib, path)
    assert "is not a CIFAR Lab run export" in str(info.value)
    assert lib.list_runs() == []
    with pytest.raises(LabError, match="cannot read"):
        import_run(lib, tmp_path / "missing.json")


# ---- the runs CLI -------------------------------------------------------------------------------------

def test_runs_cli_lists_renames_exports_imports_and_deletes(lib, tmp_path, capsys):
    run_id = claimed_run(lib, preset="cnn")
    record_whole_run(lib, run_id, [0.2, 0.3])
    queued = lib.insert_run(tiny(), device="cpu", status="queued", started_by="app", preset="mlp")
    root = str(lib.root)

    def run(*argv):
        code = cli_main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("runs", "--runs-dir", root, "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [queued, run_id]
    assert rows[1]["test_acc"] == 0.3 and rows[1]["best_test_acc"] == 0.3 and rows[1]["status"] == "completed"
    assert rows[0]["queue_position"] == 0 and rows[0]["preset"] == "mlp"
    code, out, _ = run("runs", "--runs-dir", root, "--json", "--status", "completed", "--preset", "cnn")
    assert [r["id"] for r in json.loads(out)] == [run_id]
    code, out, _ = run("runs", "--runs-dir", root)
    assert code == 0 and run_id in out and "30.0%" in out
    assert f"All runs take 0 MB on disk in {root}; " in out  # no checkpoints in this library

    assert run("runs", "rename", run_id, "nicer", "--runs-dir", root)[0] == 0
    assert lib.get(run_id).name == "nicer"
    code, out, _ = run("runs", "--runs-dir", root, "show", run_id, "--json")
    assert json.loads(out)["name"] == "nicer" and len(json.loads(out)["curves"]) == 2
    code, out, _ = run("runs", "--runs-dir", root, "stop", queued)
    assert code == 0 and lib.get(queued).status == "stopped"
    out_file = tmp_path / "x.json"
    assert run("runs", "--runs-dir", root, "export", run_id, "--out", str(out_file))[0] == 0
    assert out_file.is_file() and out_file.with_suffix(".csv").is_file()
    code, out, _ = run("runs", "--runs-dir", root, "--json", "import", str(out_file))
    new_id = json.loads(out)["id"]
    assert code == 0 and new_id != run_id and lib.get(new_id).imported
    assert run("runs", "--runs-dir", root, "delete", new_id)[0] == 0 and lib.find(new_id) is None

    code, out, err = run("runs", "--runs-dir", root, "resume", "nope")
    assert code == 1 and err.count("\n") == 1 and "no run with id 'nope'" in err
    code, out, err = run("runs", "--runs-dir", root, "import", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read" in err
    code, out, _ = run("runs", "--runs-dir", root, "settings", "--max-per-device", "2", "--json")
    assert json.loads(out)["max_per_device"] == 2 and lib.max_per_device == 2


if __name__ == "__main__":  # a writer process for the concurrency test
    if os.environ.get("RUNS_TEST_EVERY_STEP"):
        runs_recorder.PROGRESS_EVERY_S = 0.0
    write_runs(sys.argv[1], int(sys.argv[2]), sys.argv[3])


def test_settings_are_read_once_and_again_only_after_a_commit_anywhere(tmp_path):
    # thirty students' pages read a dozen settings per rerun: one read, until any connection commits
    store = runs_store.RunStore(tmp_path)
    other = runs_store.RunStore(tmp_path)  # another store on the same file: another connection, as a trainer's
    store.set_setting("a", 1)
    assert store.get_setting("a") == "1" and store.get_setting("b", "x") == "x" and store.get_setting("a") == "1"
    reads = store.settings_reads
    assert store.get_setting("a") == "1" and store.settings_reads == reads  # nothing changed: not read again
    other.set_setting("a", 2)
    assert store.get_setting("a") == "2" and store.settings_reads == reads + 1
    with sqlite3.connect(tmp_path / runs_store.DB_NAME) as raw:  # a plain connection: another process's commit
        raw.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('b', 'y')")
    settings = store.settings()
    assert (settings["a"], settings["b"]) == ("2", "y") and store.settings_reads == reads + 2
    script = ("import sys; from core.runs.store import RunStore; RunStore(sys.argv[1]).set_setting('a', 3)")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=REPO)
    assert store.get_setting("a") == "3"
    (tmp_path / runs_store.DB_NAME).unlink()  # deleted by hand: a fresh library, no settings
    for suffix in ("-wal", "-shm"):
        (tmp_path / (runs_store.DB_NAME + suffix)).unlink(missing_ok=True)
    assert store.get_setting("a") is None
