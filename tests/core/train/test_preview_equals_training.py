"""The augmentation lab shows what training feeds the network: the preview (ui.aug_preview, what the page draws)
normalized equals the batch core.train.engine.train hands to the model for the same seed and pictures, and drawing
a preview leaves torch's global RNG alone."""

import pytest
import torch

from core.config import AugmentConfig, DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.data import augment as aug
from core.data.dataset import stratified_subset
from core.data.loading import load_dataset
from core.train import engine, setup
from core.train.batches import augmentation_generator, epoch_permutation, permutation_seed
from ui.aug_preview import preview

EVERYTHING = AugmentConfig(flip_p=0.5, crop_padding=4, crop_mode="reflect", erase_p=0.5, erase_size=10,
                           brightness=0.3, contrast=0.3, saturation=0.3)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def first_batch_the_engine_feeds(config: TrainConfig, dataset, monkeypatch) -> torch.Tensor:
    """Train one step for real and catch the input of the model's first forward pass."""
    seen: list[torch.Tensor] = []
    build = setup.build_for_config

    def build_and_watch(*args, **kwargs):
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))
        return model

    monkeypatch.setattr(setup, "build_for_config", build_and_watch)
    polls = iter([False])  # one step, then stop
    for _ in engine.train(config, lambda: next(polls, True), dataset=dataset):
        pass
    return seen[0]


@pytest.mark.parametrize("cfg", [EVERYTHING, AugmentConfig(flip_p=0.5, crop_padding=4)], ids=["all ops", "flip+crop"])
def test_preview_is_the_batch_the_training_loop_feeds(synthetic, monkeypatch, cfg):
    seed, batch = 3, 24
    config = TrainConfig(data=DataConfig(dataset="synthetic", subset=60, test_subset=20, augment=cfg),
                         model=ModelConfig("cnn", {"widths": (4, 4, 4, 4), "fc": 8}),
                         optim=OptimConfig(lr=1e-3), batch_size=batch, epochs=1, seed=seed, device="cpu")
    fed = first_batch_the_engine_feeds(config, synthetic, monkeypatch)  # (24, 3, 32, 32) float32

    # the same 24 pictures, through the page's preview with the run's seed (one sample each)
    sub = stratified_subset(synthetic, 60, 20, seed=seed)
    first = epoch_permutation(len(sub.train_x), permutation_seed(seed, 1), torch.device("cpu"))[:batch]
    shown = preview(sub.train_x[first], cfg, seed=seed, samples=1, fill=sub.mean)
    assert fed.shape == shown.images.shape == (batch, 3, 32, 32)
    torch.testing.assert_close(aug.normalize(shown.images, sub.mean, sub.std), fed.contiguous(), atol=1e-6, rtol=0)
    assert len({d for n in range(batch) for d in shown.descriptions(n)}) > batch // 2  # really random per image


def test_preview_with_samples_is_train_batch_of_the_repeated_pictures(synthetic):
    """K samples per picture: the batch of the pictures repeated K times, through the engine's pipeline."""
    x, mean, std = synthetic.train_x[:5], synthetic.mean, synthetic.std
    shown = preview(x, EVERYTHING, seed=11, samples=4, fill=mean)
    fed = aug.train_batch(x.repeat_interleave(4, dim=0), EVERYTHING, augmentation_generator(11), mean, std)
    torch.testing.assert_close(aug.normalize(shown.images, mean, std), fed, atol=1e-6, rtol=0)
    assert torch.equal(shown.batch[4 * 2 + 3], x[2])  # picture 2's 4th sample started from picture 2
    assert shown.row(2).shape == (4, 3, 32, 32) and len(shown.descriptions(2)) == 4
    # same seed: the same pictures and parameters; the next seed: others
    again = preview(x, EVERYTHING, seed=11, samples=4, fill=mean)
    assert torch.equal(again.images, shown.images) and again.params.to_rows() == shown.params.to_rows()
    assert not torch.equal(preview(x, EVERYTHING, seed=12, samples=4, fill=mean).images, shown.images)


def test_preview_leaves_the_global_rng_unchanged(synthetic):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    preview(synthetic.train_x[:8], EVERYTHING, seed=0, samples=8)
    assert torch.equal(torch.get_rng_state(), before)
    expected = torch.Generator().manual_seed(123)
    assert torch.equal(torch.rand(5), torch.rand(5, generator=expected))  # the next global draw is unaffected


def test_no_augmentation_is_the_pictures_themselves(synthetic):
    x = synthetic.train_x[:3]
    shown = preview(x, AugmentConfig(), seed=0, samples=2)
    assert torch.equal(shown.images, x.repeat_interleave(2, 0).float() / 255)
    assert shown.descriptions(1) == ["unchanged", "unchanged"]


def test_the_page_grid_is_the_preview_drawn_once_for_the_same_pictures_and_seed():
    # thirty students following the teacher to the augmentation lab ask for the same grid: made once
    import base64
    import io

    import numpy as np
    from PIL import Image

    from ui.aug_preview import grid, tile, upscaled

    pictures = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    made = grid(pictures, EVERYTHING, 7, 5, (0.4, 0.5, 0.6), 2, 4)
    assert grid(pictures.clone(), EVERYTHING, 7, 5, [0.4, 0.5, 0.6], 2, 4) is made  # equal pictures: the same grid
    shown = preview(pictures, EVERYTHING, 7, 5, (0.4, 0.5, 0.6))  # the oracle: the preview, tiled as the page shows it
    for n, uri in enumerate(made.uris):
        row_png = base64.b64decode(uri.removeprefix("data:image/png;base64,"), validate=True)
        expected = tile(np.concatenate([upscaled(pictures[n:n + 1], 2), upscaled(shown.row(n), 2)]), 4)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(row_png)).convert("RGB")), expected)
        assert list(made.descriptions[n]) == shown.descriptions(n)
    assert len(made.table) == 15 and made.ms_total >= made.ms_augment >= 0
    assert grid(pictures, EVERYTHING, 8, 5, (0.4, 0.5, 0.6), 2, 4).uris != made.uris  # another seed: other draws
