"""The augmentation lab's preview: training's own augmentation (core.data.augment.augment) on the chosen pictures,
with the random generator a training run of the same seed starts its first epoch with
(core.train.batches.augmentation_generator), and PNG-encoded pictures for the grid. No Streamlit here, so the preview can be tested against the training loop directly.

A preview of N pictures × K samples is ONE batch of N·K images (each picture repeated K times in a row), drawn
by one `augment` call: the very sampling and ops `train_batch` applies to a training batch of that size.
`grid` is what the page shows of it (a PNG row per picture and every sampled parameter), made once per server
for the same pictures, pipeline and seed: thirty students following the teacher ask for the same grid at once.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import time
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


@dataclass(frozen=True)
class Grid:
    """The page's grid: one PNG row per picture (the original, then its samples, `gap` blank columns after
    each) as a data: URI for row_html, what was sampled for each sample, and how long making it took (ms)."""

    uris: tuple[str, ...]
    descriptions: tuple[tuple[str, ...], ...]
    table: tuple[dict[str, Any], ...]  # Preview.rows: every sampled parameter, one row per sample
    ms_total: float
    ms_augment: float


def grid(originals: torch.Tensor, cfg: AugmentConfig, seed: int, samples: int, fill: Sequence[float],
         scale: int, gap: int) -> Grid:
    """The preview of these pictures, drawn as the page shows it; the same arguments give the same Grid, made
    once (kept for the last few grids of the server)."""
    key = (tuple(originals.shape), originals.cpu().numpy().tobytes())
    return _grid(key, cfg, seed, samples, tuple(float(f) for f in fill), scale, gap)


@functools.lru_cache(maxsize=16)
def _grid(key: tuple, cfg: AugmentConfig, seed: int, samples: int, fill: tuple[float, ...], scale: int,
          gap: int) -> Grid:
    shape, data = key
    originals = torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(shape)
    t0 = time.perf_counter()
    shown = preview(originals, cfg, seed, samples, fill)
    t1 = time.perf_counter()
    big, big_originals = upscaled(shown.images, scale), upscaled(originals, scale)  # (N·K, 64, 64, 3) uint8
    rows = tuple(png(tile(np.concatenate([big_originals[n:n + 1], big[n * samples:(n + 1) * samples]]), gap))
                 for n in range(len(originals)))
    descriptions = tuple(tuple(shown.descriptions(n)) for n in range(len(originals)))
    uris = tuple("data:image/png;base64," + base64.b64encode(r).decode() for r in rows)
    return Grid(uris, descriptions, tuple(shown.rows), (time.perf_counter() - t0) * 1000, (t1 - t0) * 1000)


def row_html(uri: str, label: str, descriptions: Sequence[str], max_width_px: int | None = None,
             min_cell_px: int = 84) -> str:
    """One picture's row as ONE HTML block: its PNG row (original, then samples) with a caption under each cell,
    in equal columns that line up with the PNG's equal cells. On a narrow screen the row keeps `min_cell_px` a
    cell and scrolls sideways within its own box (never the page). One block instead of a picture, columns
    and a caption per cell: a page of 4 × 8 pictures is 4 elements to send, not 76."""
    cells = len(descriptions) + 1
    texts = [f"<b>original</b> {html.escape(label)}", *(html.escape(d) for d in descriptions)]
    captions = "".join(f'<div style="padding:2px 4px 0 0;overflow-wrap:anywhere">{t}</div>' for t in texts)
    limit = f"max-width:{max_width_px}px;" if max_width_px else ""
    return (f'<div class="aug-row" style="overflow-x:auto;margin-bottom:0.6rem;{limit}">'
            f'<div style="min-width:{cells * min_cell_px}px">'
            f'<img src="{uri}" alt="{html.escape(label)}: the original and {cells - 1} samples" '
            f'style="width:100%;height:auto;max-height:none;object-fit:fill;display:block;image-rendering:pixelated">'
            f'<div style="display:grid;grid-template-columns:repeat({cells},minmax(0,1fr));font-size:0.875rem;'
            f'line-height:1.3;opacity:0.75">{captions}</div></div></div>')
