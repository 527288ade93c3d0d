"""The sweep pages' judgements, as plain data: which learning rates make the "too low / good / too high" lesson,
which run of a finished sweep is which scenario, which finished run won, and what the too-high learning rate did.
Pages only word and draw these.

The lesson's learning rates themselves are the sweep grid's (core.runs.sweeps.lr_scenario_values), so the page
and `python -m core sweep --lesson lr` queue the same three.

Records are the plain dicts of core.runs.sweeps.record_from_run (status, config, test_acc, ...); rows are
core.runs.sweeps.accuracy_vs's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from core.config import TrainConfig, from_dict
from core.runs.records import ACTIVE

# Sweep ids of the ready-made lessons start with these (the sweeps page names a sweep by them).
LESSON_PREFIX = {"lr-scenarios": "LR scenarios", "batch-epochs": "Batch & epochs", "more-data": "More data"}
SCENARIOS = ("too low", "good", "too high")
COLLAPSE = 1.5  # a test accuracy under 1.5 × chance counts as "collapsed to about chance"


def lesson_of(sweep_id: str) -> str | None:
    """The ready-made lesson a sweep id belongs to ("lr-scenarios-3fa9c1d2" -> "lr-scenarios"), else None."""
    return next((k for k in LESSON_PREFIX if sweep_id.startswith(k + "-")), None)


def scenario_labels(lesson: str | None, swept: Sequence[str], lrs: Sequence[float]) -> dict[float, str]:
    """lr -> "too low" / "good" / "too high" for an LR-scenarios sweep that varied only the learning rate over
    three runs (by rank, lowest first); {} for any other sweep."""
    if lesson == "lr-scenarios" and list(swept) == ["lr"] and len(lrs) == 3:
        return dict(zip(sorted(lrs), SCENARIOS))
    return {}


def mark_best(rows: Sequence[Mapping[str, Any]], metric: str = "test_acc"
              ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(the finished rows - neither queued nor running - as copies with `is_best`, the best of them or None).
    Best: the highest `metric` among the rows that have one and did not diverge (a diverged run is the lesson's
    too-high learning rate, never its winner); ties: the first."""
    finished = [{**r, "is_best": False} for r in rows if r.get("status") not in ACTIVE]
    scored = [r for r in finished if r.get(metric) is not None and r.get("status") != "diverged"]
    best = max(scored, key=lambda r: r[metric]) if scored else None
    if best is not None:
        best["is_best"] = True
    return finished, best


class LRVerdict(NamedTuple):
    """What the too-high learning rate did: "diverged" (its loss became NaN, or rose far above where it started
    and stayed there: core.train.divergence), "collapsed" (test accuracy about chance) or "stalled" (it only slowed
    down or stalled)."""

    outcome: str
    lr: float
    test_acc: float | None
    adaptive: bool  # Adam / AdamW: they rescale their steps, so they are harder to blow up than SGD


def _config(record: Mapping[str, Any]) -> TrainConfig:
    cfg = record["config"]
    return from_dict(cfg) if isinstance(cfg, Mapping) else cfg


def too_high_verdict(records: Sequence[Mapping[str, Any]]) -> LRVerdict | None:
    """The verdict on the sweep's highest learning rate, once every run has finished (else None); chance is
    1 / the run's `num_classes` (10 when unknown)."""
    if not records or any(r.get("status") in ACTIVE for r in records):
        return None
    high = max(records, key=lambda r: _config(r).optim.lr)
    cfg = _config(high)
    acc = high.get("test_acc")
    if high.get("status") == "diverged":
        outcome = "diverged"
    elif acc is not None and acc < COLLAPSE / max(2, high.get("num_classes") or 10):
        outcome = "collapsed"
    else:
        outcome = "stalled"
    return LRVerdict(outcome, cfg.optim.lr, acc, cfg.optim.name in ("adam", "adamw"))
