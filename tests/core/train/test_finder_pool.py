"""core/train/finder_pool.py: one shared range test per key, built on the first step, curves kept when the
model is let go, at most max_live models, and an evicted test replayed to the same points."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.train.finder_pool import FinderPool
from core.train.lr_finder import LRFinder


class Builds:
    """A build function for a small deterministic test (dropout included), counting its calls."""

    def __init__(self, seed: int = 0, num_iter: int = 30) -> None:
        self.seed, self.num_iter, self.calls = seed, num_iter, 0

    def __call__(self) -> LRFinder:
        self.calls += 1
        torch.manual_seed(self.seed)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(self.seed))
        y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(self.seed + 1))

        def batch(i):
            j = (i * 16) % 64
            return x[j:j + 16], y[j:j + 16]

        return LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), batch,
                        start_lr=1e-4, end_lr=1.0, num_iter=self.num_iter, diverge_factor=None, seed=self.seed)


def test_nothing_is_built_until_a_step_and_sessions_share_one_finder():
    pool, build = FinderPool(max_live=2), Builds()
    assert pool.curve("cnn").points == () and pool.live() == 0 and build.calls == 0
    mine = pool.advance("cnn", build, 10)
    theirs = pool.advance("cnn", build, 4)  # a second session, behind the first: nothing computed again
    assert build.calls == 1 and len(mine.points) == 10 and theirs.points == mine.points[:4]
    assert pool.live() == 1 and not mine.done
    alone = Builds().__call__()
    assert [p.loss for p in alone.step(10)] == [p.loss for p in mine.points]  # the same test as one finder's


def test_a_finished_test_lets_its_model_go_and_keeps_its_curve():
    pool, build = FinderPool(), Builds(num_iter=12)
    end = pool.advance("k", build, 50)
    assert end.done and end.stop_reason == "reached end_lr" and len(end.points) == 12
    assert pool.live() == 0  # no model held for a finished curve
    again = pool.advance("k", build, 12)
    assert build.calls == 1 and again.points == end.points and again.done
    part = pool.curve("k", 5)
    assert len(part.points) == 5 and not part.done and part.stop_reason == ""  # this session is not at the end
    assert part.seconds <= end.seconds and part.suggestions().keys() == end.suggestions().keys()


def test_at_most_max_live_models_and_an_evicted_test_replays_to_the_same_points():
    pool = FinderPool(max_live=2)
    builds = {k: Builds(seed=i) for i, k in enumerate("abc")}
    first = {k: pool.advance(k, builds[k], 6) for k in "ab"}
    assert pool.live() == 2
    pool.advance("c", builds["c"], 6)  # room for c: a, the least recently used, lets its model go
    assert pool.live() == 2 and builds["a"].calls == 1
    assert pool.curve("a").points == first["a"].points  # its curve stays readable
    more = pool.advance("a", builds["a"], 9)  # rebuilt and replayed, then three more steps
    assert builds["a"].calls == 2 and pool.live() == 2 and pool.builds == 4
    assert more.points[:6] == first["a"].points
    straight = Builds(seed=0)().step(9)
    assert [p.loss for p in more.points] == pytest.approx([p.loss for p in straight], rel=1e-6)


def test_drop_forgets_a_test_and_a_bad_cap_is_refused():
    pool, build = FinderPool(), Builds()
    pool.advance("k", build, 3)
    pool.drop("k")
    assert pool.live() == 0 and pool.curve("k").points == ()
    with pytest.raises(ValueError, match="max_live"):
        FinderPool(max_live=0)


def test_a_failing_step_ends_the_shared_test_with_the_points_before_it():
    class Failing(Builds):
        def __call__(self) -> LRFinder:
            finder = super().__call__()
            good = finder.batch_fn

            def batch(i):
                if i == 5:
                    raise RuntimeError("disk on fire")
                return good(i)

            finder.batch_fn = batch
            return finder

    pool = FinderPool()
    with pytest.raises(RuntimeError, match="disk on fire"):
        pool.advance("k", Failing(), 10)
    curve = pool.curve("k")
    assert len(curve.points) == 5 and curve.done and curve.stop_reason == "failed: RuntimeError: disk on fire"
    assert pool.live() == 0 and pool.advance("k", Failing(), 10).points == curve.points  # not retried
