"""fastai 2.8's suggestion functions (valley, slide, minimum, steep) against answers worked out by hand on fixed
curves, the window fastai's lr_find gives them, and the lab's own rules keeping names of their own."""

import pytest

from core.train.lr_suggest import (
    FASTAI,
    SUGGESTIONS,
    fastai_slide_lr,
    fastai_suggestions,
    fastai_valley_index,
    fastai_window,
    suggest,
)


def decades(n: int, first: float = -6.0) -> list[float]:
    """n LRs ten to a decade: 1e-6, 10^-5.9, ..."""
    return [10 ** (first + i / 10) for i in range(n)]


def test_valley_is_the_longest_decreasing_subsequence_about_half_way():
    # Longest strictly decreasing subsequence ending at each point (worked by hand):
    #   losses 5  6  4  3  3.5  2  1  2  3
    #   length 1  1  2  3  3    4  5  4  4
    # The leader is point 6 (length 5, first reached there); start = 6 - 5 = 1;
    # index = 1 + floor(5/3) + floor(5/6) = 1 + 1 + 0 = 2.
    assert fastai_valley_index([5, 6, 4, 3, 3.5, 2, 1, 2, 3]) == (2, 1, 6)
    # Not a run of neighbours: 9 8 7 6 2 (skipping the 3) is the longest, length 5, ending at point 5;
    # start = 5 - 5 = 0, index = 0 + 1 + 0 = 1 - the 3, which is not even on the subsequence.
    assert fastai_valley_index([9, 3, 8, 7, 6, 2]) == (1, 0, 5)
    # A steady fall of 30 points from the first: L = 30 ends at 29, start = -1, index -1 + 10 + 5 = 14:
    # half-way, where the lab's "descent 2/3" sits at two thirds.
    falling = [3.0 - 0.05 * i for i in range(30)]
    assert fastai_valley_index(falling) == (14, -1, 29)
    # ties: the first end to reach the greatest length wins (strictly greater replaces the leader)
    assert fastai_valley_index([4, 3, 5, 2])[2] == 3 and fastai_valley_index([3, 2, 3, 2])[2] == 1
    assert fastai_valley_index([1.0]) == (0, 0, 0)
    assert fastai_valley_index([1.0, 2.0, 3.0]) == (0, 0, 0)  # nothing falls: the first point


def test_slide_moves_left_until_the_slopes_at_both_ends_agree():
    # 31 points: flat up to point 20, then rising 0.2 per point. np.gradient: 0 up to 19, 0.1 at 20, 0.2 after.
    # Pairs (r, r - 15): (30, 15) … (21, 6) differ by 0.2, (20, 5) by 0.1 -> each takes lrs[l]; (19, 4) agree
    # (0 vs 0): stop. The last one taken: lrs[5].
    lrs = decades(31)
    flat_then_up = [2.0 if i <= 20 else 2.0 + 0.2 * (i - 20) for i in range(31)]
    assert fastai_slide_lr(lrs, flat_then_up) == lrs[5]
    # slopes that already agree at the start: the first point taken, lrs[n - 16]
    assert fastai_slide_lr(lrs, [2.0 - 0.01 * i for i in range(31)]) == lrs[31 - 16]
    # never agreeing: slides to the first point
    falling_then_up = [2.0 - 0.1 * i if i <= 15 else 0.5 + 0.3 * (i - 15) for i in range(31)]
    assert fastai_slide_lr(lrs, falling_then_up) == lrs[0]
    assert fastai_slide_lr(lrs[:15], flat_then_up[:15]) is None  # fastai: IndexError


def test_fastai_window_is_num_iter_over_10_to_the_fifth_last():
    lrs = decades(30)
    xs, ys = fastai_window(lrs, list(range(30)), num_iter=40)
    assert xs == lrs[4:25] and ys == list(range(4, 25))
    assert fastai_window(lrs[:7], list(range(7)), num_iter=100) == ([], [])  # 10 .. 2: nothing left


def test_the_four_on_one_curve():
    # 40 points, num_iter 50 -> window 5..34 (30 points). In the window: flat at 3 to point 9, then falls
    # 0.1, 0.1, 0.4 (the steepest, from 12 to 13), 0.1 … down to point 24, then rises 0.2 a point.
    lrs = decades(40)
    sm = [3.0] * 10
    for i in range(10, 25):
        sm.append(sm[-1] - (0.4 if i == 13 else 0.1))
    sm += [sm[-1] + 0.2 * k for k in range(1, 16)]
    s = fastai_suggestions(lrs, sm, num_iter=50)
    assert list(s) == list(FASTAI)
    # minimum: lowest at point 24 (window index 19); a tenth = one decade = 10 points back
    assert s["fastai minimum"].lr == pytest.approx(lrs[14], rel=1e-12)
    # steep: the left point of the steepest segment, 12 -> 13
    assert s["fastai steep"].lr == lrs[12]
    # valley in the window (points 5..34): the longest decreasing subsequence is 3 (one of the flat points) then
    # 10..24: length 16, ending at window index 19; start = 19 - 16 = 3; index 3 + 5 + 2 = 10 -> point 15
    assert s["fastai valley"].lr == lrs[15] and "16 points" in s["fastai valley"].reason
    # slide, np.gradient per point over the window: 0 on the flat (5..8), -0.05 at 9, -0.1 at 10-11, -0.25 at
    # 12-13, -0.1 at 14..23, 0.05 at 24, 0.2 at 25..34. From (r, l) = (34, 19) leftwards the two ends never agree
    # (0.2 vs -0.1, …, 0.05 vs -0.05 at (24, 9), -0.1 vs 0 down to (20, 5)): it slides to the window's first point.
    assert s["fastai slide"].lr == lrs[5]
    for v in s.values():
        assert v.loss is not None and min(sm) <= v.loss <= max(sm) and v.reason


def test_fastai_answers_an_empty_window_with_a_reason():
    for v in fastai_suggestions(decades(6), [2.0] * 6, num_iter=100).values():
        assert v.lr is None and "run more steps" in v.reason


def test_lab_rules_have_names_of_their_own():
    assert set(SUGGESTIONS).isdisjoint(FASTAI) and "valley" not in SUGGESTIONS
    # on a steady fall the lab's descent sits at two thirds, fastai's valley at about half
    lrs = decades(60)
    sm = [3.0] * 10 + [3.0 - 0.05 * i for i in range(1, 31)] + [1.5 + 0.3 * i for i in range(1, 21)]
    lab, fa = suggest(lrs, sm), fastai_suggestions(lrs, sm, num_iter=60)
    # lab: window 6..56; the unbroken descent 9..39 (31 points), two thirds = 9 + 2 * 30 // 3 = 29.
    # fastai: window 6..54; the subsequence is one flat 3.0 then 10..39 (L = 31, ending at window index 33),
    # start 33 - 31 = 2, index 2 + 10 + 5 = 17 -> point 23. Six points = 0.6 decades apart.
    assert lab["descent 2/3"].lr == lrs[29] and fa["fastai valley"].lr == lrs[23]
