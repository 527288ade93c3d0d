"""The Ray cluster backend without a cluster: which runs go where, the wire format between a job and the
server, the schema v3 columns, an unreachable head, and that ray is never imported unless a cluster is set.
(tests/core/runs/test_cluster_ray.py runs the real thing against a Ray head.)"""

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import DataConfig, ModelConfig, TrainConfig, to_json
from core.errors import LabError
from core.runs import cluster, stream
from core.runs import store as runs_store
from core.runs.library import open_library
from core.train import events as ev
from tests.core.runs.ray_head import free_port

REPO = Path(__file__).resolve().parents[3]


def tiny() -> TrainConfig:
    return TrainConfig(data=DataConfig(dataset="synthetic", subset=200, test_subset=100),
                       model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 32}), batch_size=50, epochs=1, device="cpu")


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch):
    for name in ("CIFAR_LAB_RAY", "CIFAR_LAB_RAY_GPUS", "CIFAR_LAB_RAY_CHECKPOINT_S"):
        monkeypatch.delenv(name, raising=False)


# ---- where runs go -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("http://head:8265", "http://head:8265"), ("head:8265/", "http://head:8265"), ("  https://h:1 ", "https://h:1"),
    ("", None), ("off", None), ("None", None), ("local", None), (None, None)])
def test_addresses_are_normalized(text, expected):
    assert cluster.normalize(text) == expected


def test_a_non_http_address_says_what_an_address_looks_like():
    with pytest.raises(LabError, match=r"looks like http://HEAD:8265"):
        cluster.normalize("ray://head:10001")


def test_the_flag_beats_the_environment_which_beats_the_setting(monkeypatch):
    settings = {"ray_address": "http://setting:1"}
    get = lambda key, default=None: settings.get(key, default)  # noqa: E731
    assert cluster.address_for(get) == "http://setting:1"
    monkeypatch.setenv("CIFAR_LAB_RAY", "env:2")
    assert cluster.address_for(get) == "http://env:2"
    assert cluster.address_for(get, "flag:3") == "http://flag:3"
    assert cluster.address_for(get, "off") is None
    monkeypatch.setenv("CIFAR_LAB_RAY", "off")  # the environment can also switch a library's setting off
    assert cluster.address_for(get) is None
    monkeypatch.delenv("CIFAR_LAB_RAY")
    assert cluster.address_for(None) is None


@pytest.mark.parametrize("device, env, expected", [("cpu", None, 0.0), ("cuda", None, 1.0), ("cuda:1", None, 1.0),
                                                   ("auto", "0.5", 0.5), ("cpu", "1", 1.0)])
def test_gpus_per_run(monkeypatch, device, env, expected):
    if env is not None:
        monkeypatch.setenv("CIFAR_LAB_RAY_GPUS", env)
    assert cluster.gpus_per_run(device, "http://127.0.0.1:1") == expected


def test_auto_on_a_cluster_that_cannot_say_asks_for_a_gpu():
    assert cluster.gpus_per_run("auto", f"http://127.0.0.1:{free_port()}") == 1.0


def test_a_bad_gpu_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_RAY_GPUS", "one")
    with pytest.raises(LabError, match="CIFAR_LAB_RAY_GPUS must be a number"):
        cluster.gpus_per_run("auto", "http://127.0.0.1:1")


def test_cluster_slots_setting(tmp_path):
    lib = open_library(tmp_path / "runs")
    with lib.connect() as conn:
        assert cluster.slots(conn) == cluster.DEFAULT_SLOTS
    cluster.set_slots(lib, 2)
    with lib.connect() as conn:
        assert cluster.slots(conn) == 2
    with pytest.raises(LabError, match="ray_slots must be a whole number >= 1"):
        cluster.set_slots(lib, 0)


# ---- an unreachable head -----------------------------------------------------------------------------------

def test_submitting_to_an_unreachable_head_queues_nothing(tmp_path, monkeypatch):
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("CIFAR_LAB_RAY", address)
    lib = open_library(tmp_path / "runs")
    with pytest.raises(LabError, match=rf"cannot reach the Ray cluster at {address} .* unset CIFAR_LAB_RAY"):
        lib.submit(tiny())
    assert lib.list_runs() == []
    with pytest.raises(LabError, match="cannot reach the Ray cluster"):
        cluster.set_address(lib, address)
    assert cluster.address_for(lib.get_setting) == address  # (the environment's; the setting stayed empty)
    assert lib.get_setting(cluster.SETTING, "") == ""


def test_the_cli_says_so_in_one_line_and_exits_1(tmp_path):
    address = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, CIFAR_LAB_RAY=address, PYTHONPATH=str(REPO))
    runs = str(tmp_path / "runs")
    proc = subprocess.run([sys.executable, "-m", "core", "train", "--preset", "cnn", "--dataset", "synthetic",
                           "--epochs", "2", "--json", "--runs-dir", runs], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m core: error: cannot reach the Ray cluster at {address}")
    listed = subprocess.run([sys.executable, "-m", "core", "runs", "--json", "--runs-dir", runs], capture_output=True,
                            text=True, env=env, cwd=REPO, timeout=60)
    assert json.loads(listed.stdout) == []


# ---- ray stays out of a lab without a cluster ----------------------------------------------------------------

def test_no_cluster_no_ray_import(tmp_path):
    code = (
        "import importlib, pkgutil, sys, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    if not m.name.endswith('__main__'):  # that one runs the CLI\n"
        "        importlib.import_module(m.name)\n"
        "assert 'core.runs.rayjob' in sys.modules\n"
        "from core.runs.library import open_library\n"
        "from core.config import DataConfig, TrainConfig\n"
        f"lib = open_library({str(tmp_path / 'runs')!r})\n"
        "assert lib.get_setting('ray_address', '') == ''\n"
        "loaded = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))\n"
        "print('RAY', loaded)\n")
    env = {k: v for k, v in os.environ.items() if k != "CIFAR_LAB_RAY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "RAY []" in out.stdout


# ---- schema v3 ---------------------------------------------------------------------------------------------

def test_a_version_2_library_reads_its_runs_as_local(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    conn = sqlite3.connect(root / "lab.db", isolation_level=None)
    for sql in runs_store.MIGRATIONS[:2]:
        for statement in runs_store._statements(sql):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO settings VALUES ('max_per_device', '1'), ('stale_after_s', '20')")
    conn.execute("INSERT INTO runs (id, name, config, dataset, model, device, status, created) "
                 "VALUES ('old2', 'from v2', ?, 'synthetic', 'mlp', 'cpu', 'completed', 1.0)", (to_json(tiny()),))
    conn.close()
    lib = open_library(root)
    run = lib.get("old2")
    assert (run.backend, run.cluster, run.job_id) == ("local", None, None)
    assert lib.list_runs()[0].id == "old2"


# ---- the wire format between a job and the server -------------------------------------------------------

def test_checkpoint_parts_come_back_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "PART_CHARS", 8)
    src = tmp_path / "job" / "last.pt"
    src.parent.mkdir()
    src.write_bytes(bytes(range(256)) * 3)
    lines = list(stream.file_lines(src))
    assert len(lines) == 1024 // 8  # 768 bytes are 1024 base64 characters
    files = stream.FileAssembler(tmp_path / "server")
    got = [files.add(stream.parse_line("noise " + line)) for line in lines]
    assert got[:-1] == [None] * (len(lines) - 1)
    assert got[-1] == tmp_path / "server" / "last.pt"
    assert got[-1].read_bytes() == src.read_bytes()


def test_a_missing_part_drops_the_file_and_foreign_names_are_ignored(tmp_path):
    files = stream.FileAssembler(tmp_path)
    assert files.add({"file": "last.pt", "part": 1, "parts": 2, "data": "AA=="}) is None
    assert files.add({"file": "../../evil.pt", "part": 0, "parts": 1, "data": "AA=="}) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("line", ["", "plain output", "@cifar-lab@ {not json", "@cifar-lab@ [1, 2]"])
def test_other_log_lines_are_not_ours(line):
    assert stream.parse_line(line) is None


def fake_train(epochs: int, same: bool = False):
    """A stand-in for the engine: writes last.pt/best.pt after each epoch, as the engine does (with same=True
    the two files are equal, as after an epoch that improved)."""
    def train(config, *, should_stop, data_root, download, checkpoint_dir, resume):
        assert (data_root, download, resume) == ("/srv/data", False, True)
        assert (Path(checkpoint_dir) / "last.pt").read_bytes() == b"resume me"  # the shipped checkpoint
        yield ev.RunStarted(params=1, trainable_params=1, device="cpu", dataset="synthetic", model="mlp",
                            train_size=2, test_size=2, num_classes=2, steps_per_epoch=1, epochs=epochs, start_epoch=1)
        for epoch in range(1, epochs + 1):
            yield ev.EpochEnd(epoch=epoch, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5, lr=0.1,
                              seconds=0.1, images_per_s=10.0)
            for name in ("best.pt", "last.pt"):
                (Path(checkpoint_dir) / name).write_bytes(f"{'' if same else name} after epoch {epoch}".encode())
        yield ev.Finished(status="completed", reason="", test_acc=0.5, best_test_acc=0.5, epochs_done=epochs,
                          seconds=0.3)
    return train


def test_the_job_prints_checkpoints_before_the_event_that_follows_them(tmp_path, monkeypatch):
    resume_from = tmp_path / "server-run"
    resume_from.mkdir()
    (resume_from / "last.pt").write_bytes(b"resume me")
    stream.write_package(tmp_path / "pkgs" / "cifar_lab_run_t1", tiny(), job_id="j1", resume_from=resume_from,
                         data_dir="/srv/data", download=False)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setenv("CIFAR_LAB_RAY_CHECKPOINT_S", "0")  # every rewrite goes out
    out = io.StringIO()
    assert stream.stream_run("cifar_lab_run_t1", out=out, train=fake_train(2)) == 0
    kinds = []
    for line in out.getvalue().splitlines():
        payload = stream.parse_line(line)
        kinds.append(payload["event"]["event"] if "event" in payload else payload["file"])
    # epoch 1's checkpoints go out before the next event (epoch 2), epoch 2's before `finished`
    assert kinds == ["started", "epoch", "last.pt", "best.pt", "epoch", "last.pt", "best.pt", "finished"]


def test_mid_run_checkpoints_are_throttled_but_the_final_one_always_goes(tmp_path, monkeypatch):
    resume_from = tmp_path / "server-run"
    resume_from.mkdir()
    (resume_from / "last.pt").write_bytes(b"resume me")
    stream.write_package(tmp_path / "pkgs" / "cifar_lab_run_t2", tiny(), job_id="j1", resume_from=resume_from,
                         data_dir="/srv/data", download=False)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setenv("CIFAR_LAB_RAY_CHECKPOINT_S", "3600")
    out = io.StringIO()
    stream.stream_run("cifar_lab_run_t2", out=out, train=fake_train(3))
    payloads = [stream.parse_line(line) for line in out.getvalue().splitlines()]
    kinds = [p["event"]["event"] if "event" in p else p["file"] for p in payloads]
    assert kinds == ["started", "epoch", "epoch", "epoch", "last.pt", "best.pt", "finished"]  # only the final pair
    last = [p for p in payloads if p.get("file") == "last.pt"][-1]
    assert stream.base64.b64decode(last["data"]) == b"last.pt after epoch 3"


def test_a_setup_error_in_the_job_is_a_finished_failed_line(tmp_path, monkeypatch):
    stream.write_package(tmp_path / "pkgs" / "cifar_lab_run_t3", tiny(), job_id="j1", resume_from=None, data_dir=None,
                         download=False)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))

    def broken(config, **kw):
        raise LabError("no such dataset folder: put it on every worker")
        yield  # a generator, like the engine

    out = io.StringIO()
    assert stream.stream_run("cifar_lab_run_t3", out=out, train=broken) == 1
    (payload,) = [stream.parse_line(line) for line in out.getvalue().splitlines()]
    assert payload["event"]["event"] == "finished"
    assert (payload["event"]["status"], payload["event"]["reason"]) == (
        "failed", "no such dataset folder: put it on every worker")


def test_a_package_that_did_not_arrive_is_a_clear_reason():
    out = io.StringIO()
    assert stream.stream_run("cifar_lab_run_missing", out=out, train=fake_train(1)) == 1
    (payload,) = [stream.parse_line(line) for line in out.getvalue().splitlines()]
    assert "did not reach this job" in payload["event"]["reason"]


def test_where_runs_go_says_who_decided(monkeypatch):
    settings = {}
    get = lambda key, default=None: settings.get(key, default)  # noqa: E731
    assert cluster.where_runs_go(get) == (None, "default")
    settings["ray_address"] = "head:8265"
    assert cluster.where_runs_go(get) == ("http://head:8265", "setting")
    monkeypatch.setenv("CIFAR_LAB_RAY", "")
    assert cluster.where_runs_go(get) == (None, "environment")  # set but empty: this machine, by the environment


def test_each_job_ships_a_package_of_its_own(tmp_path):
    # Ray caches py_modules by content: two jobs of one config must still differ, or the second gets the first's
    for job in ("cifar-lab-a-1", "cifar-lab-b-2"):
        stream.write_package(tmp_path / job, tiny(), job_id=job, resume_from=None, data_dir=None, download=False)
    first, second = (json.loads((tmp_path / j / stream.RUN_FILE).read_text()) for j in ("cifar-lab-a-1", "cifar-lab-b-2"))
    assert first["config"] == second["config"] and first["job_id"] != second["job_id"]


def test_a_best_checkpoint_equal_to_the_last_goes_as_a_copy(tmp_path, monkeypatch):
    resume_from = tmp_path / "server-run"
    resume_from.mkdir()
    (resume_from / "last.pt").write_bytes(b"resume me")
    stream.write_package(tmp_path / "pkgs" / "cifar_lab_run_t4", tiny(), job_id="j4", resume_from=resume_from,
                         data_dir="/srv/data", download=False)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    out = io.StringIO()
    stream.stream_run("cifar_lab_run_t4", out=out, train=fake_train(1, same=True))
    payloads = [stream.parse_line(line) for line in out.getvalue().splitlines()]
    files = [p for p in payloads if "file" in p]
    assert [(p["file"], p.get("same_as")) for p in files] == [("last.pt", None), ("best.pt", "last.pt")]
    server = stream.FileAssembler(tmp_path / "server")
    for p in files:
        server.add(p)
    assert (tmp_path / "server" / "best.pt").read_bytes() == (tmp_path / "server" / "last.pt").read_bytes() == \
        b" after epoch 1"
    assert os.path.samefile(tmp_path / "server" / "best.pt", tmp_path / "server" / "last.pt")  # one file kept
