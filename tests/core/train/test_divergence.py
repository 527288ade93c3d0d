"""core.train.divergence: the rule against loss sequences that must and must not count as diverged.

The oracle is written out by hand per sequence: where the rule must fire (the step whose window's median is the
first above RISE_FACTOR × max(first loss, ln classes)), or that it must never fire.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from core.train.divergence import RISE_FACTOR, WINDOW_STEPS, Divergence, DivergenceDetector

LN10 = math.log(10)


def run(losses: list[float], num_classes: int = 10, steps_per_epoch: int = 20) -> Divergence | None:
    """Feed `losses` as steps 1, 2, ...; the first Divergence found, else None."""
    d = DivergenceDetector(num_classes)
    for i, loss in enumerate(losses):
        step = i + 1
        found = d.feed(step, (step - 1) // steps_per_epoch + 1, loss)
        if found is not None:
            return found
    return None


# Measured shapes (docs/PERFORMANCE.md): the cnn preset on the synthetic set, per-step training loss.
LR100 = [2.3, 5.72e23, 8.94e20, 6.84e20, 6.92e20, 6.39e19, 2.62e13, 1.87e11, 1.91e16, 6.7e6, 6.25e6, 5.17e6]
LR04 = [2.3, 2.51e9, 4.1e6, 2.74e5, 1.58e4, 4.06e3, 222, 93.9, 94, 65.2, 66.4, 65.5, 51.2, 92.1, 1.27e4]


def test_measured_blow_ups_are_caught_as_soon_as_the_window_is_full() -> None:
    for losses in (LR100, LR04):
        found = run(losses)
        assert found is not None and not found.non_finite
        assert (found.epoch, found.step) == (1, WINDOW_STEPS)
        assert found.start == pytest.approx(2.3)
        assert found.loss == pytest.approx(statistics.median(losses[:WINDOW_STEPS]))  # the window's median
        assert found.loss > 1e3


def test_a_non_finite_loss_is_divergence_at_that_step() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        found = run([2.3, 2.2, 2.1, bad, 2.0], steps_per_epoch=2)
        assert found is not None and found.non_finite
        assert (found.epoch, found.step) == (2, 4)
        assert found.start == pytest.approx(2.3)
    first = run([math.nan])
    assert first is not None and first.step == 1 and first.non_finite


def test_a_slow_rise_that_stays_up_fires_once_most_of_the_window_is_above() -> None:
    # 2.3 for 20 steps, then 10 (above 3 × 2.3 = 6.9) for good: the median crosses once 6 of 10 are up.
    losses = [2.3] * 20 + [10.0] * 20
    found = run(losses)
    assert found is not None and found.step == 20 + WINDOW_STEPS // 2 + 1
    assert found.loss == pytest.approx(10.0)


def test_adams_noisy_start_at_1e_4_never_fires() -> None:
    # Adam at 1e-4: the loss wobbles around ln 10 for a while, then falls; now and then one step spikes.
    rng = random.Random(0)
    losses = []
    for i in range(400):
        base = LN10 * (1.0 if i < 30 else max(0.3, 1 - (i - 30) / 300))
        loss = base * (1 + rng.uniform(-0.15, 0.15))
        if i % 23 == 7:
            loss *= 20  # a hard batch
        losses.append(loss)
    assert run(losses) is None


def test_batch_norms_jump_at_the_start_never_fires() -> None:
    # Measured: cnn-bn (Adam 1e-4) on 5,000 CIFAR-10 images jumps to 2.7x its first loss, then comes down.
    losses = [2.38, 6.43, 6.05, 4.68, 4, 4.13, 3.55, 3.58, 3.05, 2.64, 2.32, 2.31, 2.32, 2.18, 2.04, 2.04, 1.99]
    assert run(losses) is None


def test_isolated_spikes_never_fire_even_huge_ones() -> None:
    # Three spikes in every ten steps (any ten consecutive steps hold exactly three): never half the window.
    losses = [2.3] + [1e9, 2.2, 1e6, 2.1, 2.0, 1e12, 2.0, 2.0, 2.0, 2.0] * 10
    assert run(losses) is None


def test_a_warm_up_bump_below_the_factor_never_fires() -> None:
    # SGD warming up: the loss climbs to twice its start for a whole epoch, then comes down.
    losses = [2.3 + 0.1 * i for i in range(23)] + [4.6] * 20 + [4.6 - 0.1 * i for i in range(30)]
    assert max(losses) < RISE_FACTOR * 2.3
    assert run(losses) is None


def test_a_resumed_run_far_below_chance_is_measured_from_chance() -> None:
    # Resumed at loss 0.3: climbing back to 2.0 (below 3 × ln 10) is not divergence; climbing to 30 is.
    assert run([0.3] * 5 + [2.0] * 40) is None
    found = run([0.3] * 5 + [30.0] * 40)
    assert found is not None and found.start == pytest.approx(0.3)
    assert found.step == WINDOW_STEPS and found.loss == pytest.approx((0.3 + 30.0) / 2)  # median of 5 + 5


def test_the_reference_is_chance_for_a_hundred_classes() -> None:
    d = DivergenceDetector(100)
    d.feed(1, 1, 5.0)  # above ln 100 = 4.61: the first loss is the reference
    assert d.reference == pytest.approx(5.0)
    assert d.threshold == pytest.approx(RISE_FACTOR * 5.0)
    d = DivergenceDetector(100)
    d.feed(1, 1, 1.0)
    assert d.reference == pytest.approx(math.log(100))


def test_once_found_it_stays_found() -> None:
    d = DivergenceDetector(10)
    first = None
    for i, loss in enumerate(LR100):
        first = first or d.feed(i + 1, 1, loss)
    assert first is not None
    assert d.feed(99, 5, 2.3) is first


def test_reason_says_where_what_and_a_tenth_of_the_lr() -> None:
    d = Divergence(epoch=1, step=40, loss=2.1e7, start=4.6, non_finite=False)
    text = d.reason(0.4)
    assert text.startswith("diverged at epoch 1, step 40: loss 2.1e+07 (started at 4.6)")
    assert "too high" in text and "(0.04)" in text
    assert "tenth" in d.reason(None)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        DivergenceDetector(10, window=0)
    with pytest.raises(ValueError):
        DivergenceDetector(10, factor=1.0)
