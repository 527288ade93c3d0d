"""`python -m core explain`: a PNG for a checkpoint trained by core.train.engine on the synthetic set, found directly or
through the run library, and one-line errors for pictures and flags that are wrong."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from core.cli.main import main
from core.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.train.engine import train

CONFIG = TrainConfig(data=DataConfig(dataset="synthetic", subset=200, test_subset=50),
                     model=ModelConfig("cnn", {"widths": (4, 8), "pool_after": (1, 2), "fc": 16}),
                     optim=OptimConfig(name="adam", lr=3e-3), batch_size=50, epochs=1, device="cpu", log_every=100)




@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    events = list(train(CONFIG, checkpoint_dir=folder))
    assert events[-1].status == "completed"
    return folder / "last.pt"


def png(path) -> Image.Image:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(path)
    img.load()
    assert img.format == "PNG" and img.mode == "RGB"
    return img


def test_gradcam_figure_for_a_test_image(checkpoint, tmp_path, capsys):
    out = tmp_path / "x.png"
    rc = main(["explain", "--checkpoint", str(checkpoint), "--image", "test:0", "--method", "gradcam",
               "--out", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "gradcam" and len(summary["top5"]) == 5
    assert summary["target"] == summary["top5"][0][0]  # no --target: the prediction is explained
    img = png(out)
    assert img.width >= 3 * 256 and img.height >= 256  # input, map and overlay panels side by side


@pytest.mark.parametrize("method", ["saliency", "filters", "featuremaps", "sanity"])
def test_other_views_write_pngs(checkpoint, tmp_path, method, capsys):
    out = tmp_path / f"{method}.png"
    rc = main(["explain", "--checkpoint", str(checkpoint), "--image", "test:1", "--method", method,
               "--target", "ring", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"wrote {out}")
    png(out)


def test_a_picture_file_and_the_run_library(checkpoint, tmp_path, capsys):
    picture = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture)
    from core.runs.library import open_library

    lib = open_library(tmp_path / "runs", recover=False)
    run_id = lib.insert_run(CONFIG, device="cpu", status="completed", started_by="cli")
    lib.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    shutil.copy(checkpoint, lib.run_dir(run_id) / "last.pt")  # no best.pt: falls back to last.pt
    out = tmp_path / "lib.png"
    rc = main(["explain", "--run", run_id, "--runs-dir", str(tmp_path / "runs"), "--image", str(picture),
               "--method", "occlusion", "--window", "8", "--stride", "8", "--out", str(out), "--json"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["checkpoint"].endswith("last.pt")
    png(out)
    rc = main(["explain", "--run", "nope", "--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "no run with id 'nope'" in err and err.count("\n") == 1


@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing.jpg", "no such picture"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "not a picture this lab can read"),
    (lambda d: Image.new("RGB", (1, 1)).save(d / "dot.png") or d / "dot.png", "only 1×1 pixels"),
])
def test_bad_pictures_exit_1_with_one_line(checkpoint, tmp_path, capsys, make, expected):
    path = make(tmp_path)
    rc = main(["explain", "--checkpoint", str(checkpoint), "--image", str(path), "--out", str(tmp_path / "y.png")])
    err = capsys.readouterr().err
    assert rc == 1 and expected in err and err.count("\n") == 1
    assert not (tmp_path / "y.png").exists()


def test_bad_flags_and_indices(checkpoint, tmp_path, capsys):
    out = str(tmp_path / "z.png")
    base = ["explain", "--checkpoint", str(checkpoint), "--out", out]
    assert main(base + ["--image", "test:50"]) == 1
    assert "has 50 images (0..49)" in capsys.readouterr().err
    assert main(base + ["--target", "zebra"]) == 2
    assert "--target 'zebra' is not a class of this run" in capsys.readouterr().err
    assert main(base + ["--image", "test:x"]) == 2
    assert main(["explain", "--out", out]) == 2
    assert "exactly one of --run ID or --checkpoint PATH" in capsys.readouterr().err
    assert main(["explain", "--checkpoint", str(tmp_path / "none.pt"), "--out", out]) == 1
    assert "does not exist" in capsys.readouterr().err
