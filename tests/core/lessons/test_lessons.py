"""Findings compare the lab's gains with the report's and say so honestly."""

import pytest

from core.lessons.findings import compare_with_report


def test_agreeing_and_disagreeing_gains():
    found = {f.preset: f for f in compare_with_report({"cnn": 0.30, "cnn-128": 0.30, "cnn-flip": 0.34,
                                                       "cnn-flip-crop": 0.31, "mlp": 0.25})}
    assert found["cnn"].verdict == "agrees" and found["cnn"].lab_gain == pytest.approx(0.05)
    assert found["cnn-flip"].verdict == "agrees"
    crop = found["cnn-flip-crop"]
    assert crop.verdict == "disagrees" and crop.report_gain == pytest.approx(0.03)
    assert "disagrees with the report" in crop.message and "underfitting" in crop.message  # the preset's caveat


def test_small_gains_are_called_unclear_and_missing_baselines_skipped():
    found = {f.preset: f for f in compare_with_report({"cnn": 0.300, "cnn-128": 0.305, "cnn-bn": 0.5})}
    assert found["cnn-128"].verdict == "unclear" and "no clear difference" in found["cnn-128"].message
    assert "cnn-bn" in found  # its baseline cnn-128 is present
    assert "cnn" not in found  # its baseline mlp has no result


def test_flip_and_crop_start_from_the_128_network_as_the_report_says():
    """§VI: the flip and crop runs began "from the network with 128/128/128/256 filters"."""
    from core.lessons.presets import PRESETS

    for name in ("cnn-flip", "cnn-flip-crop"):
        model = PRESETS[name].config.model
        assert model.name == "cnn" and tuple(model.options["widths"]) == (128, 128, 128, 256)
        assert "128/128/128/256" in PRESETS[name].note
    assert PRESETS["cnn-flip"].baseline == "cnn-128" and PRESETS["cnn-flip-crop"].baseline == "cnn-flip"
    # nothing else changes between the baseline and flip but the augmentation
    base, flip = PRESETS["cnn-128"].config, PRESETS["cnn-flip"].config
    assert flip.model == base.model and flip.optim == base.optim and flip.epochs == base.epochs


REPORT_TABLE = {  # preset: (report acc, model, widths, optimizer, lr, batch, epochs, augmentation) - issue 2's table
    "mlp": (0.26, "mlp", None, "adam", 1e-4, 256, 20, "none"),
    "cnn": (0.30, "cnn", None, "adam", 1e-4, 256, 20, "none"),
    "cnn-128": (0.31, "cnn", (128, 128, 128, 256), "adam", 1e-4, 256, 20, "none"),
    "cnn-256": (0.34, "cnn", (256, 256, 256, 512), "adam", 1e-4, 256, 20, "none"),
    "cnn-512": (0.36, "cnn", (512, 512, 512, 1024), "adam", 1e-4, 256, 20, "none"),
    "cnn-bn": (0.42, "cnn", (128, 128, 128, 256), "adam", 1e-4, 256, 20, "none"),
    "cnn-bn-fc8192": (0.43, "cnn", (128, 128, 128, 256), "adam", 1e-4, 256, 20, "none"),
    "cnn-bn-dropout": (0.43, "cnn", (128, 128, 128, 256), "adam", 1e-4, 256, 20, "none"),
    "cnn-flip": (0.36, "cnn", (128, 128, 128, 256), "adam", 1e-4, 256, 20, "flip 0.5"),
    "cnn-flip-crop": (0.39, "cnn", (128, 128, 128, 256), "adam", 1e-4, 256, 20, "flip 0.5 + crop 4"),
    "resnet18-pretrained": (0.76, "resnet18_imagenet", None, "adam", 1e-4, 128, 10, "none"),
    "resnet18-pretrained-aug": (0.83, "resnet18_imagenet", None, "adam", 1e-4, 128, 10, "flip 0.5 + crop 4"),
    "cnn-sgd": (0.60, "cnn", (128, 128, 256, 256), "sgd", 0.05, 256, 60, "flip 0.5 + crop 4"),
}


@pytest.mark.parametrize("name", sorted(REPORT_TABLE))
def test_every_preset_matches_the_report_table(name):
    from core.lessons.presets import PRESETS

    acc, model, widths, opt, lr, batch, epochs, aug = REPORT_TABLE[name]
    p = PRESETS[name]
    c = p.config
    assert p.report_acc == pytest.approx(acc) and c.model.name == model and c.data.dataset == "cifar100"
    if model == "cnn":  # the model's default widths are the report's base CNN
        assert tuple(c.model.options.get("widths", (32, 32, 32, 64))) == (widths or (32, 32, 32, 64))
    assert (c.optim.name, c.batch_size, c.epochs, c.data.augment.describe()) == (opt, batch, epochs, aug)
    assert c.optim.lr == pytest.approx(lr)
