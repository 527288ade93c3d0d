"""The lab's recommendation (half-fall) on curves with a known answer: where it lands, the guard a decade below
the blow-up, a weak fall used with a warning, noise and too-short tests refused with what to change."""

import numpy as np
import pytest

from core.train.lr_finder import smooth
from core.train.lr_recommend import HALF_FALL, MORE, RECOMMENDED, recommend


def decades(n: int, first: float = -6.0) -> list[float]:
    return [10 ** (first + i / 10) for i in range(n)]


def rec(lrs, sm, raw=None, beta=0.98, **kw):
    """recommend() on a hand-made smoothed curve; its raw losses, unless given, are the curve itself (no noise)."""
    return recommend(lrs, sm, losses=sm if raw is None else raw, beta=beta, **kw)


LRS = decades(60)  # window: points 6 .. 56 (the first 10% and the last 5% left out)


def test_half_way_down_a_steady_fall():
    # flat at 3 to point 19, then 0.05 a point down to 2.0 at point 39, then up 0.2 a point.
    # Start level 3.0 (median of the window's first tenth), lowest 2.0: half-way is 2.5, reached at point 29.
    # Back above 3.0 at point 45: a decade below is point 35, above 29 - no guard needed.
    sm = [3.0] * 20 + [3.0 - 0.05 * (i - 19) for i in range(20, 40)] + [2.0 + 0.2 * (i - 39) for i in range(40, 60)]
    r = rec(LRS, sm, num_iter=60, stop_reason="smoothed loss exceeded 4× the best")
    assert r.name == HALF_FALL and r.lr == pytest.approx(LRS[29], rel=1e-9)
    assert r.loss == pytest.approx(2.5, abs=1e-9) and r.advice == "" and "half of that fall" in r.reason
    assert r.as_suggestion().name == RECOMMENDED and r.as_suggestion().lr == r.lr
    assert r.to_dict() == {"name": HALF_FALL, "lr": r.lr, "reason": r.reason, "advice": ""}


def test_never_within_a_decade_of_the_blow_up():
    # flat at 3 to point 39, 0.2 a point down to 2.0 at 44, then 0.5 a point up: back above 3 at point 47.
    # Half-way (2.5) is between points 41 and 42 - less than a decade below 47: lowered to lrs[47] / 10.
    sm = [3.0] * 40 + [3.0 - 0.2 * (i - 39) for i in range(40, 45)] + [2.0 + 0.5 * (i - 44) for i in range(45, 60)]
    r = rec(LRS, sm, stop_reason="smoothed loss exceeded 4× the best")
    assert r.lr == pytest.approx(LRS[47] / 10, rel=1e-12) and "a decade below" in r.reason


def test_a_small_but_clear_fall_is_used_with_a_warning():
    # like the report's CNN with SGD: 0.5% down over 20 points, the batches' losses 0.002 apart (noise of the
    # smoothed level 0.002·0.1 = 2e-4, the fall 0.012: 60 times that)
    sm = [2.3] * 30 + [2.3 - 0.0006 * (i - 29) for i in range(30, 50)] + [2.288 + 0.05 * (i - 49) for i in range(50, 60)]
    raw = [v + (0.001 if i % 2 else -0.001) for i, v in enumerate(sm)]
    r = rec(LRS, sm, raw, stop_reason="reached end_lr")
    assert r.lr is not None and LRS[30] < r.lr < LRS[49]
    assert "the fall is small" in r.reason and r.advice == MORE


@pytest.mark.parametrize("beta", [0.98, 0.9, 0.5])
def test_noise_alone_gets_no_recommendation_but_what_to_change(beta):
    lrs = decades(100)
    for seed in range(10):
        raw = list(2.3 + np.random.default_rng(seed).normal(0.0, 0.05, 100))
        r = recommend(lrs, smooth(raw, beta), losses=raw, beta=beta, stop_reason="reached end_lr")
        assert r.lr is None and r.loss is None, (seed, r.reason)
        assert "no more than its noise" in r.reason or "never falls" in r.reason
        assert r.advice == MORE and "batch norm" in r.advice and "more steps" in r.advice


def test_still_falling_at_the_end_and_too_short_and_running():
    sm = [3.0] * 20 + [3.0 - 0.02 * (i - 19) for i in range(20, 60)]
    r = rec(LRS, sm, stop_reason="reached end_lr")
    assert r.lr is not None and "end_lr" in r.advice
    short = rec(LRS[:4], [3.0, 2.9, 2.8, 2.7], num_iter=100, stop_reason="")
    assert short.lr is None and "too few points" in short.reason and "run the test further" in short.advice
    assert "so far" in rec(LRS, sm, stop_reason="").reason  # the test is still running
    assert rec(LRS, [3.0 + 0.01 * i for i in range(60)], stop_reason="x").lr is None  # only rises
