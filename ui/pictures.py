"""Pictures for pages: tensors -> upscaled numpy images, and uploaded files -> CIFAR-sized tensors.

CIFAR images are 32×32, so everything is enlarged with nearest-neighbour: students should see real pixels,
not a blur.
"""

from __future__ import annotations

import numpy as np
import torch

from core.data.images import decode_image  # core owns the rules, the page only shows the message
from core.errors import LabError

MAX_UPLOAD_MB = 10


def to_hwc_uint8(img: torch.Tensor, scale: int = 4) -> np.ndarray:
    """(3, H, W) uint8, or float in [0, 1] -> (H·scale, W·scale, 3) uint8, nearest-neighbour."""
    if img.dtype != torch.uint8:
        img = (img.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    if img.dim() == 2:
        img = img.unsqueeze(0).expand(3, -1, -1)
    arr = img.cpu().permute(1, 2, 0).numpy()
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.ascontiguousarray(arr)


def read_upload(uploaded) -> torch.Tensor:
    """An uploaded file -> (3, 32, 32) uint8. Raises LabError for anything that is not a usable picture."""
    data = uploaded.getvalue()
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise LabError(f"{uploaded.name} is {len(data) / 2**20:.1f} MB; pictures up to {MAX_UPLOAD_MB} MB, please")
    return decode_image(data, name=uploaded.name)
