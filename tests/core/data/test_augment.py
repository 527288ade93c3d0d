"""core/data/augment.py: exact per-image invariants of each op, the sampling order, seeding, normalize and params text.

Every test runs on CPU and, when torch.cuda.is_available(), again on CUDA (skipped otherwise).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from core.config import AugmentConfig
from core.data.augment import (
    AugmentParams,
    apply_crop,
    apply_erase,
    apply_flip,
    apply_jitter,
    augment,
    erase_boxes,
    make_generator,
    normalize,
    sample_params,
    train_batch,
)
from core.errors import ConfigError

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]
MEAN = (0.507, 0.4865, 0.4409)
STD = (0.2673, 0.2564, 0.2762)
ALL_OPS = AugmentConfig(flip_p=0.5, crop_padding=4, erase_p=0.5, erase_size=8,
                        brightness=0.3, contrast=0.3, saturation=0.3)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


def images(device: str, b: int = 16, h: int = 8, w: int = 12, seed: int = 0) -> torch.Tensor:
    """(B, 3, H, W) uint8, deliberately not square so that H/W mix-ups show."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8).to(device)


def as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255


# --- flip ------------------------------------------------------------------------------------------------

def test_flip_is_exact_torch_flip_per_image(device):
    x = images(device)
    out, params = augment(x, AugmentConfig(flip_p=0.5), make_generator(1, device))
    assert params.flip.dtype == torch.bool and params.flip.shape == (16,)
    assert params.crop is None and params.erase is None and params.jitter is None
    assert 0 < int(params.flip.sum()) < 16  # both outcomes occur for this seed
    for i in range(16):
        expected = torch.flip(x[i], dims=[-1]) if params.flip[i] else x[i]
        assert torch.equal(out[i], as_float(expected))


@pytest.mark.parametrize(("p", "count"), [(0.0, 0), (1.0, 16)])
def test_flip_probability_extremes(device, p, count):
    x = images(device)
    out, params = augment(x, AugmentConfig(flip_p=p, crop_padding=1), make_generator(0, device))
    if p == 0.0:
        assert params.flip is None  # disabled: nothing drawn, nothing reported
    else:
        assert int(params.flip.sum()) == count


def test_apply_flip_explicit(device):
    x = images(device, b=3)
    flip = torch.tensor([True, False, True], device=device)
    out = apply_flip(x, flip)
    assert torch.equal(out, torch.stack([x[0].flip(-1), x[1], x[2].flip(-1)]))
    assert out.dtype == torch.uint8


# --- crop ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["zero", "reflect"])
def test_crop_is_exact_window_of_padded_image(device, mode):
    pad = 4
    x = images(device, b=32)
    out, params = augment(x, AugmentConfig(crop_padding=pad, crop_mode=mode), make_generator(2, device))
    padded = F.pad(x, (pad,) * 4, mode="constant" if mode == "zero" else "reflect")
    crop = params.crop
    assert crop.dtype == torch.int64 and crop.shape == (32, 2)
    assert int(crop.min()) >= 0 and int(crop.max()) <= 2 * pad
    assert len({tuple(r) for r in crop.tolist()}) > 8  # per-image offsets, not one for the batch
    for i, (top, left) in enumerate(crop.tolist()):
        assert torch.equal(out[i], as_float(padded[i, :, top:top + 8, left:left + 12]))


def test_crop_then_flip_order(device):
    pad = 2
    x = images(device, b=16)
    out, params = augment(x, AugmentConfig(flip_p=0.5, crop_padding=pad), make_generator(3, device))
    padded = F.pad(x, (pad,) * 4)
    for i, (top, left) in enumerate(params.crop.tolist()):
        window = padded[i, :, top:top + 8, left:left + 12]
        assert torch.equal(out[i], as_float(window.flip(-1) if params.flip[i] else window))


def test_apply_crop_any_dtype_and_layout(device):
    x = as_float(images(device, b=4)).contiguous(memory_format=torch.channels_last)
    offsets = torch.tensor([[0, 0], [6, 6], [3, 0], [0, 5]], device=device)
    out = apply_crop(x, offsets, 3, "reflect")
    padded = F.pad(x, (3,) * 4, mode="reflect")
    for i, (top, left) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], padded[i, :, top:top + 8, left:left + 12])


def test_reflect_padding_must_be_smaller_than_image(device):
    with pytest.raises(ConfigError, match="crop_mode='zero'"):
        augment(images(device, h=4, w=4), AugmentConfig(crop_padding=4, crop_mode="reflect"),
                make_generator(0, device))


# --- erase -----------------------------------------------------------------------------------------------

def test_erase_boxes_clip_at_borders(device):
    centers = torch.tensor([[0, 0], [7, 11], [4, 6], [4, 6]], device=device)
    applied = torch.tensor([True, True, True, False], device=device)
    boxes = erase_boxes(centers, 4, 8, 12, applied)
    assert boxes.tolist() == [[0, 0, 2, 2], [5, 9, 3, 3], [2, 4, 4, 4], [0, 0, 0, 0]]
    assert erase_boxes(centers[:1], 5, 8, 12).tolist() == [[0, 0, 3, 3]]  # odd size: centred exactly


def test_apply_erase_sets_box_to_fill_and_nothing_else(device):
    x = as_float(images(device, b=3))
    boxes = torch.tensor([[0, 0, 2, 2], [5, 9, 3, 3], [0, 0, 0, 0]], device=device)
    fill = (0.25, 0.5, 0.75)
    out = apply_erase(x, boxes, fill)
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        inside = torch.zeros(8, 12, dtype=torch.bool, device=device)
        inside[top:top + h, left:left + w] = True
        for c in range(3):
            assert torch.all(out[i, c][inside] == fill[c])
            assert torch.equal(out[i, c][~inside], x[i, c][~inside])
    assert torch.equal(out[2], x[2])


def test_augment_erase_reports_clipped_boxes(device):
    x = images(device, b=32)
    fill = (0.1, 0.2, 0.3)
    out, params = augment(x, AugmentConfig(erase_p=0.5, erase_size=6), make_generator(4, device), fill=fill)
    boxes = params.erase.tolist()
    erased = [b for b in boxes if b[2]]
    assert 0 < len(erased) < 32
    assert any(b[2] < 6 or b[3] < 6 for b in erased)  # some clipped at a border for this seed
    for i, (top, left, h, w) in enumerate(boxes):
        assert (h == 0) == (w == 0)
        assert top >= 0 and left >= 0 and top + h <= 8 and left + w <= 12 and h <= 6 and w <= 6
        expected = as_float(x[i])
        expected[:, top:top + h, left:left + w] = torch.tensor(fill, device=device).view(3, 1, 1)
        assert torch.equal(out[i], expected)


# --- jitter ----------------------------------------------------------------------------------------------

def reference_jitter(img: torch.Tensor, b: float, c: float, s: float) -> torch.Tensor:
    """One (3, H, W) image, the textbook way."""
    def gray(t):
        return 0.2989 * t[0] + 0.587 * t[1] + 0.114 * t[2]
    out = (img * b).clamp(0, 1)
    out = (c * out + (1 - c) * gray(out).mean()).clamp(0, 1)
    return (s * out + (1 - s) * gray(out)).clamp(0, 1)


def test_jitter_matches_reference_and_torchvision(device):
    x = torch.rand(12, 3, 8, 12, generator=torch.Generator().manual_seed(5)).to(device)
    factors = (torch.rand(12, 3, generator=torch.Generator().manual_seed(6)) + 0.5).to(device)  # [0.5, 1.5)
    out = apply_jitter(x, factors)
    for i, (b, c, s) in enumerate(factors.tolist()):
        torch.testing.assert_close(out[i], reference_jitter(x[i], b, c, s), atol=1e-5, rtol=0)
        tv = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[i], b), c), s)
        torch.testing.assert_close(out[i], tv, atol=1e-5, rtol=0)
    assert torch.equal(x, torch.rand(12, 3, 8, 12, generator=torch.Generator().manual_seed(5)).to(device))


def test_jitter_skipping_disabled_ops_equals_factor_one(device):
    x = torch.rand(4, 3, 8, 12, generator=torch.Generator().manual_seed(7)).to(device)
    factors = torch.tensor([[1.3, 1.0, 1.0], [0.7, 1.0, 1.0], [1.0, 1.0, 1.0], [1.9, 1.0, 1.0]], device=device)
    torch.testing.assert_close(apply_jitter(x, factors, (True, False, False)), apply_jitter(x, factors),
                               atol=0, rtol=0)


def test_augment_jitter_factors_in_range_and_applied(device):
    x = images(device, b=32)
    cfg = AugmentConfig(brightness=0.4, saturation=0.2)
    out, params = augment(x, cfg, make_generator(8, device))
    b, c, s = params.jitter.unbind(1)
    assert params.jitter.dtype == torch.float32
    assert float(b.min()) >= 0.6 and float(b.max()) <= 1.4 and float(b.std()) > 0.1
    assert torch.all(c == 1.0)  # disabled: exactly 1, not drawn
    assert float(s.min()) >= 0.8 and float(s.max()) <= 1.2
    torch.testing.assert_close(out, apply_jitter(as_float(x), params.jitter), atol=1e-6, rtol=0)


# --- sampling order, seeding, global RNG ------------------------------------------------------------------

def test_draw_order_is_documented_order(device):
    x = images(device, b=16)
    params = sample_params(x, ALL_OPS, make_generator(9, device))
    g = make_generator(9, device)
    kw = {"generator": g, "device": device}
    crop = torch.randint(0, 9, (16, 2), **kw)
    flip = torch.rand(16, **kw) < 0.5
    jitter = torch.stack([torch.rand(16, **kw) * 0.6 + 0.7 for _ in range(3)], dim=1)
    apply = torch.rand(16, **kw) < 0.5
    centers = torch.stack([torch.randint(0, 8, (16,), **kw), torch.randint(0, 12, (16,), **kw)], dim=1)
    assert torch.equal(params.crop, crop) and torch.equal(params.flip, flip)
    torch.testing.assert_close(params.jitter, jitter, atol=1e-6, rtol=0)
    assert torch.equal(params.erase, erase_boxes(centers, 8, 8, 12, apply))


def test_seeded_calls_repeat_and_seeds_differ(device):
    x = images(device, b=16)
    out1, p1 = augment(x, ALL_OPS, make_generator(10, device))
    out2, p2 = augment(x, ALL_OPS, make_generator(10, device))
    out3, p3 = augment(x, ALL_OPS, make_generator(11, device))
    assert torch.equal(out1, out2) and p1.to_rows() == p2.to_rows()
    assert not torch.equal(out1, out3) and p1.to_rows() != p3.to_rows()


def test_generator_leaves_global_rng_alone(device):
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state() if device == "cuda" else None
    augment(images(device), ALL_OPS, make_generator(12, device))
    train_batch(images(device), ALL_OPS, make_generator(12, device), MEAN, STD)
    assert torch.equal(torch.get_rng_state(), cpu_state)
    if cuda_state is not None:
        assert torch.equal(torch.cuda.get_rng_state(), cuda_state)


def test_no_generator_uses_default_generator(device):
    x = images(device)
    torch.manual_seed(13)
    out1, _ = augment(x, ALL_OPS)
    torch.manual_seed(13)
    out2, _ = augment(x, ALL_OPS)
    assert torch.equal(out1, out2)


def test_bad_inputs_raise_clear_errors(device):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        augment(images(device)[:, :1], ALL_OPS, make_generator(0, device))
    with pytest.raises(ValueError, match="one value per channel"):
        augment(images(device), AugmentConfig(erase_p=1.0), make_generator(0, device), fill=(0.5, 0.5))
    if device == "cuda":
        with pytest.raises(ValueError, match="make_generator"):
            augment(images(device), ALL_OPS, make_generator(0, "cpu"))


# --- train_batch and normalize -------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [ALL_OPS, AugmentConfig(flip_p=0.5, crop_padding=4)], ids=["all", "crop_flip"])
def test_train_batch_equals_normalized_augment(device, cfg):
    x = images(device, b=16)
    got = train_batch(x, cfg, make_generator(14, device), MEAN, STD)
    aug, _ = augment(x, cfg, make_generator(14, device), fill=MEAN)
    torch.testing.assert_close(got, normalize(aug, MEAN, STD), atol=1e-6, rtol=0)
    assert got.dtype == torch.float32 and got.shape == x.shape and got.device == x.device


def test_train_batch_disabled_is_plain_normalize_and_draws_nothing(device):
    x = images(device)
    g = make_generator(15, device)
    state = g.get_state()
    assert torch.equal(train_batch(x, AugmentConfig(), g, MEAN, STD), normalize(x, MEAN, STD))
    assert torch.equal(g.get_state(), state)


def test_normalize_uint8_equals_float_path(device):
    x = images(device, b=8)
    mean = torch.tensor(MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(STD, device=device).view(3, 1, 1)
    expected = (x.float() / 255 - mean) / std
    torch.testing.assert_close(normalize(x, MEAN, STD), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(normalize(x.float() / 255, MEAN, STD), expected, atol=1e-6, rtol=0)
    erased_to_mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(normalize(erased_to_mean, MEAN, STD), torch.zeros(1, 3, 2, 2, device=device),
                               atol=1e-6, rtol=0)


# --- describe / to_rows -------------------------------------------------------------------------------------

def test_describe_and_rows_for_known_params():
    params = AugmentParams(
        flip=torch.tensor([True, False]),
        crop=torch.tensor([[6, 1], [4, 4]]),
        erase=torch.tensor([[4, 10, 8, 8], [0, 0, 0, 0]]),
        jitter=torch.tensor([[1.12, 1.0, 1.0], [1.0, 1.0, 1.0]]),
        crop_padding=4,
    )
    assert params.describe(0) == "flipped · crop shift (+2, -3) · erased 8×8 at (4, 10) · brightness ×1.12"
    assert params.describe(1) == "unchanged"
    rows = params.to_rows()
    assert len(rows) == 2
    assert rows[0] == {
        "flipped": True, "shift_y": 2, "shift_x": -3,
        "erase_top": 4, "erase_left": 10, "erase_height": 8, "erase_width": 8,
        "brightness": pytest.approx(1.12), "contrast": 1.0, "saturation": 1.0,
        "description": params.describe(0),
    }
    assert rows[1]["description"] == "unchanged" and rows[1]["shift_y"] == 0 and rows[1]["flipped"] is False


def test_rows_of_a_partial_config_have_neutral_values(device):
    _, params = augment(images(device, b=4), AugmentConfig(saturation=0.5), make_generator(16, device))
    rows = params.to_rows()
    assert [r["flipped"] for r in rows] == [False] * 4 and all(r["shift_x"] == 0 for r in rows)
    assert all(r["description"].startswith("saturation ×") for r in rows)
    assert params.describe(3) == rows[3]["description"]


def test_empty_batch(device):
    x = images(device, b=0)
    out, params = augment(x, ALL_OPS, make_generator(0, device))
    assert out.shape == (0, 3, 8, 12) and params.to_rows() == []


def test_describe_negative_index_and_len():
    params = AugmentParams(flip=torch.tensor([False, True]))
    assert len(params) == 2 and len(AugmentParams()) == 0
    assert params.describe(-1) == "flipped" and params.describe(0) == "unchanged"
    with pytest.raises(IndexError):
        params.describe(2)
