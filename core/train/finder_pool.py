"""LR range tests shared by every session of a server: one finder per distinct set of settings, a cap on how
many hold a model at once, and curves that outlive their finders.

A range test is deterministic (core.train.lr_finder): the same config, range, steps and data give the same
points. So a class of thirty opening the LR finder with the teacher's settings needs one model, not thirty:
each session keeps only how far along the curve it has stepped (its cursor) and reads the points up to there.
The pool computes each point once and keeps every curve (a few KB). A live finder holds the model, its
optimizer, gradients and deep copies of both (about 7x the parameters in float32: ~470 MB for the base CNN's
16.9M), so the pool keeps at most `max_live` of them: a finished test releases its finder at once, and when a
new one needs room the least recently used is dropped. Its curve stays; stepping past it later rebuilds the
finder and replays the computed steps (the same points again), which costs time, not correctness.

Nothing is built until a session first steps (opening the page costs no model). One lock serialises building
and stepping: the finder swaps its random streams into torch's global RNG, so two must never step at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from core.train.lr_finder import LRFinder, Point, PointSeries
from core.train.lr_suggest import Suggestion, suggest


@dataclass(frozen=True)
class Curve(PointSeries):
    """The first points of a shared test, as one session sees them (a cursor into the pool's curve)."""

    points: tuple[Point, ...] = ()
    seconds: float = 0.0  # compute time of these points
    done: bool = False  # the test ended at or before these points (end_lr, divergence, failure)
    stop_reason: str = ""

    def suggestions(self) -> dict[str, Suggestion]:
        return suggest(self.lrs, self.smoothed)


@dataclass
class _Entry:
    finder: LRFinder | None = None
    points: list[Point] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # cumulative compute time at each point
    done: bool = False
    stop_reason: str = ""
    last_used: float = 0.0


class FinderPool:
    """Shared range tests by key (any hashable: the settings that define a test). Thread-safe."""

    def __init__(self, max_live: int = 2, clock: Callable[[], float] = time.monotonic) -> None:
        if max_live < 1:
            raise ValueError(f"max_live must be at least 1, got {max_live}")
        self.max_live, self._clock = max_live, clock
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()
        self.builds = 0  # finders built (first builds and rebuilds after an eviction), for tests and the page

    def live(self) -> int:
        """Finders holding a model right now (at most max_live)."""
        return sum(e.finder is not None for e in self._entries.values())

    def is_live(self, key: Hashable) -> bool:
        """Whether `key` holds a model now (stepping it needs no build)."""
        e = self._entries.get(key)
        return e is not None and e.finder is not None

    def curve(self, key: Hashable, upto: int | None = None) -> Curve:
        """The computed points of `key` up to `upto` (all when None); empty when nothing was computed."""
        e = self._entries.get(key)
        if e is None:
            return Curve()
        n = len(e.points) if upto is None else max(0, min(upto, len(e.points)))
        return Curve(tuple(e.points[:n]), e.seconds[n - 1] if n else 0.0,
                     e.done and n >= len(e.points), e.stop_reason if e.done and n >= len(e.points) else "")

    def advance(self, key: Hashable, build: Callable[[], LRFinder], upto: int) -> Curve:
        """Make sure `key` has `upto` points (or has ended), building or rebuilding its finder if it must,
        and return the curve up to there. `build` makes the finder for `key` (called under the pool's lock)."""
        with self._lock:
            e = self._entries.setdefault(key, _Entry())
            e.last_used = self._clock()
            if len(e.points) < upto and not e.done:
                finder = self._live_finder(key, e, build)
                t0, want = time.perf_counter(), upto - len(e.points)
                try:
                    finder.step(want)
                finally:  # a failing step still ends the test for everyone, with the points before it
                    new = finder.points[len(e.points):]
                    base, each = (e.seconds[-1] if e.seconds else 0.0), (time.perf_counter() - t0) / max(1, want)
                    e.points += new
                    e.seconds += [base + each * (i + 1) for i in range(len(new))]
                    e.done, e.stop_reason = finder.done, finder.stop_reason
                    if e.done:  # the curve is final: the model is no longer needed by anyone
                        self._release(e)
        return self.curve(key, upto)

    def drop(self, key: Hashable) -> None:
        """Forget `key` entirely (its finder closed, its curve gone)."""
        with self._lock:
            e = self._entries.pop(key, None)
            if e is not None:
                self._release(e)

    def _live_finder(self, key: Hashable, e: _Entry, build: Callable[[], LRFinder]) -> LRFinder:
        if e.finder is not None:
            return e.finder
        others = sorted((o for k, o in self._entries.items() if k != key and o.finder is not None),
                        key=lambda o: o.last_used)
        for victim in others[:max(0, len(others) + 1 - self.max_live)]:
            self._release(victim)  # least recently used first; its curve stays
        finder = build()
        self.builds += 1
        if e.points:  # rebuilt after an eviction: replay what was computed (deterministic: the same points)
            finder.step(len(e.points))
        e.finder = finder
        return finder

    @staticmethod
    def _release(e: _Entry) -> None:
        if e.finder is not None:
            e.finder.close()  # restores and lets go of the model, optimizer and their snapshots
            e.finder = None
