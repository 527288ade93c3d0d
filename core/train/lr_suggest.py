"""Suggested learning rates from a range test's curve: pure functions on (lrs, smoothed losses) -> Suggestion.

Two vocabularies, each under its own names so that one word never means two rules:
- the lab's own (`suggest`): `steepest`, `minimum/10` and `descent 2/3`, on the window that leaves out the first
  10% and the last 5% of the points (see default_skips);
- fastai 2.8's four (`fastai_suggestions`): `fastai valley`, `fastai slide`, `fastai minimum`, `fastai steep`,
  computed as fastai's `Learner.lr_find` computes them - on the window `[num_iter // 10 : -5]` of the smoothed
  losses, with fastai's own definitions, quirks included (written here from their published description; the
  tests check them against hand-computed answers on fixed curves).
The recommendation the lab stands behind is core.train.lr_recommend; the LR sequence and the smoothing that
make a curve are core.train.lr_finder's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SUGGESTIONS = ("steepest", "minimum/10", "descent 2/3")  # the lab's own
FASTAI = ("fastai valley", "fastai slide", "fastai minimum", "fastai steep")
MIN_POINTS = 5  # fewer points than this (after skipping) and no suggestion is made
MIN_FALL = 0.01  # a smoothed loss that falls less than this fraction is treated as noise: no suggestion
FASTAI_SKIP_END = 5  # fastai's lr_find drops the last 5 recorded points, whatever num_iter is
SLIDE_LR_DIFF, SLIDE_THRESH = 15, 0.005  # fastai's slide defaults (points apart; loss per point)


@dataclass(frozen=True)
class Suggestion:
    """A suggested learning rate (None when the curve does not support one) and why."""

    name: str  # one of SUGGESTIONS or FASTAI
    lr: float | None
    loss: float | None  # the smoothed curve at `lr` (log-LR interpolation), for plotting; None off the curve
    reason: str  # why this LR, or why none


def curve_value(lrs: Sequence[float], smoothed: Sequence[float], lr: float) -> float | None:
    """The smoothed curve at `lr`, linear in log10(LR) between points; None outside the tested range."""
    if not lrs or not lrs[0] <= lr <= lrs[-1]:
        return None
    return float(np.interp(math.log10(lr), np.log10(lrs), smoothed))


def default_skips(n: int) -> tuple[int, int]:
    """Points left out at each end before suggesting: the first 10% (at least 1: the EMA has seen only one loss
    there) and the last 5% (at least 1: where the test stopped, the loss is often already exploding)."""
    return max(1, math.ceil(0.1 * n)), max(1, math.ceil(0.05 * n))


def window(lrs: Sequence[float], smoothed: Sequence[float], skip_start: int | None = None,
           skip_end: int | None = None) -> tuple[list[float], list[float], int, int]:
    """(lrs, smoothed, skip_start, skip_end) of the lab's window (default_skips unless given)."""
    n = len(lrs)
    if len(smoothed) != n:
        raise ValueError(f"lrs and smoothed differ in length ({n} vs {len(smoothed)})")
    d_start, d_end = default_skips(n)
    s0 = d_start if skip_start is None else max(0, skip_start)
    s1 = d_end if skip_end is None else max(0, skip_end)
    stop = max(s0, n - s1)
    return [float(v) for v in lrs[s0:stop]], [float(v) for v in smoothed[s0:stop]], s0, s1


def no_fall_reason(xs: Sequence[float], ys: Sequence[float], n: int, s0: int, s1: int) -> str | None:
    """Why this window supports no suggestion (too short, never falls, falls less than MIN_FALL), or None."""
    if len(xs) < MIN_POINTS:
        return (f"too few points: {n} on the curve, {len(xs)} after leaving out the first {s0} and the last {s1}; "
                f"at least {MIN_POINTS} are needed (run more steps, or start lower if it stopped early)")
    span = f"between lr {xs[0]:.3g} and {xs[-1]:.3g}"
    k = int(np.argmin(ys))
    if k == 0:
        return f"the smoothed loss never falls {span} (it is lowest at the first point): try a smaller start_lr"
    fall = ys[0] - ys[k]
    if fall <= MIN_FALL * abs(ys[0]):
        return (f"the smoothed loss falls only {fall / abs(ys[0]):.2%} {span}, too little to tell learning from "
                "noise: try more steps or a larger end_lr")
    return None


def suggest(lrs: Sequence[float], smoothed: Sequence[float], *, skip_start: int | None = None,
            skip_end: int | None = None) -> dict[str, Suggestion]:
    """The lab's three suggestions, from the smoothed curve between the skipped ends (see default_skips):

    minimum/10:  the LR of the lowest smoothed loss, divided by 10 (one decade before things go wrong).
    steepest:    the LR where the smoothed loss falls fastest against log10(LR) (np.gradient over the window:
                 central differences inside, one-sided at its ends), among the points up to the lowest one.
    descent 2/3: the point two thirds of the way (index start + 2 * (length - 1) // 3, rounded towards the lower
                 LR) along the longest run of *consecutive* strictly decreasing smoothed losses up to the lowest
                 point, at least 3 points long (the first run wins a tie). Not fastai's valley, which takes the
                 longest decreasing *subsequence* and lands near its middle (see fastai_valley).
    Falls after the lowest point are recoveries from a spike, not usable LRs, hence "up to the lowest point".
    Too few points, a curve whose lowest point is its first, or one that falls less than MIN_FALL (relative)
    give lr=None with the reason; never an exception.
    """
    n = len(lrs)
    xs, ys, s0, s1 = window(lrs, smoothed, skip_start, skip_end)
    why = no_fall_reason(xs, ys, n, s0, s1)
    if why is not None:
        return {name: Suggestion(name, None, None, why) for name in SUGGESTIONS}

    def make(name: str, lr: float, reason: str) -> Suggestion:
        return Suggestion(name, float(lr), curve_value(lrs, smoothed, lr), reason)

    k = int(np.argmin(ys))
    still_falling = k == len(ys) - 1 and float(smoothed[-1]) <= ys[k]  # no turn after the window either
    note = " (the loss was still falling at the end: try a larger end_lr)" if still_falling else ""
    out = {"minimum/10": make("minimum/10", xs[k] / 10, f"the smoothed loss is lowest ({ys[k]:.3g}) at lr "
                              f"{xs[k]:.3g}; a tenth of that stays clear of where it turns up{note}")}

    grads = np.gradient(np.asarray(ys), np.log10(np.asarray(xs)))  # over the window: central at k too
    j = int(np.argmin(grads[:k + 1]))
    out["steepest"] = make("steepest", xs[j], f"the smoothed loss falls fastest here ({grads[j]:.3g} per tenfold "
                                              "increase of the LR)")

    best_a, best_len, a = 0, 1, 0  # longest run ys[a] > ys[a+1] > ... within ys[:k+1] (length in points)
    for i in range(1, k + 2):
        if i == k + 1 or not ys[i] < ys[i - 1]:
            if i - a > best_len:
                best_a, best_len = a, i - a
            a = i
    if best_len >= 3:
        at = best_a + 2 * (best_len - 1) // 3
        out["descent 2/3"] = make("descent 2/3", xs[at], f"two thirds along the longest unbroken descent "
                                  f"({best_len} falling points, lr {xs[best_a]:.3g} to {xs[best_a + best_len - 1]:.3g})")
    else:
        out["descent 2/3"] = Suggestion("descent 2/3", None, None, "no unbroken descent of at least 3 falling points "
                                        f"between lr {xs[0]:.3g} and {xs[-1]:.3g}: the curve is too noisy; try a "
                                        "larger beta or more steps")
    return {name: out[name] for name in SUGGESTIONS}


# --- fastai 2.8's suggestion functions ---------------------------------------------------------------------------

def fastai_window(lrs: Sequence[float], smoothed: Sequence[float],
                  num_iter: int) -> tuple[list[float], list[float]]:
    """The points fastai's lr_find hands its suggestion functions: [num_iter // 10 : -5] of the recorded curve
    (num_iter is the test's requested length, not the points recorded: an early stop keeps the same start)."""
    if len(smoothed) != len(lrs):
        raise ValueError(f"lrs and smoothed differ in length ({len(lrs)} vs {len(smoothed)})")
    stop = max(0, len(lrs) - FASTAI_SKIP_END)
    start = num_iter // 10
    return [float(v) for v in lrs[start:stop]], [float(v) for v in smoothed[start:stop]]


def fastai_valley_index(losses: Sequence[float]) -> tuple[int, int, int]:
    """(index, start, end) of fastai's valley: `end` is the last point of the longest strictly decreasing
    subsequence (its points need not be neighbours; the first end to reach the greatest length wins), L that
    length, `start = end - L` (fastai's bookkeeping: one before the first point when the subsequence is a run of
    neighbours) and the index start + floor(L/3) + floor(L/6): about half-way, not two thirds. The one place this
    departs from fastai: L = 2 starting at point 0 would give index -1, which fastai reads as the *last* point;
    here it is 0."""
    n = len(losses)
    longest = [1] * n  # longest[i]: the longest strictly decreasing subsequence ending at point i
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[j] + 1 > longest[i]:
                longest[i] = longest[j] + 1
            if longest[i] > longest[end]:
                end, start = i, i - longest[i]
    third = (end - start) / 3
    return max(0, start + int(third) + int(third / 2)), start, end


def fastai_slide_lr(lrs: Sequence[float], losses: Sequence[float], lr_diff: int = SLIDE_LR_DIFF,
                    thresh: float = SLIDE_THRESH) -> float | None:
    """fastai's slide: with g = np.gradient(losses) (per point, not per log-LR), start from the last point r
    and l = r - lr_diff; while l is on the curve and |g[r] - g[l]| > thresh, take lrs[l] and slide both one
    point left. The LR taken last is the suggestion. None when the curve has no point lr_diff before its end
    (fastai raises an IndexError there)."""
    n = len(losses)
    if n < lr_diff + 1:
        return None
    g = np.gradient(np.asarray(losses, dtype=float)) if n > 1 else np.zeros(n)
    r, left = n - 1, n - 1 - lr_diff
    picked = lrs[left]
    while left >= 0 and abs(g[r] - g[left]) > thresh:
        picked = lrs[left]
        r, left = r - 1, left - 1
    return float(picked)


def fastai_suggestions(lrs: Sequence[float], smoothed: Sequence[float], num_iter: int) -> dict[str, Suggestion]:
    """fastai 2.8's four suggestions on this curve (see fastai_window for the points they see):

    fastai valley:  fastai_valley_index's point.
    fastai slide:   fastai_slide_lr (lr_diff 15, thresh 0.005).
    fastai minimum: the LR of the lowest smoothed loss (the first, on a tie), divided by 10.
    fastai steep:   the left point of the steepest segment, (loss[i+1] - loss[i]) / (ln lr[i+1] - ln lr[i]).
    An empty window (or too short a one for slide) gives lr=None with the reason. fastai itself answers
    something on any non-empty curve - a rising one included; the reasons say what each answer rests on.
    """
    xs, ys = fastai_window(lrs, smoothed, num_iter)
    names = FASTAI
    if not xs:
        why = (f"fastai looks at points {num_iter // 10} to {len(lrs) - FASTAI_SKIP_END} of the curve, and it has "
               f"{len(lrs)}: run more steps")
        return {name: Suggestion(name, None, None, why) for name in names}

    def make(name: str, lr: float, reason: str) -> Suggestion:
        return Suggestion(name, float(lr), curve_value(lrs, smoothed, lr), reason)

    out: dict[str, Suggestion] = {}
    idx, start, end = fastai_valley_index(ys)
    out["fastai valley"] = make("fastai valley", xs[idx], f"fastai's valley: the longest decreasing subsequence "
                                f"of the smoothed loss ({end - start} points, ending at lr {xs[end]:.3g}), "
                                "about half-way along it")
    slid = fastai_slide_lr(xs, ys)
    out["fastai slide"] = (make("fastai slide", slid, "fastai's slide: sliding a 15-point interval left from the "
                                "end until the loss's slope at both ends agrees within 0.005")
                           if slid is not None else
                           Suggestion("fastai slide", None, None, f"fastai's slide needs more than {SLIDE_LR_DIFF} "
                                      f"points in its window, this curve has {len(xs)}: run more steps"))
    k = int(np.argmin(ys))
    out["fastai minimum"] = make("fastai minimum", xs[k] / 10, f"fastai's minimum: a tenth of lr {xs[k]:.3g}, "
                                 f"where the smoothed loss is lowest ({ys[k]:.3g})")
    if len(xs) >= 2:
        slopes = np.diff(ys) / np.diff(np.log(xs))
        s = int(np.argmin(slopes))
        out["fastai steep"] = make("fastai steep", xs[s], "fastai's steep: where the smoothed loss falls fastest "
                                   f"between two neighbouring points ({slopes[s] * math.log(10):.3g} per decade)")
    else:
        out["fastai steep"] = Suggestion("fastai steep", None, None, "fastai's steep needs two points in its window")
    return {name: out[name] for name in names}
