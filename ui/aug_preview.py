"""The augmentation lab's preview: training's own augmentation (core.data.augment.augment) on the chosen pictures,
with the random generator a training run of the same seed starts its first epoch with
(core.train.batches.augmentation_generator), and PNG-encoded pictures for the grid. No Streamlit here, so the preview can be tested against the training loop directly.

A preview of N pictures × K samples is ONE batch of N·K images (each picture repeated K times in a row), drawn
by one `augment` call: the very sampling and ops `train_batch` applies to a training batch of that size.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.config import AugmentConfig
from core.data import augment as aug
from core.data.augment import AugmentParams
from core.train.batches import augmentation_generator

PNG_LEVEL = 1  # zlib level: ~2x faster than PIL's default 6 on 128×128 pictures, files barely larger


@dataclass(frozen=True)
class Preview:
    """N original pictures, their K augmented samples each, and what was sampled for each one."""

    originals: torch.Tensor  # (N, 3, H, W) uint8
    batch: torch.Tensor  # (N·K, 3, H, W) uint8: picture n repeated at rows n·K … n·K + K - 1
    images: torch.Tensor  # (N·K, 3, H, W) float32 in [0, 1]: augment(batch)
    params: AugmentParams
    samples: int  # K

    def row(self, n: int) -> torch.Tensor:
        """(K, 3, H, W) float: the samples of picture n."""
        return self.images[n * self.samples:(n + 1) * self.samples]

    @functools.cached_property
    def rows(self) -> list[dict[str, Any]]:
        """AugmentParams.to_rows of the whole batch, once (its "description" is describe(i))."""
        if len(self.params) == 0:  # every op off: nothing was sampled
            return [{"description": "unchanged"} for _ in range(len(self.batch))]
        return self.params.to_rows()

    def descriptions(self, n: int) -> list[str]:
        """What was sampled for each sample of picture n, as AugmentParams.describe words it."""
        return [r["description"] for r in self.rows[n * self.samples:(n + 1) * self.samples]]


def preview(originals: torch.Tensor, cfg: AugmentConfig, seed: int, samples: int,
            fill: Sequence[float] = (0.5, 0.5, 0.5)) -> Preview:
    """Augment each picture `samples` times with the epoch-1 generator of a run with `seed` (the one training's
    batches draw from; its own torch.Generator: the global RNG is never touched). `fill`: the erased pixels' colour, the dataset mean as in
    training (erased pixels become 0 after normalization)."""
    if originals.dim() != 4 or originals.dtype != torch.uint8:
        raise ValueError(f"expected (N, 3, H, W) uint8 pictures, got {originals.dtype} {tuple(originals.shape)}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    batch = originals.repeat_interleave(samples, dim=0)  # (N·K, 3, H, W) uint8
    images, params = aug.augment(batch, cfg, augmentation_generator(seed, 1, batch.device), fill=tuple(fill))
    return Preview(originals, batch, images, params, samples)


def upscaled(images: torch.Tensor, scale: int = 4) -> np.ndarray:
    """(B, 3, H, W) uint8, or float in [0, 1] -> (B, H·scale, W·scale, 3) uint8, nearest-neighbour, in a few
    whole-batch ops (per-picture torch calls cost ~1 ms each on a busy CPU; 72 of them show)."""
    if images.dtype != torch.uint8:
        images = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)  # as ui.pictures rounds
    arr = images.cpu().permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(arr.repeat(scale, axis=1).repeat(scale, axis=2))


def tile(pictures: np.ndarray, gap: int, fill: int = 255) -> np.ndarray:
    """(M, h, w, 3) uint8 -> one (h, M·(w + gap), 3) row: equal cells, each a picture and `gap` blank columns
    on its right, so M equal-width columns laid over the row line up with the pictures."""
    m, h, w, _ = pictures.shape
    row = np.full((h, m, w + gap, 3), fill, dtype=np.uint8)
    row[:, :, :w] = pictures.transpose(1, 0, 2, 3)
    return row.reshape(h, m * (w + gap), 3)


def png(img: np.ndarray) -> bytes:
    """One (H, W, 3) uint8 picture as PNG bytes (lossless: pixel edges stay sharp, unlike st.image's JPEG)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()
