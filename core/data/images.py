"""One picture from outside (an upload, a file on disk) -> a CIFAR-sized uint8 tensor, or a clear LabError.

The augmentation lab, the saliency page and `python -m core explain --image PATH` all take pictures through
here, so they accept and refuse the same things.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from core.errors import LabError

MIN_SIDE = 8  # pixels; smaller than this is not a picture of anything
MAX_PIXELS = 40_000_000  # refuse decompression bombs and panoramas before decoding them


def decode_image(data: bytes, *, name: str = "the file", size: int = 32) -> torch.Tensor:
    """Encoded image bytes -> (3, size, size) uint8, RGB, resized (bilinear, antialiased) to a square."""
    if not data:
        raise LabError(f"{name} is empty: choose a JPEG, PNG, WebP, BMP or GIF picture")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
            if w * h > MAX_PIXELS:
                raise LabError(f"{name} is {w}×{h} pixels - too large to open safely; resize it below 40 megapixels")
            if min(w, h) < MIN_SIDE:
                raise LabError(f"{name} is only {w}×{h} pixels; a picture needs at least {MIN_SIDE}×{MIN_SIDE}")
            img = probe.convert("RGB")
            img.load()
    except LabError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise LabError(f"{name} is not a picture this lab can read: choose a JPEG, PNG, WebP, BMP or GIF file") from None
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)  # (size·size·3,)
    return t.view(size, size, 3).permute(2, 0, 1).contiguous()  # (3, size, size)


def read_image_file(path: str | Path, size: int = 32) -> torch.Tensor:
    """A picture on disk -> (3, size, size) uint8; LabError when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise LabError(f"no such picture: {path}")
    return decode_image(path.read_bytes(), name=path.name, size=size)
