"""LR schedules: exact values at known steps, so the curve drawn before a run is the one the run uses - and the
steps per epoch it is drawn with are the engine's."""

import math

import pytest
import torch

from core.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.data.dataset import Dataset, stratified_subset, subset_size
from core.data.loading import load_dataset
from core.errors import DataError
from core.train.engine import train
from core.train.events import RunStarted
from core.train.schedule import lr_at, run_steps_per_epoch, schedule_curve, steps_per_epoch


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


# --- steps per epoch of a config on a dataset ------------------------------------------------------------------

def unbalanced() -> Dataset:
    """3 classes with 7, 4 and 1 training images (and one test image each)."""
    y = torch.tensor([0] * 7 + [1] * 4 + [2])
    x = torch.zeros(len(y), 3, 32, 32, dtype=torch.uint8)
    return Dataset("unbalanced", x, y, x[:3], torch.tensor([0, 1, 2]), ("a", "b", "c"), (0.5,) * 3, (0.25,) * 3)


@pytest.mark.parametrize("n", [None, 3, 4, 6, 7, 9, 11, 12, 100])
def test_subset_size_is_what_stratified_subset_keeps(n):
    ds = unbalanced()
    assert subset_size(ds.train_y, n, 3) == len(stratified_subset(ds, n, seed=1).train_y)


def test_subset_size_refuses_what_stratified_subset_refuses():
    with pytest.raises(DataError, match="at least 3"):
        subset_size(unbalanced().train_y, 2, 3)


@pytest.mark.parametrize(("subset", "batch"), [(None, 64), (600, 64), (125, 32), (1000, 256)])
def test_run_steps_per_epoch_is_the_engines_count(subset, batch):
    ds = load_dataset("synthetic")  # 10 balanced classes
    cfg = TrainConfig(data=DataConfig(dataset="synthetic", subset=subset, test_subset=20),
                      model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 16}), batch_size=batch, epochs=1,
                      device="cpu")
    run = train(cfg, dataset=ds)
    started = next(e for e in run if isinstance(e, RunStarted))  # set-up only: no step is taken
    run.close()
    assert run_steps_per_epoch(cfg, ds) == started.steps_per_epoch


def test_run_steps_per_epoch_without_the_dataset_uses_cifars_known_size():
    def cfg(dataset: str, subset: int | None, batch: int = 100) -> TrainConfig:
        return TrainConfig(data=DataConfig(dataset=dataset, subset=subset), batch_size=batch)

    assert run_steps_per_epoch(cfg("cifar100", None)) == 500  # 50,000 / 100
    assert run_steps_per_epoch(cfg("cifar10", 5000)) == 50
    assert run_steps_per_epoch(cfg("cifar10", 90_000)) == 500  # a subset above the split: the whole split
    assert run_steps_per_epoch(cfg("folder:/nowhere", 1000)) == 10
