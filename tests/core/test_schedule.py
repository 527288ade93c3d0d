"""LR schedules: exact values at known steps, so the curve drawn before a run is the one the run uses."""

import math

import pytest

from core.config import OptimConfig
from core.train.schedule import lr_at, schedule_curve, steps_per_epoch


def test_constant_and_warmup():
    assert schedule_curve(OptimConfig(lr=0.1), 10, 2) == [0.1] * 20
    c = schedule_curve(OptimConfig(lr=0.1, warmup_epochs=1), 10, 2)
    assert c[0] == pytest.approx(0.1 / 11) and c[9] == pytest.approx(0.1 * 10 / 11) and c[10:] == [0.1] * 10


def test_step_schedule():
    o = OptimConfig(lr=1.0, schedule="step", step_epochs=2, step_gamma=0.5)
    assert [lr_at(o, e * 5, 5, 6) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]


def test_cosine_goes_from_peak_to_zero():
    c = schedule_curve(OptimConfig(lr=2.0, schedule="cosine"), 10, 10)
    assert c[0] == 2.0 and c[-1] == pytest.approx(0.0, abs=1e-12)
    assert c[len(c) // 2] == pytest.approx(1.0, rel=0.05)
    assert all(a >= b for a, b in zip(c, c[1:]))


def test_onecycle_shape():
    o = OptimConfig(lr=1.0, schedule="onecycle", warmup_epochs=3)
    c = schedule_curve(o, 10, 10)
    assert c[0] == pytest.approx(1 / 25) and max(c) == pytest.approx(1.0) and c.index(max(c)) == 30
    assert c[-1] == pytest.approx(1e-4) and all(math.isfinite(x) for x in c)


def test_steps_per_epoch_drops_a_single_image_tail():
    assert steps_per_epoch(512, 256) == 2 and steps_per_epoch(513, 256) == 2 and steps_per_epoch(514, 256) == 3
    assert steps_per_epoch(10, 256) == 1
