"""The GPU class script's parts on the CPU at tiny sizes: the tensor-file converter against core's folder loader,
airbench's time scaling, every preset's tiny config, and the in-process items end to end (graphs, airbench)."""

import json

import pytest
import torch
from PIL import Image

from bench import gpu_class
from bench.cifar_tensors import convert, load_tensors
from core.data.loading import load_dataset
from core.errors import DataError
from core.lessons.presets import PRESETS


def write_folder(root, classes=("cat", "dog"), n_train=3, n_test=2):
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")
    return root


def test_the_tensor_file_holds_exactly_what_the_folder_loader_decodes(tmp_path):
    folder = write_folder(tmp_path / "imgs")
    out = tmp_path / "c.pt"
    convert(str(folder), out)
    back = load_tensors(out)
    ref = load_dataset(f"folder:{folder}", tmp_path / "cache")
    assert back.name == ref.name == f"folder:{folder.resolve()}" and back.classes == ("cat", "dog")
    for a, b in ((back.train_x, ref.train_x), (back.train_y, ref.train_y), (back.test_x, ref.test_x),
                 (back.test_y, ref.test_y)):
        assert torch.equal(a, b)
    assert back.train_x.shape == (6, 3, 32, 32) and back.mean == pytest.approx(ref.mean)
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a tensor file written by scripts/cifar_tensors.py"):
        load_tensors(tmp_path / "other.pt")


def test_airbench_time_is_scaled_by_rate_and_by_bandwidth():
    assert gpu_class.scaled(3.83, "NVIDIA H200") == {"by_bf16_rate_s": round(3.83 * 312 / 989, 2),
                                                     "by_bandwidth_s": round(3.83 * 2.04 / 4.8, 2)}
    assert gpu_class.scaled(3.83, "NVIDIA A100-SXM4-80GB") == {"by_bf16_rate_s": 3.83, "by_bandwidth_s": 3.83}
    assert gpu_class.scaled(3.83, "CPU") is None


def test_every_preset_has_a_tiny_config_and_pretrained_ones_start_from_random_weights():
    sizes = gpu_class.Sizes.tiny_sizes()
    for name in PRESETS:
        cfg = gpu_class.config_for(name, sizes, "synthetic", "cpu", epochs=1)
        assert (cfg.epochs, cfg.data.subset, cfg.batch_size) == (1, 100, 50)
        if cfg.model.name.endswith("_imagenet"):
            assert cfg.model.options["weights"] == "none" and cfg.model.options["image_size"] == 32
    full = gpu_class.config_for("mobilenet-pretrained", gpu_class.Sizes.full(), "folder:/x", "cuda",
                                **{"model.weights": "/w.pth"})
    assert full.model.options["weights"] == "/w.pth" and full.batch_size == 128 and full.data.subset is None


@pytest.mark.slow
def test_the_in_process_items_run_end_to_end_and_write_their_json(tmp_path):
    ds = load_dataset("synthetic")
    sizes = gpu_class.Sizes.tiny_sizes()
    results = gpu_class.run_all(["graphs", "airbench"], ds, "synthetic", sizes, "cpu", tmp_path, None)
    saved = json.loads((tmp_path / "gpu_class.json").read_text())
    assert saved["graphs"]["speedup"] == results["graphs"]["speedup"]
    eager, graphed = results["graphs"]["eager"], results["graphs"]["graphed"]
    assert eager["status"] == graphed["status"] == "completed"
    assert eager["test_acc"] == graphed["test_acc"]  # on a CPU cuda_graphs does nothing: the very same run
    curve = results["airbench"]["curve"]
    assert [c["epoch"] for c in curve] == [1, 2] and results["airbench"]["airbench"]["acc"] == 0.9401
    assert "item_wall_s" in saved["airbench"] and (tmp_path / "gpu_class.log").read_text().count("--- ") == 2
