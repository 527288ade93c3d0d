"""Flags shared by the commands that build a config (train, lr-find, sweep) and small output helpers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.config import TrainConfig, apply_overrides, from_json, parse_value
from core.errors import ConfigError
from core.lessons.presets import PRESETS, get_preset


def add_config_args(p: argparse.ArgumentParser, *, default_preset: str | None = "cnn") -> None:
    g = p.add_argument_group("what to train")
    g.add_argument("--preset", default=default_preset, choices=list(PRESETS), metavar="NAME",
                   help=f"a preset of the report (default {default_preset}); see `python -m core presets`")
    g.add_argument("--config", metavar="FILE", help="a JSON config file instead of a preset")
    g.add_argument("--dataset", help="cifar100 | cifar10 | synthetic | folder:PATH")
    g.add_argument("--subset", type=int, metavar="N", help="training images, stratified (same per class)")
    g.add_argument("--test-subset", type=int, metavar="N", help="test images, stratified")
    g.add_argument("--epochs", type=int, metavar="N")
    g.add_argument("--batch-size", type=int, metavar="N")
    g.add_argument("--lr", type=float, metavar="X", help="peak learning rate")
    g.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    g.add_argument("--schedule", choices=["constant", "step", "cosine", "onecycle"])
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    g.add_argument("--seed", type=int, metavar="N")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting, e.g. --set momentum=0.9 --set model.widths=[64,64,64,128] (repeatable)")
    g.add_argument("--data-dir", metavar="DIR", help="where datasets live (default $CIFAR_LAB_DATA or ./data)")
    g.add_argument("--download", action="store_true", help="download CIFAR if it is missing")


_FLAGS = ("dataset", "subset", "test_subset", "epochs", "batch_size", "lr", "optimizer", "schedule", "device", "seed")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Preset (or --config file) + the flags given + --set overrides. Bad values raise ConfigError."""
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as f:
                base = from_json(f.read())
        except OSError as e:
            raise ConfigError(f"cannot read config file {args.config}: {e.strerror}") from None
    else:
        base = get_preset(args.preset).config
    overrides: dict[str, Any] = {k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = parse_value(value)
    return apply_overrides(base, overrides)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"
