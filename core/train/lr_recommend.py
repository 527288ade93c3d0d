"""The learning rate the lab recommends from a range test's curve, and what to change when the curve has none.

`recommend(lrs, smoothed, num_iter=..., stop_reason=...)` -> Recommendation(name, lr, loss, reason, advice).
Pure functions on plain lists (no torch): the CLI's pick, the page's default and "apply & queue" all come
from here, and scripts/lr_bench.py measures it against the report's 1e-4 and fastai's valley.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.train.lr_suggest import Suggestion, curve_value, fastai_suggestions, suggest

RECOMMENDED = "recommended"


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


def recommend(lrs: Sequence[float], smoothed: Sequence[float], *, num_iter: int | None = None,
              stop_reason: str = "") -> Recommendation:
    """Placeholder until measured: the lab's minimum/10."""
    s = suggest(lrs, smoothed)["minimum/10"]
    return Recommendation("minimum/10", s.lr, curve_value(lrs, smoothed, s.lr) if s.lr else None, s.reason)


def all_suggestions(lrs: Sequence[float], smoothed: Sequence[float], num_iter: int) -> dict[str, Suggestion]:
    """The lab's three and fastai's four, in that order."""
    return suggest(lrs, smoothed) | fastai_suggestions(lrs, smoothed, num_iter)
