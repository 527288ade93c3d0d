"""Pictures for people: a built-in colormap, heat-map overlays, nearest-neighbour upscaling, tile grids, and
the PNG figures `python -m core explain` writes for slides (PIL, imported only when a PNG is drawn).

Everything here takes and returns plain arrays: uint8 images are numpy (H, W, 3) for display (what st.image
and PIL take) or torch (3, H, W) as the datasets hold them; heat maps are floats in [0, 1]. No matplotlib:
the colormaps are 11 samples of matplotlib's perceptually uniform maps, linearly interpolated to 256 entries.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from core.errors import LabError

# 11 evenly spaced samples (0.0, 0.1, ..., 1.0) of matplotlib's colormaps, as RGB bytes.
_ANCHORS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "inferno": ((0, 0, 4), (22, 11, 57), (66, 10, 104), (106, 23, 110), (147, 38, 103), (188, 55, 84),
                (221, 81, 58), (243, 120, 25), (252, 165, 10), (246, 215, 70), (252, 255, 164)),
    "viridis": ((68, 1, 84), (72, 36, 117), (65, 68, 135), (53, 95, 141), (42, 120, 142), (33, 145, 140),
                (34, 168, 132), (68, 191, 112), (122, 209, 81), (189, 223, 38), (253, 231, 37)),
    "gray": ((0, 0, 0), (255, 255, 255)),
}
COLORMAPS = tuple(_ANCHORS)
_LUTS: dict[str, np.ndarray] = {}


def colormap_lut(name: str = "inferno") -> np.ndarray:
    """(256, 3) uint8 lookup table of the colormap `name` (inferno, viridis or gray)."""
    if name not in _ANCHORS:
        raise LabError(f"unknown colormap {name!r}; choose one of: {', '.join(COLORMAPS)}")
    if name not in _LUTS:
        anchors = np.asarray(_ANCHORS[name], dtype=np.float64)  # (K, 3)
        at = np.linspace(0.0, 1.0, len(anchors))
        grid = np.linspace(0.0, 1.0, 256)
        lut = np.stack([np.interp(grid, at, anchors[:, c]) for c in range(3)], axis=1)
        _LUTS[name] = np.clip(np.rint(lut), 0, 255).astype(np.uint8)
    return _LUTS[name]


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _hwc(image: Any) -> np.ndarray:
    """A uint8 image as numpy (H, W, 3), from torch/numpy (3, H, W) or (H, W, 3)."""
    a = _numpy(image)
    if a.ndim != 3 or 3 not in (a.shape[0], a.shape[-1]):
        raise ValueError(f"expected an RGB image (3, H, W) or (H, W, 3), got shape {a.shape}")
    if a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {a.dtype}")
    return np.ascontiguousarray(a)


def colorize(heat: Any, cmap: str = "inferno") -> np.ndarray:
    """Heat (H, W) in [0, 1] (values outside are clipped, NaN counts as 0) -> uint8 (H, W, 3)."""
    h = np.nan_to_num(_numpy(heat).astype(np.float64), nan=0.0)
    if h.ndim != 2:
        raise ValueError(f"expected a heat map (H, W), got shape {h.shape}")
    idx = np.clip(np.rint(h * 255.0), 0, 255).astype(np.intp)
    return colormap_lut(cmap)[idx]


def _resize_heat(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if heat.shape == size:
        return heat
    t = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay(image_u8: Any, heat: Any, alpha: float = 0.5, cmap: str = "inferno") -> np.ndarray:
    """The image with the coloured heat map blended over it: uint8 (H, W, 3).

    image_u8: (3, H, W) or (H, W, 3) uint8; heat: (h, w) in [0, 1], resized (bilinear) to the image if needed.
    alpha: 0 = only the image, 1 = only the heat map.
    """
    if not 0.0 <= alpha <= 1.0:
        raise LabError(f"alpha must be in [0, 1], got {alpha!r}")
    img = _hwc(image_u8)
    h = _resize_heat(np.nan_to_num(_numpy(heat).astype(np.float32)), img.shape[:2])
    blended = (1.0 - alpha) * img.astype(np.float32) + alpha * colorize(h, cmap).astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def upscale(img: Any, factor: int) -> Any:
    """Nearest-neighbour upscaling by an integer factor, keeping type and layout.

    numpy/torch (H, W), (H, W, 3) [numpy] or (C, H, W) [torch] -> every pixel becomes a factor×factor block.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise LabError(f"the upscale factor must be a whole number >= 1, got {factor!r}")
    if isinstance(img, torch.Tensor):  # torch: (..., H, W)
        return img.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):  # numpy display layout (H, W, C)
        return a.repeat(factor, axis=0).repeat(factor, axis=1)
    return a.repeat(factor, axis=-2).repeat(factor, axis=-1)


def tile_grid(tiles: Any, cols: int | None = None, pad: int = 1, scale: int = 1,
              cmap: str | None = None, background: int = 255) -> np.ndarray:
    """Tiles (N, 3, h, w) RGB or (N, h, w) single-channel, floats in [0, 1], -> one uint8 (H, W, 3) grid.

    Single-channel tiles are coloured with `cmap` (default gray). Each tile is upscaled by `scale` first.
    """
    t = _numpy(tiles).astype(np.float32)
    if t.ndim == 3:
        t = np.stack([colorize(x, cmap or "gray") for x in t]).astype(np.float32) / 255.0  # (N, h, w, 3)
    elif t.ndim == 4 and t.shape[1] == 3:
        t = t.transpose(0, 2, 3, 1)
    else:
        raise ValueError(f"expected tiles (N, 3, h, w) or (N, h, w), got shape {t.shape}")
    n, h, w, _ = t.shape
    if n == 0:
        return np.full((h * scale + 2 * pad, w * scale + 2 * pad, 3), background, np.uint8)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    th, tw = h * scale, w * scale
    out = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), background, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        tile = np.clip(np.rint(t[i] * 255.0), 0, 255).astype(np.uint8)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        out[y:y + th, x:x + tw] = upscale(tile, scale)
    return out


# --- PNG figures (PIL) ---------------------------------------------------------------------------------------

PANEL = 256  # side of one picture panel in the slides' figures, pixels
_BG, _FG = (255, 255, 255), (20, 20, 20)


def _font(size: int = 14) -> Any:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _fit(img: np.ndarray, side: int) -> np.ndarray:
    """Upscale (nearest) so the longer side reaches at most `side`."""
    factor = max(1, side // max(img.shape[0], img.shape[1]))
    return upscale(img, factor)


def compose(panels: Sequence[tuple[str, np.ndarray]], text: Sequence[str] = (), title: str = "",
            panel_size: int = PANEL) -> Any:
    """Panels (caption, uint8 (H, W, 3)) side by side, each upscaled to about panel_size, captions under them,
    an optional text column (e.g. the top-5) on the right and a title on top. Returns a PIL image."""
    font, big = _font(14), _font(18)
    pics = [(caption, _fit(_hwc(p), panel_size)) for caption, p in panels]
    gap, caption_h = 16, 40 if pics else 0  # captions may take two lines
    title_h = 34 if title else 0
    text_w = (8 * max(len(line) for line in text) + gap) if text else 0
    width = max(gap + sum(p.shape[1] + gap for _, p in pics) + text_w, 8 * len(title) + 2 * gap)
    height = title_h + gap + max([p.shape[0] for _, p in pics] + [20 * len(text)]) + caption_h + gap
    canvas = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, 8), title, fill=_FG, font=big)
    x, y = gap, title_h + gap
    for caption, pic in pics:
        canvas.paste(Image.fromarray(pic), (x, y))
        draw.text((x, y + pic.shape[0] + 4), caption, fill=_FG, font=font)
        x += pic.shape[1] + gap
    for i, line in enumerate(text):
        draw.text((x, y + 20 * i), line, fill=_FG, font=font)
    return canvas


def stack_rows(images: Sequence[Any], gap: int = 8) -> Any:
    """PIL images one under the other (left-aligned, white background)."""
    width = max(im.width for im in images)
    out = Image.new("RGB", (width, sum(im.height for im in images) + gap * (len(images) - 1)), _BG)
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height + gap
    return out


def save_png(image: Any, path: str | Path) -> Path:
    """Write a PIL image (or a uint8 (H, W, 3) array) as PNG; LabError when the file cannot be written."""
    path = Path(path)
    if not isinstance(image, Image.Image):
        image = Image.fromarray(_hwc(image))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG")
    except OSError as e:
        raise LabError(f"cannot write {path}: {e.strerror or e}; choose another --out file") from None
    return path


# --- the explain command's figures (plain data in, PIL image out) ----------------------------------------------

def _wrap(text: str, width: int = 44) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def explanation_figure(image_u8: Any, heat: Any, caption: str, text: Sequence[str], title: str = "",
                       alpha: float = 0.5, cmap: str = "inferno") -> Any:
    """Input | heat map | overlay, with the top-5 (or any lines) on the right."""
    return compose([("input", _hwc(image_u8)), (caption, colorize(heat, cmap)),
                    ("overlay", overlay(image_u8, heat, alpha, cmap))], text, title)


def filters_figure(grids: Sequence[tuple[str, np.ndarray]], text: Sequence[str] = (), title: str = "") -> Any:
    """Filter grids (caption, uint8 grid) side by side."""
    return compose(grids, text, title, panel_size=320)


def feature_maps_figure(image_u8: Any, layers: Sequence[tuple[str, Any]], title: str = "",
                        cmap: str = "viridis") -> Any:
    """One row per layer: the input, then a grid of that layer's maps ((N, h, w) in [0, 1])."""
    rows = []
    for i, (label, maps) in enumerate(layers):
        grid = tile_grid(maps, cols=8, pad=1, scale=max(1, 64 // max(1, int(np.shape(maps)[-1]))), cmap=cmap)
        rows.append(compose([("input", _hwc(image_u8)), (label, grid)], title=title if i == 0 else "",
                            panel_size=160))
    return stack_rows(rows)


def sanity_figure(image_u8: Any, maps: Sequence[tuple[str, Any]], verdict: str, title: str = "",
                  cmap: str = "inferno") -> Any:
    """The input, then the map after each randomization step (caption: what was randomized, the rank
    correlation), the verdict underneath."""
    per_row = 8
    panels = [("input", _hwc(image_u8))] + [(caption, colorize(m, cmap)) for caption, m in maps]
    rows = [compose(panels[i:i + per_row], title=title if i == 0 else "", panel_size=128)
            for i in range(0, len(panels), per_row)]
    rows.append(compose([], _wrap(verdict, 110)))
    return stack_rows(rows)
