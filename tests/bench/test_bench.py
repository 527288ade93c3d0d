"""The benchmarks measure what they say, on tiny sizes, and the engine's CUDA-only switches work on the CPU.

Oracles: analytic MAC counts, the student's transform on a constant image, call orders, exact step counts, the
same metrics with and without a failing torch.compile, fused vs. plain optimizer steps.
"""

import itertools
import json
import math
import re
from dataclasses import replace

import pytest
import torch

from bench import common as bench
from bench import cpu as bench_cpu
from bench import gpu as bench_gpu
from bench import profile as bench_profile
from core.cli.main import main as cli_main
from core.config import AugmentConfig, DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.lessons.presets import preset_config
from core.train import batches, engine, setup
from core.train import events as ev
from core.train.setup import has_fused_kernel

TINY_CNN = ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 16, "batch_norm": True})
FLIP_CROP = AugmentConfig(flip_p=0.5, crop_padding=4)


def ticks():
    """A fake clock for the timing functions: each read is one second after the previous one."""
    return itertools.count().__next__


def tiny_config(**kw) -> TrainConfig:
    base = dict(data=DataConfig(dataset="synthetic", augment=FLIP_CROP), model=TINY_CNN,
                optim=OptimConfig(name="adam", lr=1e-3), batch_size=16, epochs=1, device="cpu", log_every=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def ds():
    return bench.synthetic_dataset(64, 32, num_classes=10, seed=0)


# --- building blocks -----------------------------------------------------------------------------------------

def test_forward_macs_of_the_base_cnn_match_the_analytic_count():
    from core.models.catalog import build_model

    model = build_model("cnn", 100)  # 32/32/32/64, pools after 2 and 4, FC 4096
    convs = 32 * 32 * 32 * 27 + 32 * 32 * 32 * 288 + 16 * 16 * 32 * 288 + 16 * 16 * 64 * 288
    fcs = 4096 * 4096 + 4096 * 100
    assert bench.forward_macs(model) == convs + fcs == 34_586_624
    assert bench.train_flops_per_image(10) == 60
    assert model.training  # the mode is restored


def test_forward_macs_see_an_internal_resize():
    from core.models.resnet import Resize

    model = torch.nn.Sequential(Resize(64), torch.nn.Conv2d(3, 2, 1), torch.nn.Flatten(), torch.nn.Linear(2 * 64 * 64, 5))
    assert bench.forward_macs(model) == 64 * 64 * 2 * 3 + 2 * 64 * 64 * 5


def test_synthetic_dataset_is_cifar_shaped_balanced_and_repeatable():
    a = bench.synthetic_dataset(200, 100, num_classes=100, seed=3)
    b = bench.synthetic_dataset(200, 100, num_classes=100, seed=3)
    assert a.train_x.shape == (200, 3, 32, 32) and a.train_x.dtype == torch.uint8 and a.test_x.shape[0] == 100
    assert torch.bincount(a.train_y, minlength=100).tolist() == [2] * 100
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y) and a.num_classes == 100


def test_alternate_reverses_the_order_every_round():
    calls = []
    out = bench.alternate([("a", lambda: calls.append("a") or 1.0), ("b", lambda: calls.append("b") or 2.0)], 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert out == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_matmul_rate_counts_products_over_the_clock_and_machine_info_names_what_matters():
    # one group of 4 products (2·64³ FLOPs each) per tick of the fake clock, in every burst
    assert bench.matmul_gflops("cpu", n=64, seconds=0.02, clock=ticks()) == 4 * 2 * 64 ** 3 / 1e9
    info = bench.machine_info()
    for key in ("date", "cpu", "cores", "torch_threads", "torch", "load_average", "omp_wait_policy"):
        assert key in info
    assert f"{info['cores']} cores" in bench.describe_machine(info)


def test_time_engine_times_exactly_the_asked_steps(ds):
    t = bench.time_engine(tiny_config(), ds, warmup_steps=1, steps=2)
    assert t.timed_steps == 2 and t.status == "timed" and t.epochs == []
    assert t.images_per_s == pytest.approx(2 * 16 / t.timed_seconds)  # 2 steps of 16 images over the timed span
    full = bench.time_engine(tiny_config(epochs=2), ds, warmup_steps=1)
    assert full.status == "completed" and [e["epoch"] for e in full.epochs] == [1, 2]
    assert full.eval_seconds is not None and full.epochs[1]["at_s"] > full.epochs[0]["at_s"]
    stopped = bench.time_engine(tiny_config(epochs=50), ds, warmup_steps=1, stop_after_s=0.0)
    assert stopped.status == "stopped" and len(stopped.epochs) < 50
    with pytest.raises(ValueError, match="must divide"):
        bench.time_engine(tiny_config(log_every=2), ds, warmup_steps=1)


# --- the CPU comparison --------------------------------------------------------------------------------------

def test_student_transform_crops_with_zero_padding_and_normalizes():
    x = torch.full((8, 3, 32, 32), 128, dtype=torch.uint8)
    ds = replace(bench.synthetic_dataset(8, 8, num_classes=2), train_x=x)
    img, label = bench_cpu.student_dataset(ds)[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and label == int(ds.train_y[0])
    mean, std = ds.mean[0], ds.std[0]
    allowed = torch.tensor([(0 - mean) / std, (128 / 255 - mean) / std])
    assert torch.isclose(img.reshape(-1, 1), allowed.reshape(1, -1), atol=1e-5).any(1).all()


def test_each_arm_counts_its_images_over_its_clock(ds):
    """With a clock that ticks one second per read, each rate is the images it counted between two reads."""
    sds = bench_cpu.student_dataset(ds)
    assert bench_cpu.time_student_augment(sds, 16, 2, workers=0, clock=ticks()) == 2 * 16  # 2 batches of 16
    assert bench_cpu.time_lab_augment(ds, FLIP_CROP, 16, min_seconds=0.01, clock=ticks()) == 8 * 16  # a group of 8
    cfg = tiny_config()
    assert bench_cpu.time_student_training(cfg, ds, sds, warmup=1, steps=2, workers=0, clock=ticks()) == 2 * 16
    lab = bench.time_engine(bench.bench_config(cfg, device="cpu", epochs=1, log_every=1), ds, warmup_steps=1,
                            steps=2, bf16_on_cpu=False, clock=ticks())
    assert lab.timed_steps == 2 and lab.images_per_s == 2 * 16 / lab.timed_seconds
    assert bench_cpu.time_lab_training(cfg, ds, warmup=1, steps=2, clock=ticks()) == lab.images_per_s


@pytest.fixture
def tiny_catalogue(monkeypatch):
    cat = {"tiny": bench_cpu.BenchModel("tiny", "tiny CNN", tiny_config(), steps=1)}
    monkeypatch.setattr(bench_cpu, "bench_models", lambda: cat)
    return cat


def test_cpu_run_reports_medians_ratios_and_peak_fractions(tiny_catalogue):
    plan = bench_cpu.Plan(models=("tiny",), reps=2, batch_size=16, workers=0, aug_batches=1, aug_min_seconds=0.01,
                          matmul_seconds=0.02)
    r = bench_cpu.run(plan, progress=None)
    a, m = r["augment"], r["models"][0]
    assert len(a["baseline_runs"]) == 2 and a["ratio"] == pytest.approx(a["lab"] / a["baseline"])
    assert m["baseline"] == pytest.approx(sorted(m["baseline_runs"])[0] / 2 + sorted(m["baseline_runs"])[1] / 2, rel=0.01)
    assert m["ratio"] == pytest.approx(m["lab"] / m["baseline"]) and m["lab"] == pytest.approx(bench.median(m["lab_runs"]), abs=0.05)  # runs kept to 0.1
    assert m["forward_macs"] == bench.config_macs(tiny_config(), 100) and m["train_flops"] == 6 * m["forward_macs"]
    assert m["lab_fp32_peak_fraction"] == pytest.approx(m["lab"] * m["train_flops"] / 1e9 / r["matmul_gflops"]["fp32"])
    assert ("lab_bf16" in m) == setup.cpu_has_native_bf16()
    if "lab_bf16" in m:  # the bf16 arm is judged against the bf16 matmul rate
        assert m["lab_bf16_bf16_peak_fraction"] == pytest.approx(
            m["lab_bf16"] * m["train_flops"] / 1e9 / r["matmul_gflops"]["bf16"])
    shares = r["profile"]["shares"]["fp32"]  # the per-step profile: families of one step's time, summing to 1
    assert sum(shares.values()) == pytest.approx(1.0) and bench_profile.matmul_share(shares) > 0
    text = bench_cpu.format_report(r)
    assert "op family (share of the step's CPU time)" in text and "convolution forward + backward" in text
    assert re.search(r"end-to-end tiny CNN: lab [\d,]+ img/s, baseline [\d,]+ img/s, ratio [\d.]+×", text)
    assert re.search(r"augmentation alone \(flip 0.5 \+ crop 4\): lab [\d,]+ img/s, .* ratio [\d.]+×", text)
    json.dumps(r)


def test_op_families_group_the_profilers_names():
    assert bench_profile.family("aten::convolution_backward") == "convolution forward + backward"
    assert bench_profile.family("aten::mkldnn_convolution") == "convolution forward + backward"
    assert bench_profile.family("aten::addmm") == "linear (mm, addmm)"
    assert bench_profile.family("aten::threshold_backward") == "ReLU forward + backward"
    assert bench_profile.family("aten::max_pool2d_with_indices_backward") == "pooling forward + backward"
    assert bench_profile.family("aten::_to_copy") == "dtype copies (casts, layout)"
    assert bench_profile.family("aten::_fused_adam_") == "optimizer"
    assert bench_profile.family("autograd::engine::evaluate_function: ReluBackward0") == bench_profile.OTHER
    shares = bench_profile.family_shares([("aten::mm", 3.0), ("aten::addmm", 1.0), ("aten::clamp_min", 4.0),
                                          ("aten::empty", 0.0)])
    assert shares == {"ReLU forward + backward": 0.5, "linear (mm, addmm)": 0.5, bench_profile.OTHER: 0.0}
    assert list(shares)[0] in ("ReLU forward + backward", "linear (mm, addmm)")
    assert bench_profile.family_shares([]) == {}
    table = bench_profile.format_profile({"fp32": {"linear (mm, addmm)": 0.25}, "bf16": {"linear (mm, addmm)": 0.5}})
    assert table[1].split()[-2:] == ["25%", "50%"]


def test_bench_cli_prints_ratio_lines_and_refuses_bad_flags(tiny_catalogue, capsys, tmp_path):
    assert cli_main(["bench", "--tiny", "--models", "tiny", "--no-bf16", "--save", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"end-to-end tiny CNN: lab [\d,]+ img/s, baseline [\d,]+ img/s, ratio [\d.]+×", out)
    assert "lab_bf16" not in json.loads((tmp_path / "r.json").read_text())["models"][0]
    assert cli_main(["bench", "--models", "nope"]) == 2
    assert "unknown nope" in capsys.readouterr().err
    assert cli_main(["bench", "--reps", "0"]) == 2


# --- the GPU suite, on the CPU ---------------------------------------------------------------------------------

def test_gpu_suite_items_run_on_the_cpu_and_write_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_gpu, "CIFAR_CLASSES", 10)
    out = tmp_path / "gpu_bench.json"
    r = bench_gpu.run(("base", "resnet18_224", "lr_finder", "best_scratch", "nope"), bench_gpu.Sizes.tiny(), "cpu",
                      out, progress=None)
    assert set(r["items"]) == {"base", "resnet18_224", "lr_finder", "best_scratch"} and list(r["errors"]) == ["nope"]
    base = r["items"]["base"]
    assert [e["epoch"] for e in base["epochs"]] == [1, 2] and base["epoch_s"] == base["epochs"][1]["seconds"] > 0
    assert base["train_gflop_per_image"] == pytest.approx(6 * base["forward_macs"] / 1e9)
    r224 = r["items"]["resnet18_224"]
    assert r224["epoch_s"] > 0 and r224["measured_train_images"] == 24 and r224["fraction"] == 0.5
    assert r["items"]["lr_finder"]["steps"] == 3
    best = r["items"]["best_scratch"]
    assert best["epochs_planned"] == preset_config("best-scratch").epochs and best["status"] in ("stopped", "completed")
    saved = json.loads(out.read_text())
    assert set(saved["items"]) == set(r["items"])
    assert "base CNN" in bench_gpu.format_table(r) and "nope: FAILED" in bench_gpu.format_table(r)


def test_a_failing_item_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(bench_gpu, "item_lr_finder", boom)
    monkeypatch.setattr(bench_gpu, "CIFAR_CLASSES", 10)
    r = bench_gpu.run(("lr_finder", "base"), bench_gpu.Sizes.tiny(), "cpu", None, progress=None)
    assert r["errors"] == {"lr_finder": "RuntimeError: no such kernel"} and "base" in r["items"]


def test_gpu_script_runs_from_the_command_line(tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(bench_gpu, "CIFAR_CLASSES", 10)
    assert script.main(["--tiny", "--device", "cpu", "--items", "lr_finder"]) == 0
    assert "lr_finder" in json.loads((tmp_path / "gpu_bench.json").read_text())["items"]
    assert "LR finder" in capsys.readouterr().out


# --- the engine's CUDA-only switches, exercised on the CPU -----------------------------------------------------

def _epochs(events):
    return [(e.train_loss, e.test_acc) for e in events if isinstance(e, ev.EpochEnd)]


def test_a_failing_torch_compile_falls_back_to_the_same_eager_run(ds, monkeypatch):
    cfg = tiny_config(compile=True)
    eager = list(engine.train(replace(cfg, compile=False), dataset=ds))

    class Broken:
        def __init__(self, model):
            self.calls = 0

        def __call__(self, x):
            self.calls += 1
            raise RuntimeError("inductor: no C++ compiler")

    monkeypatch.setattr(engine, "COMPILE_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(torch, "compile", lambda model, **k: Broken(model))
    events = list(engine.train(cfg, dataset=ds))
    notes = [e.message for e in events if isinstance(e, ev.Note)]
    assert len(notes) == 1 and notes[0].startswith("torch.compile failed (RuntimeError: inductor: no C++ compiler)")
    assert events[-1].status == "completed" and _epochs(events) == _epochs(eager)

    def unavailable(model, **k):
        raise RuntimeError("dynamo unsupported")

    monkeypatch.setattr(torch, "compile", unavailable)
    events = list(engine.train(cfg, dataset=ds))
    assert [e.message for e in events if isinstance(e, ev.Note)] == [
        "torch.compile is not available (RuntimeError); training without it"]
    assert _epochs(events) == _epochs(eager)


def test_compile_is_ignored_on_the_cpu_by_default(ds, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("compile must not be called on the CPU"))
    assert list(engine.train(tiny_config(compile=True), dataset=ds))[-1].status == "completed"


def test_channels_last_on_the_cpu_changes_only_rounding(ds):
    a = _epochs(engine.train(tiny_config(channels_last=True), dataset=ds))
    b = _epochs(engine.train(tiny_config(channels_last=False), dataset=ds))
    assert setup.use_channels_last(tiny_config(), torch.device("cpu"))
    assert not setup.use_channels_last(tiny_config(channels_last=False), torch.device("cpu"))
    assert a[0][0] == pytest.approx(b[0][0], rel=1e-4)


def test_cpu_bf16_is_on_by_config_only_where_native_and_can_be_switched_off(ds, monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv(setup.CPU_BF16_ENV, raising=False)
    assert setup.use_amp(tiny_config(), cpu) == setup.cpu_has_native_bf16()  # the default: cpu_amp=True
    assert not setup.use_amp(tiny_config(cpu_amp=False), cpu)
    assert not setup.use_amp(tiny_config(amp=False), cpu)
    monkeypatch.setenv(setup.CPU_BF16_ENV, "0")  # a process-wide off switch
    assert not setup.use_amp(tiny_config(), cpu)
    assert setup.use_amp(tiny_config(amp=True), torch.device("cuda")) and not setup.use_amp(
        tiny_config(amp=False), torch.device("cuda"))


def test_a_cpu_bf16_run_reports_what_its_checkpoint_scores_in_fp32(ds, monkeypatch, tmp_path):
    from core.train.checkpoint import load_model

    monkeypatch.setenv(setup.CPU_BF16_ENV, "1")  # the bf16 path where the CPU has it, fp32 elsewhere
    events = list(engine.train(tiny_config(), dataset=ds, checkpoint_dir=tmp_path))
    assert events[-1].status == "completed" and math.isfinite(_epochs(events)[0][0])
    model, _, meta = load_model(tmp_path / "last.pt")
    r = engine.evaluate(model, ds.test_x, ds.test_y, mean=meta["mean"], std=meta["std"])
    assert r.acc == _epochs(events)[0][1]


def test_evaluate_in_cpu_bf16_is_close_to_fp32():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(10) % 3
    fp32 = engine.evaluate(model, x, y, mean=(0.5,) * 3, std=(0.25,) * 3, return_logits=True)
    bf16 = engine.evaluate(model, x, y, mean=(0.5,) * 3, std=(0.25,) * 3, return_logits=True, cpu_amp=True)
    assert torch.allclose(fp32.logits, bf16.logits, atol=0.05, rtol=0.05)
    assert engine.evaluate(model, x, y, mean=(0.5,) * 3, std=(0.25,) * 3, return_logits=True,
                           cpu_amp=True, amp=False).logits.equal(fp32.logits)


def test_fused_optimizer_steps_match_the_plain_ones():
    for optim in (OptimConfig(name="adam", lr=1e-2, weight_decay=1e-4), OptimConfig(name="adamw", lr=1e-2),
                  OptimConfig(name="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)):
        cfg = tiny_config(optim=optim)
        models = []
        for fused in (None, False):
            torch.manual_seed(0)
            model = torch.nn.Linear(5, 3)
            opt = setup.build_optimizer(model, cfg, fused=fused)
            assert bool(opt.defaults.get("fused")) == (fused is None and has_fused_kernel(type(opt)))
            for _ in range(3):
                opt.zero_grad()
                model(torch.ones(2, 5)).square().sum().backward()
                opt.step()
            models.append(model)
        assert torch.allclose(models[0].weight, models[1].weight, atol=1e-6), optim.name


def test_batches_come_from_index_select_and_the_epoch_order_is_the_seeded_cpu_one():
    x = torch.randint(0, 256, (20, 3, 4, 4), dtype=torch.uint8)
    idx = torch.tensor([3, 1, 19, 3])
    assert torch.equal(batches.rows(x, idx, torch.device("cpu")), x[idx])
    expected = torch.randperm(20, generator=torch.Generator().manual_seed(123))
    assert torch.equal(batches.epoch_permutation(20, 123, torch.device("cpu")), expected)
