"""The learning rate the lab recommends from a range test's curve, and what to change when the curve has none.

`recommend(lrs, smoothed, losses=..., beta=..., num_iter=..., stop_reason=...)` -> Recommendation(name, lr, loss,
reason, advice): the `half-fall` rule with a guard against the blow-up and a test of whether the curve fell at
all (see recommend).
Pure functions on plain lists: the CLI's pick, the page's default and "apply & queue" all come from here, and
scripts/lr_bench.py measures it against the report's 1e-4 and fastai's valley (table in docs/LR_FINDER.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.train.lr_suggest import (
    MIN_FALL,
    MIN_POINTS,
    Suggestion,
    curve_value,
    fastai_suggestions,
    suggest,
    window,
)

RECOMMENDED = "recommended"
HALF_FALL = "half-fall"  # the rule the recommendation comes from (its name in the JSON and on the page)


@dataclass(frozen=True)
class Recommendation:
    """The lab's pick: which rule gave it (`name`), the LR (None when the curve gives no usable answer), the
    smoothed loss there (for the chart), why, and what to change for a better answer ("" when nothing)."""

    name: str
    lr: float | None
    loss: float | None
    reason: str
    advice: str = ""

    def as_suggestion(self) -> Suggestion:
        """The chart's view of it: a suggestion named `recommended`."""
        return Suggestion(RECOMMENDED, self.lr, self.loss, self.reason)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "lr": self.lr, "reason": self.reason, "advice": self.advice}


HALF = 0.5  # the fraction of the total fall: "half-fall"
# A fall counts when it exceeds NOISE_Z times the noise of the smoothed level: sigma·sqrt((1-beta)/(1+beta)),
# sigma the batch-to-batch noise of the raw losses (robust: the MAD of their differences, which a trend barely
# moves). On pure noise (400 seeded curves of 100 or 300 steps, beta 0, 0.5, 0.9, 0.98) the ratio stayed under
# 9.2 (20 steps at beta 0.98: 99% under 15 - a short test is refused more often); the report's CNN on CIFAR-10
# gave 39 (Adam) and 52 (SGD, whose loss fell only 0.6%, smoothly).
NOISE_Z = 12.0
MIN_REC_FALL = 0.001  # and 0.1% of the loss: below that no curve is trusted, however smooth
BLOWUP_MARGIN = 10.0  # never within a decade of where the loss came back above its start
MORE = ("run more steps (300 instead of 100 gives each learning rate three batches), widen the range (a larger "
        "end_lr), or add batch norm (the + batch norm preset), which makes the curve fall clearly")


def _crossing(xs: Sequence[float], ys: Sequence[float], target: float, k: int) -> float:
    """The LR where ys first reaches `target` on its way down to ys[k], linear in log10(LR) between points."""
    i = next(i for i in range(k + 1) if ys[i] <= target)
    if i == 0:
        return float(xs[0])
    t = (ys[i - 1] - target) / (ys[i - 1] - ys[i])  # in (0, 1]: ys[i - 1] > target >= ys[i]
    return float(10 ** (math.log10(xs[i - 1]) + t * (math.log10(xs[i]) - math.log10(xs[i - 1]))))


def _blowup(lrs: Sequence[float], smoothed: Sequence[float], after_lr: float, level: float) -> float | None:
    """The first LR above after_lr where the smoothed loss is back above `level` (None: it never is)."""
    return next((float(x) for x, y in zip(lrs, smoothed, strict=True) if x > after_lr and y > level), None)


def level_noise(losses: Sequence[float], beta: float) -> float:
    """The noise of the smoothed curve's level: sigma·sqrt((1-beta)/(1+beta)), sigma the raw losses' noise
    estimated from their point-to-point differences (1.4826·MAD / sqrt(2): a slow trend shifts them all alike)."""
    if len(losses) < 3:
        return math.inf
    d = np.diff(np.asarray(losses, dtype=float))
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2)
    return sigma * math.sqrt((1 - beta) / (1 + beta))


def recommend(lrs: Sequence[float], smoothed: Sequence[float], *, losses: Sequence[float], beta: float,
              num_iter: int | None = None, stop_reason: str = "") -> Recommendation:
    """The lab's pick, `half-fall`: on the lab's window (core.train.lr_suggest.window), the LR where the smoothed
    loss has made half of its fall from where it starts (the median of the window's first tenth) to its lowest
    point (log-LR interpolation).

    Why: a fixed ratio to the minimum does not carry across optimizers - on the report's CNN with real CIFAR-10
    images the best short run was at ~1/10 of the minimum's LR with Adam and at the minimum with SGD (docs/
    LR_FINDER.md) - but in both the loss had made about half its fall there. Adam's curve falls long and early
    (half-way is well before the bottom); SGD's falls late and briefly (half-way is near it).
    Guards: never within a decade (BLOWUP_MARGIN) of the first LR past the minimum where the loss is back above
    its start; a fall that does not stand out from the noise of the raw `losses` (NOISE_Z; the smoothing's
    `beta` scales it) or is under MIN_REC_FALL of the loss gives lr=None with what to change (MORE). A fall
    under the lab's MIN_FALL is still used, with a warning and the same advice. `num_iter` and `stop_reason` (the finder's; ""
    while it runs) only shape the words: a test still running gives a provisional pick.
    """
    n = len(lrs)
    if len(losses) != n:
        raise ValueError(f"lrs and losses differ in length ({n} vs {len(losses)})")
    xs, ys, s0, _ = window(lrs, smoothed)
    provisional = "" if stop_reason else " (so far: the test is still running)"
    if len(xs) < MIN_POINTS:
        return Recommendation(HALF_FALL, None, None, f"too few points yet ({n}){provisional}",
                              "run the test further" + (f" (it has {num_iter} steps)" if num_iter else ""))
    k = int(np.argmin(ys))
    start = float(np.median(ys[:max(3, len(ys) // 10)]))  # the level it falls from: one noisy point is no level
    fall = start - ys[k]
    noise = NOISE_Z * level_noise(losses[s0:s0 + len(xs)], beta)
    if k == 0 or fall <= max(noise, MIN_REC_FALL * abs(start)):
        what = ("never falls" if k == 0 else
                f"falls by {fall:.3g} ({fall / abs(start):.2%}), no more than its noise could")
        return Recommendation(HALF_FALL, None, None, f"the smoothed loss {what} between lr {xs[0]:.3g} and "
                              f"{xs[-1]:.3g}: no learning rate on this curve trains better than another{provisional}",
                              MORE)
    lr = _crossing(xs, ys, start - HALF * fall, k)
    reason = (f"the smoothed loss falls from {start:.4g} to {ys[k]:.4g} (at lr {xs[k]:.2g}); at {lr:.2g} it has "
              "made half of that fall: learning is well under way, the turn-up still ahead")
    advice = ""
    blow = _blowup(lrs, smoothed, xs[k], start)
    if blow is not None and lr > blow / BLOWUP_MARGIN:
        lr = blow / BLOWUP_MARGIN
        reason += f"; lowered to {lr:.2g}, a decade below {blow:.2g}, where the loss is back above its start"
    if fall <= MIN_FALL * abs(start):
        reason += f" - but the fall is small ({fall / abs(start):.2%}): treat it as a first guess"
        advice = MORE
    elif k == len(ys) - 1:
        advice = "the loss was still falling at the end of the range: a larger end_lr shows where it turns"
    return Recommendation(HALF_FALL, lr, curve_value(lrs, smoothed, lr), reason + provisional, advice)


def all_suggestions(lrs: Sequence[float], smoothed: Sequence[float], num_iter: int) -> dict[str, Suggestion]:
    """The lab's three and fastai's four, in that order."""
    return suggest(lrs, smoothed) | fastai_suggestions(lrs, smoothed, num_iter)
