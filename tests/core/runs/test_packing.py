"""A packed device: the per-device cap ($CIFAR_LAB_MAX_PER_DEVICE / the library setting / auto), the memory
estimate (a meta-device probe against hand-counted bytes and against the same probe on real tensors), the
admission rule, and the queue using both - including out-of-memory at admission and mid-run failing only the
run concerned. No trainer processes: the queue's spawns are collected, trainings run in this process."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from core.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.errors import LabError
from core.models import catalog, registry
from core.runs import packing
from core.runs.library import RunLibrary, open_library
from core.runs.packing import MAX_PER_DEVICE_ENV, Admission, admit, device_cap, parse_cap
from core.runs.recorder import Recorder, cli_recorder
from core.runs.scheduler import claim_terminal
from core.train import engine
from core.train.memory import SAFETY_MARGIN, dataset_size, estimate_run_memory, probe_activation_bytes
from tests.fakes import tiny_config as tiny

GIB = 2**30
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def no_cap_from_the_shell(monkeypatch):
    monkeypatch.delenv(MAX_PER_DEVICE_ENV, raising=False)


def queued(lib: RunLibrary, config: TrainConfig | None = None) -> str:
    return lib.insert_run(config or tiny(), device="cpu", status="queued", started_by="app")


# ---- the cap ------------------------------------------------------------------------------------------

def test_the_cap_is_one_on_a_cpu_and_memory_bound_on_cuda_by_default():
    assert device_cap("cpu", "auto", {}) == (1, False)
    assert device_cap("mps", None, {}) == (1, False)
    assert device_cap("cuda:0", "auto", {}) == (packing.AUTO_CUDA_CAP, True)
    assert device_cap("cpu", "3", {}) == (3, True)  # several CPU runs: their RAM is checked
    assert device_cap("cuda:1", "2", {}) == (2, True)
    assert device_cap("cpu", "1", {MAX_PER_DEVICE_ENV: "2"}) == (2, True)  # the environment wins
    assert device_cap("cuda", "4", {MAX_PER_DEVICE_ENV: "auto"}) == (packing.AUTO_CUDA_CAP, True)
    assert device_cap("cpu", "2", {MAX_PER_DEVICE_ENV: ""}) == (2, True)  # empty = not set


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_bad_cap_says_where_it_came_from_and_what_to_write(bad):
    with pytest.raises(LabError, match=rf"\$CIFAR_LAB_MAX_PER_DEVICE must be a whole number >= 1 or 'auto', "
                                       rf"got '{bad}'"):
        device_cap("cpu", "auto", {MAX_PER_DEVICE_ENV: bad})
    assert parse_cap(" AUTO ", "x") is None and parse_cap("7", "x") == 7


def test_the_setting_accepts_auto_and_numbers(lib):
    assert lib.max_per_device == "auto"  # a new library: auto
    lib.set_max_per_device(3)
    assert RunLibrary(lib.root).max_per_device == 3
    lib.set_max_per_device("auto")
    assert lib.max_per_device == "auto"
    for bad in (0, "many", True):
        with pytest.raises(LabError, match="whole number >= 1 or 'auto'"):
            lib.set_max_per_device(bad)


# ---- admission ----------------------------------------------------------------------------------------

def test_admit_starts_waits_or_refuses():
    assert admit(2 * GIB, [], cap=1, capacity=10 * GIB) == Admission("start", "")
    assert admit(None, [0], cap=1, capacity=None).verdict == "wait"  # the cap alone
    assert admit(2 * GIB, [3 * GIB, 4 * GIB], cap=4, capacity=10 * GIB).verdict == "start"  # 9 of 10 GiB
    full = admit(4 * GIB, [3 * GIB, 4 * GIB], cap=4, capacity=10 * GIB, device="cuda:0")
    assert full.verdict == "wait" and full.reason == ("cuda:0 has 3.0 GiB free of 10.0 GiB usable; this run needs "
                                                      "about 4.0 GiB")
    never = admit(12 * GIB, [], cap=4, capacity=10 * GIB, device="cuda:0")
    assert never.verdict == "never"
    assert never.reason.startswith("out of memory at admission: this run needs about 12.0 GiB on cuda:0, which has "
                                   "10.0 GiB usable: lower the batch size")
    assert admit(12 * GIB, [1], cap=1, capacity=10 * GIB).verdict == "wait"  # the cap is checked first


# ---- the estimate -------------------------------------------------------------------------------------

def test_the_probe_counts_saved_activations_once_and_not_the_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    # saved for backward: the input (8x10) for the first weight's gradient, the ReLU output (8x20, saved by the
    # ReLU and by the second Linear: once), and the logits + log-softmax of the loss (2 x 8x5), all fp32
    assert probe_activation_bytes(model, torch.randn(8, 10)) == 4 * (8 * 10 + 8 * 20 + 2 * 8 * 5)


def test_the_meta_probe_measures_what_real_tensors_save():
    config = tiny(model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 32, "batch_norm": True}))
    torch.manual_seed(0)
    real = catalog.build_for_config(config, 10)
    with torch.device("meta"):
        meta = catalog.build_for_config(config, 10)
        meta_batch = torch.empty(6, 3, 32, 32)
    assert probe_activation_bytes(meta, meta_batch) == probe_activation_bytes(real, torch.randn(6, 3, 32, 32))


def test_the_estimate_adds_up_and_follows_batch_size_and_optimizer():
    small, large = estimate_run_memory(tiny(batch_size=50), "cuda"), estimate_run_memory(tiny(batch_size=100), "cuda")
    assert large.activations == 2 * small.activations  # activations scale with the batch
    assert large.params == small.params and large.optimizer == 2 * large.grads  # Adam: two moments
    sgd = estimate_run_memory(tiny(optim=OptimConfig(name="sgd", momentum=0.9, lr=0.1)), "cuda")
    plain = estimate_run_memory(tiny(optim=OptimConfig(name="sgd", momentum=0.0, lr=0.1)), "cuda")
    assert sgd.optimizer == sgd.grads and plain.optimizer == 0
    e = small
    assert e.data == (200 + 100) * (3 * 32 * 32 + 8)  # the subsets, resident as uint8 + int64 labels
    counted = e.params + e.grads + e.optimizer + max(e.activations, 1024 * 3 * 32 * 32 * 4) + e.data
    assert e.total == int(counted * SAFETY_MARGIN) + e.overhead
    assert estimate_run_memory(tiny(), "cpu").overhead < e.overhead  # no CUDA context on a CPU
    assert dataset_size(TrainConfig(data=DataConfig(dataset="cifar100"))) == (50_000, 10_000, 100)
    assert "GiB" in e.describe()


# ---- the queue ----------------------------------------------------------------------------------------

def test_by_default_a_cpu_trains_one_run_at_a_time(lib):
    ids = [queued(lib) for _ in range(3)]
    assert lib.kick() == ids[:1]


def test_the_environment_cap_packs_a_cpu(lib, monkeypatch):
    monkeypatch.setenv(MAX_PER_DEVICE_ENV, "2")
    ids = [queued(lib) for _ in range(3)]
    assert lib.kick() == ids[:2] and lib.kick() == []
    Recorder(lib, ids[0]).finish("completed", "")
    assert lib.kick() == [ids[2]]


def test_memory_holds_back_a_run_that_fits_alone_but_not_beside_the_running_ones(lib, monkeypatch):
    monkeypatch.setenv(MAX_PER_DEVICE_ENV, "8")
    need = estimate_run_memory(tiny(), "cpu").total
    monkeypatch.setattr(packing, "device_capacity", lambda device: int(2.5 * need))
    ids = [queued(lib) for _ in range(4)]
    assert lib.kick() == ids[:2]  # two fit, the third would not: it waits (not failed)
    assert lib.get(ids[2]).status == "queued"
    Recorder(lib, ids[1]).finish("completed", "")
    assert lib.kick() == [ids[2]] and lib.get(ids[3]).status == "queued"


def test_out_of_memory_at_admission_fails_that_run_only(lib, monkeypatch):
    monkeypatch.setenv(MAX_PER_DEVICE_ENV, "4")
    big_config = tiny(batch_size=2000, model=ModelConfig("cnn", {"widths": (32, 32, 32, 64), "fc": 512}))
    big_need = estimate_run_memory(big_config, "cpu").total
    assert big_need > 2 * estimate_run_memory(tiny(), "cpu").total  # the two small ones fit together
    monkeypatch.setattr(packing, "device_capacity", lambda device: big_need - 1)
    first, big, after = queued(lib), queued(lib, big_config), queued(lib)
    assert lib.kick() == [first, after]  # the big one is failed and does not block the queue behind it
    run = lib.get(big)
    assert run.status == "failed" and run.finished is not None
    assert run.reason.startswith(f"out of memory at admission: this run needs about {big_need / GIB:.1f} GiB on "
                                 f"cpu") and "lower the batch size" in run.reason
    assert [lib.get(i).status for i in (first, after)] == ["running", "running"]


def test_a_terminal_run_is_admitted_by_the_same_rule(lib, monkeypatch):
    monkeypatch.setenv(MAX_PER_DEVICE_ENV, "2")
    a, b, c = (lib.insert_run(tiny(), device="cpu", status="queued", started_by="cli", owner="terminal")
               for _ in range(3))
    assert [claim_terminal(lib.store, i) for i in (a, b, c)] == ["running", "running", None]  # two at once


def test_a_terminal_run_that_cannot_fit_fails_with_the_reason(lib, monkeypatch):
    monkeypatch.setenv(MAX_PER_DEVICE_ENV, "2")
    monkeypatch.setattr(packing, "device_capacity", lambda device: 1)
    with pytest.raises(LabError, match=r"could not start: out of memory at admission: this run needs about"):
        cli_recorder(tiny(), str(lib.root), out=io.StringIO(), poll_s=0.01)
    failed = lib.list_runs(status="failed")
    assert len(failed) == 1 and failed[0].reason.startswith("out of memory at admission")


def test_an_estimate_that_cannot_be_made_never_blocks_the_queue(lib, monkeypatch):
    monkeypatch.setenv(MAX_PER_DEVICE_ENV, "2")

    def broken(config_json, device):
        raise RuntimeError("a model the meta device cannot build")

    monkeypatch.setattr(packing, "run_need", broken)
    ids = [queued(lib) for _ in range(2)]
    assert lib.kick() == ids


# ---- out of memory mid-run ----------------------------------------------------------------------------

def test_out_of_memory_mid_run_fails_that_run_and_the_other_completes(lib, monkeypatch):
    """Two runs packed on one device, trained side by side: one runs out of memory at its third step (forced:
    its model raises CUDA's OutOfMemoryError), the other is untouched and completes."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class OomAtThirdStep(nn.Module):
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.fc, self.calls = nn.Linear(3 * 32 * 32, num_classes), 0

        def forward(self, x):
            self.calls += 1
            if self.training and self.calls == 3:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.fc(x.flatten(1))

    registry.register_model("oom_test", "runs out of memory at its third training step")(
        lambda num_classes: OomAtThirdStep(num_classes))
    monkeypatch.setenv(MAX_PER_DEVICE_ENV, "2")
    ok_id, oom_id = queued(lib), queued(lib, tiny(model=ModelConfig("oom_test")))
    assert lib.kick() == [ok_id, oom_id]
    recs = {i: Recorder(lib, i) for i in (ok_id, oom_id)}
    streams = {i: engine.train(lib.get(i).config, should_stop=recs[i].should_stop, checkpoint_dir=lib.run_dir(i))
               for i in recs}
    while streams:  # interleave the two event streams, as two processes sharing a device would
        for i in list(streams):
            event = next(streams[i], None)
            if event is None:
                del streams[i]
            else:
                recs[i].record(event)
    oom, ok = lib.get(oom_id), lib.get(ok_id)
    assert oom.status == "failed" and oom.reason.startswith("out of memory on cpu at batch size 50: try a smaller "
                                                            "batch size")
    assert ok.status == "completed" and ok.epochs_done == 2 and ok.reason == ""


# ---- two terminals, one CPU ---------------------------------------------------------------------------

@pytest.mark.slow
def test_two_cli_runs_train_at_the_same_moment_with_a_cap_of_two(tmp_path):
    """`CIFAR_LAB_MAX_PER_DEVICE=2 python -m core train ...` twice: both make progress at one moment (runs long
    enough never to end by themselves), then both stop on request; their started/finished intervals overlap."""
    root = tmp_path / "runs"
    lib = open_library(root)
    cmd = [sys.executable, "-m", "core", "train", "--preset", "cnn", "--dataset", "synthetic", "--subset", "200",
           "--test-subset", "100", "--epochs", "1000", "--batch-size", "50", "--set", "model.widths=[4,4,8,8]",
           "--set", "model.fc=32", "--device", "cpu", "--runs-dir", str(root), "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO), MAX_PER_DEVICE_ENV: "2"}
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        deadline = time.time() + 300  # a guard against a hang, not a speed bound
        while time.time() < deadline:
            runs = lib.list_runs(started_by="cli")
            if len(runs) == 2 and all(r.status == "running" and r.progress and r.progress.step > 0 for r in runs):
                break
            assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs]
            time.sleep(0.2)
        else:
            raise AssertionError(f"never saw both runs training: {[(r.status, r.progress) for r in runs]}")
        for run in runs:
            lib.request_stop(run.id)
        for p in procs:
            p.wait(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    a, b = lib.list_runs(started_by="cli")
    assert a.status == b.status == "stopped"
    assert a.started < b.finished and b.started < a.finished  # the two intervals overlap
