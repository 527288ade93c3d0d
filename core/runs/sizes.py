"""A run's size as tables show it: (parameters, training images), the record's own numbers once its trainer
wrote them, else computed from its config - so a queued or running run's row agrees with the panel above it
(which describes the same config) instead of saying "0.0M parameters, 0 images".

Parameters: core.models.catalog.model_size on PyTorch's meta device (no weights allocated or downloaded).
Training images: the dataset's training split (core.data.loading.dataset_facts, without decoding it), cut to the
config's subset the way core.data.dataset.stratified_subset cuts it: subset // classes per class, which is exact
for the lab's balanced sets (CIFAR, synthetic) and an estimate for an unbalanced image folder until the run
starts and records its exact size. Both are cached per config: a page asks for the same few configs every second.
"""

from __future__ import annotations

from functools import lru_cache

from core.config import TrainConfig
from core.errors import LabError
from core.runs.records import RunRecord


def subset_images(train_images: int, subset: int | None, num_classes: int) -> int:
    """Images a stratified subset of `subset` keeps of a balanced split of `train_images` (None: all of it)."""
    if subset is None or subset >= train_images:
        return train_images
    return subset // max(1, num_classes) * num_classes


@lru_cache(maxsize=256)
def config_size(config: TrainConfig) -> tuple[int | None, int | None]:
    """(parameters, training images) a run of `config` will have; None for what cannot be known here (a
    model that cannot be built, an image folder that is not a dataset)."""
    from core.data.loading import dataset_facts  # deferred: both import torch
    from core.models.catalog import model_size

    try:
        facts = dataset_facts(config.data.dataset)
    except LabError:
        return None, None
    images = subset_images(facts.train_images, config.data.subset, facts.num_classes)
    try:
        params = model_size(config, facts.num_classes)[0]
    except LabError:
        params = None
    return params, images


def run_size(run: RunRecord) -> tuple[int | None, int | None]:
    """(parameters, training images) of a run: its record's values, else its config's (config_size)."""
    if run.params is not None and run.train_size is not None:
        return run.params, run.train_size
    params, images = config_size(run.config)
    return (run.params if run.params is not None else params,
            run.train_size if run.train_size is not None else images)
