"""Pictures from outside: RGB conversion, resizing, and clear refusals."""

import io

import pytest
import torch
from PIL import Image

from core.data.images import decode_image, read_image_file
from core.errors import LabError


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_rgb_32_is_kept_exactly():
    arr = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = decode_image(encode(Image.fromarray(arr.numpy())))
    assert out.shape == (3, 32, 32) and out.dtype == torch.uint8
    assert torch.equal(out, arr.permute(2, 0, 1))


def test_grayscale_rgba_and_large_pictures_become_rgb_32():
    for img in (Image.new("L", (100, 60), 128), Image.new("RGBA", (64, 64), (255, 0, 0, 128)),
                Image.new("P", (40, 50))):
        out = decode_image(encode(img))
        assert out.shape == (3, 32, 32)
    red = decode_image(encode(Image.new("RGB", (300, 200), (255, 0, 0)), "JPEG"))
    assert red[0].float().mean() > 240 and red[1].float().mean() < 15


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"hello, I am a text file", "not a picture"),
    (encode(Image.new("RGB", (1, 1))), "only 1×1 pixels"),
])
def test_refusals_say_what_to_do(data, words):
    with pytest.raises(LabError, match=words):
        decode_image(data, name="upload")


def test_huge_pictures_are_refused_before_decoding(monkeypatch):
    import core.data.images as images
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    with pytest.raises(LabError, match="too large"):
        decode_image(encode(Image.new("RGB", (20, 20))))


def test_read_image_file(tmp_path):
    (tmp_path / "a.png").write_bytes(encode(Image.new("RGB", (32, 32), (0, 255, 0))))
    assert read_image_file(tmp_path / "a.png")[1].min() == 255
    with pytest.raises(LabError, match="no such picture"):
        read_image_file(tmp_path / "missing.png")
