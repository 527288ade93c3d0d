"""The divergence rule on the report's presets: at their own settings (model, optimizer, learning rate, schedule,
augmentation, label smoothing) none ends diverged; the cnn preset at lr 100 does, in its first epoch.

Scaled down for the CPU: one epoch on 352 synthetic images at batch 32 - 11 steps, so the rule's 10-step window
fills (at a preset's own batch of 256 a tiny subset is one step, and the rule could not fire at all). The
pretrained presets are left out (their ImageNet weights are a download), as are cnn-256 / cnn-512 (cnn-128's
recipe, 4-16x the weights)."""

from __future__ import annotations

import pytest

from core.data.loading import load_dataset
from core.lessons.presets import preset_config
from core.train.divergence import WINDOW_STEPS
from core.train.engine import train
from core.train.events import Finished

PRESETS = ("mlp", "cnn", "cnn-bn", "cnn-sgd", "best-scratch")
SCALED = dict(dataset="synthetic", subset=352, test_subset=100, epochs=1, batch_size=32, device="cpu", log_every=5)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def finish(config, dataset) -> Finished:
    last = list(train(config, dataset=dataset))[-1]
    assert isinstance(last, Finished)
    return last


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_at_its_own_settings_never_diverges(name, synthetic):
    config = preset_config(name, **SCALED)
    assert config.data.subset // config.batch_size > WINDOW_STEPS  # the rule had its chance
    end = finish(config, synthetic)
    assert end.status == "completed", end.reason


def test_the_cnn_at_lr_100_diverges_in_its_first_epoch(synthetic):
    end = finish(preset_config("cnn", lr=100.0, **{**SCALED, "epochs": 3}), synthetic)
    assert end.status == "diverged" and end.epochs_done == 0
    assert end.epoch == 1 and end.step is not None and end.step <= WINDOW_STEPS
