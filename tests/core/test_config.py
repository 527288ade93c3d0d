"""Configs validate with clear messages, round-trip through JSON, and take overrides by short or dotted name."""

import pytest

from core.config import (
    AugmentConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    from_json,
    get_value,
    to_json,
)
from core.errors import ConfigError
from core.lessons.presets import PRESETS, preset_config


def test_defaults_are_the_reports_settings():
    c = TrainConfig()
    assert (c.batch_size, c.epochs, c.optim.name, c.optim.lr, c.data.dataset) == (256, 20, "adam", 1e-4, "cifar100")


@pytest.mark.parametrize("make, words", [
    (lambda: OptimConfig(name="rmsprop"), "optimizer must be one of"),
    (lambda: OptimConfig(lr=0), "lr must be a positive number"),
    (lambda: TrainConfig(batch_size=0), "batch_size"),
    (lambda: TrainConfig(epochs=2.5), "epochs"),
    (lambda: DataConfig(dataset="imagenet"), "folder:PATH"),
    (lambda: DataConfig(subset=-3), "subset"),
    (lambda: AugmentConfig(flip_p=1.5), "flip_p must be a probability"),
    (lambda: AugmentConfig(crop_mode="wrap"), "crop_mode"),
    (lambda: TrainConfig(device="tpu"), "device must be one of"),
])
def test_invalid_values_name_the_field(make, words):
    with pytest.raises(ConfigError, match=words):
        make()


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_json(name):
    c = PRESETS[name].config
    assert from_json(to_json(c)) == c


def test_overrides_by_short_and_dotted_names():
    c = apply_overrides(TrainConfig(), {"lr": 1e-3, "epochs": 3, "subset": 500, "optimizer": "sgd",
                                        "flip_p": 0.5, "model.widths": [64, 64]})
    assert c.optim.lr == 1e-3 and c.epochs == 3 and c.data.subset == 500 and c.optim.name == "sgd"
    assert c.data.augment.flip_p == 0.5
    assert c.model.options["widths"] == (64, 64)  # lists are frozen to tuples
    assert get_value(c, "lr") == 1e-3 and get_value(c, "model.widths") == (64, 64)
    assert TrainConfig().optim.lr == 1e-4  # the original is untouched (frozen)


def test_override_errors_are_clear():
    with pytest.raises(ConfigError, match="unknown setting 'lrr'"):
        apply_overrides(TrainConfig(), {"lrr": 1})
    with pytest.raises(ConfigError, match="epochs"):
        apply_overrides(TrainConfig(), {"epochs": 0})
    with pytest.raises(ConfigError, match="unknown field"):
        from_dict({"epochs": 3, "bogus": 1})


def test_preset_plus_overrides():
    c = preset_config("cnn-flip-crop", epochs=3, subset=2000)
    assert c.epochs == 3 and c.data.subset == 2000 and c.data.augment.crop_padding == 4
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("nope")


def test_configs_are_hashable_and_comparable():
    a = ModelConfig("cnn", {"widths": [32, 32]})
    b = ModelConfig("cnn", {"widths": (32, 32)})
    assert a == b and hash(a) == hash(b)
