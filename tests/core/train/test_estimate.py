"""core.train.estimate and core.train.calibrate: the arithmetic against hand-computed values, the exponential
average, a run's measured rate, the settings round trip, and a calibration timed by a fake clock."""

from __future__ import annotations

import math

import pytest
import torch

from core.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.train.calibrate import calibrate
from core.train.estimate import (
    EpochTiming,
    Estimate,
    Rate,
    duration_text,
    estimate,
    estimate_text,
    load_rate,
    measured_rate,
    rate_key,
    refine,
    save_rate,
)


def config(**kw) -> TrainConfig:
    base = dict(data=DataConfig(dataset="synthetic", subset=200, test_subset=100),
                model=ModelConfig("cnn", {"widths": (4, 4, 4, 4), "fc": 16}), optim=OptimConfig(lr=1e-3),
                batch_size=32, epochs=3, device="cpu", eval_batch_size=50)
    base.update(kw)
    return TrainConfig(**base)


def test_estimate_is_start_up_set_up_warm_up_then_epochs_of_training_and_evaluation() -> None:
    rate = Rate(train_ips=100.0, eval_ips=500.0, warmup_s=2.0, setup_s=3.0)
    e = estimate(config(epochs=3), rate, 2000, 1000, process_start_s=5.0)
    # 5 + 3 + 2 + 3 × (2000/100 + 1000/500) = 10 + 3 × 22 = 76
    assert e.seconds == pytest.approx(76.0)
    assert e.basis == "calibrated: 100 img/s train, 500 img/s eval"
    assert e.to_dict() == {"seconds": e.seconds, "basis": e.basis}
    assert estimate_text(Estimate(40.2, "x"), "this CPU") == "≈ 40 s on this CPU (x)"


def test_duration_text_reads_as_a_person_says_it() -> None:
    assert [duration_text(s) for s in (40.4, 89, 600, 5399, 9000)] == ["40 s", "89 s", "10 min", "90 min", "2.5 h"]


def test_refine_replaces_a_calibration_then_averages_times_per_image() -> None:
    calibrated = Rate(100.0, 1000.0, 1.0, 2.0, runs=0)
    first = refine(calibrated, Rate(200.0, 500.0, 3.0, 4.0, runs=1))
    assert first == Rate(200.0, 500.0, 3.0, 4.0, runs=1)  # a whole run beats a few calibration steps
    second = refine(first, Rate(100.0, 1000.0, 1.0, 8.0, runs=1), weight=0.5)
    # time per image averaged: (1/200 + 1/100) / 2 = 0.0075 s -> 133.3 img/s; (1/500 + 1/1000) / 2 -> 666.7
    assert second.train_ips == pytest.approx(1 / 0.0075)
    assert second.eval_ips == pytest.approx(1 / 0.0015)
    assert (second.warmup_s, second.setup_s, second.runs) == (pytest.approx(2.0), pytest.approx(6.0), 2)
    assert refine(None, Rate(50.0, 60.0, 0.0, 1.0, runs=1)).runs == 1


def test_measured_rate_splits_epochs_into_training_evaluation_warm_up_and_set_up() -> None:
    # 1,000 training images, 500 test. Epoch 1 trains at 100 img/s (10 s) in 12 s; epochs 2-3 at 200 img/s (5 s)
    # in 7 s: evaluation took 2 s each time (250 img/s), the first epoch's 5 extra seconds are the warm-up.
    epochs = [EpochTiming(12.0, 100.0), EpochTiming(7.0, 200.0), EpochTiming(7.0, 200.0)]
    r = measured_rate(1000, 500, epochs, run_seconds=30.0)
    assert r is not None
    assert r.train_ips == pytest.approx(200.0)
    assert r.eval_ips == pytest.approx(250.0)
    assert r.warmup_s == pytest.approx(5.0)
    assert r.setup_s == pytest.approx(4.0)  # 30 - (12 + 7 + 7)
    assert r.runs == 1
    # fed back into the estimate, the same run takes what it took (but the process start)
    same = estimate(config(epochs=3), r, 1000, 500, process_start_s=0.0)
    assert same.seconds == pytest.approx(30.0)
    one = measured_rate(1000, 500, [EpochTiming(12.0, 100.0)], run_seconds=13.0)
    assert one is not None and one.train_ips == pytest.approx(100.0) and one.warmup_s == 0.0
    assert measured_rate(1000, 500, [], run_seconds=3.0) is None


def test_rates_round_trip_through_a_settings_table_and_bad_values_read_as_none() -> None:
    settings: dict[str, str] = {}
    key = rate_key(config(), "cpu", bf16=True)
    assert load_rate(settings.get, key) is None
    save_rate(settings.__setitem__, key, Rate(10.0, 20.0, 1.0, 2.0, runs=3))
    assert load_rate(settings.get, key) == Rate(10.0, 20.0, 1.0, 2.0, runs=3)
    other = rate_key(config(batch_size=64), "cpu", bf16=True)
    assert other != key and load_rate(settings.get, other) is None
    assert rate_key(config(), "cpu", bf16=False).precision == "fp32" and key.precision == "bf16"
    assert key.image_size == 32 and key.model.startswith("cnn {")
    assert rate_key(config(model=ModelConfig("resnet18_imagenet", {"image_size": 224})), "cpu", False).image_size == 224
    for bad in ("", "{", '{"train_ips": 0, "eval_ips": 1, "warmup_s": 0, "setup_s": 0}', "[1, 2]"):
        settings[key.setting] = bad
        assert load_rate(settings.get, key) is None


class FakeClock:
    """Returns the given times, one per call."""

    def __init__(self, times: list[float]) -> None:
        self.times = list(times)
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.times.pop(0)


def test_calibration_times_the_first_step_the_steady_steps_and_one_evaluation_batch() -> None:
    # prepare: 0 -> 2 s; first step 2 -> 5 s; 4 steps 5 -> 9 s (1 s each); small eval 9 -> 9.5; eval 9.5 -> 10.
    clock = FakeClock([0.0, 2.0, 5.0, 9.0, 9.5, 10.0])
    cfg = config()
    rate = calibrate(cfg, torch.device("cpu"), num_classes=10, data_s=1.5, steps=4, clock=clock)
    assert clock.calls == 6
    assert rate.train_ips == pytest.approx(32.0)  # batch 32 per 1 s step
    assert rate.eval_ips == pytest.approx(50 / 0.5)  # the eval batch of 50 images in 0.5 s
    assert rate.warmup_s == pytest.approx(2.0)  # the first step's 3 s less a steady step's 1 s
    assert rate.setup_s == pytest.approx(1.5 + 2.0)  # the data the caller measured + the model's set-up
    assert rate.runs == 0 and all(math.isfinite(v) for v in (rate.train_ips, rate.eval_ips))
