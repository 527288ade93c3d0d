"""`python -m core sweep`: queue a grid of runs that share a sweep id (or, with --dry-run, only print the grid).

    python -m core sweep --preset cnn --param lr=1e-4,1e-3,1e-2 --param batch_size=128,256 --epochs 5
    python -m core sweep --preset cnn --lesson lr --dry-run --json

Values are parsed like --set values (core/cli/common.parse_value); a comma inside brackets or quotes does not
split (`--param model.widths=[32,32,32,64],[64,64,64,128]`). The runs go to the run library's queue (started
by "cli"); follow them with `python -m core runs --sweep ID`.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from core.cli.common import add_config_args, config_from_args, parse_value, print_json
from core.config import TrainConfig
from core.errors import ConfigError
from core.runs import sweeps


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="queue a grid of runs (e.g. several learning rates) that share a sweep id")
    add_config_args(p)
    p.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a setting and the values to try, e.g. --param lr=1e-4,1e-3 (repeatable: every combination)")
    p.add_argument("--lesson", choices=list(sweeps.LESSONS),
                   help="a ready-made grid: lr (too low / good / too high), data-size (10-100%% of the images), "
                        "batch-epochs")
    p.add_argument("--train-size", type=int, metavar="N",
                   help="training images of the dataset, for --lesson data-size (default: --subset, else 50000)")
    p.add_argument("--name", metavar="PREFIX", help="run names start with this (default: the preset)")
    p.add_argument("--dry-run", action="store_true", help="print the expanded grid; queue nothing")
    p.add_argument("--json", action="store_true", help="one JSON object {sweep_id, runs: [{run_id, overrides}]}")
    p.add_argument("--runs-dir", metavar="DIR", help="run library folder (default $CIFAR_LAB_RUNS or ./runs)")
    p.set_defaults(func=cmd_sweep)


def split_values(text: str) -> list[str]:
    """'1e-4,1e-3' -> ['1e-4', '1e-3']; commas inside [], (), {} or quotes do not split."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_params(items: list[str]) -> dict[str, list[Any]]:
    """['lr=1e-4,1e-3', 'seed=0,1'] -> {'lr': [0.0001, 0.001], 'seed': [0, 1]}; ConfigError on bad syntax."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--param expects KEY=VALUE1,VALUE2,..., e.g. lr=1e-4,1e-3; got {item!r}")
        if key in grid:
            raise ConfigError(f"--param {key} is given twice; list all its values in one --param")
        raw = split_values(values)
        if any(not v.strip() for v in raw):
            raise ConfigError(f"--param {item!r} has an empty value (two commas in a row, or a trailing comma?)")
        grid[key] = [parse_value(v.strip()) for v in raw]
    return grid


def _lesson_grid(args: argparse.Namespace, config: TrainConfig) -> dict[str, list[Any]]:
    if args.lesson == "data-size":
        size = args.train_size or config.data.subset or (50_000 if config.data.dataset.startswith("cifar") else None)
        if size is None:
            raise ConfigError("--lesson data-size needs the number of training images: add --train-size N")
        return sweeps.data_size_lesson(config, size).grid
    return sweeps.LESSONS[args.lesson](config).grid


def cmd_sweep(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    grid = _lesson_grid(args, config) if args.lesson else {}
    grid.update(parse_params(args.param))
    if not grid:
        raise ConfigError("nothing to sweep: add --param KEY=V1,V2 (e.g. --param lr=1e-4,1e-3) or --lesson NAME")
    preset = None if args.config else args.preset
    pairs = sweeps.expand(config, grid)  # everything validated before the first run is queued
    if args.dry_run:
        runs = [{"run_id": None, "overrides": overrides} for overrides, _ in pairs]
        if args.json:
            print_json({"sweep_id": None, "runs": runs})
        else:
            print(f"{len(pairs)} run(s) (dry run, nothing queued):")
            for i, (overrides, _) in enumerate(pairs, start=1):
                print(f"  {i:>3}  {sweeps.describe(overrides)}")
        return 0

    from core.runs.library import open_library  # deferred: only queueing needs the library

    lib = open_library(args.runs_dir)
    submit = functools.partial(lib.submit, started_by="cli", data_dir=args.data_dir, download=args.download)
    sweep_id = sweeps.new_sweep_id(grid)
    run_ids = sweeps.submit_pairs(pairs, submit, sweep_id=sweep_id, name_prefix=args.name, preset=preset)
    if args.json:
        print_json({"sweep_id": sweep_id,
                    "runs": [{"run_id": r, "overrides": o} for r, (o, _) in zip(run_ids, pairs, strict=True)]})
    else:
        print(f"sweep {sweep_id}: {len(run_ids)} run(s) queued")
        for run_id, (overrides, _) in zip(run_ids, pairs, strict=True):
            print(f"  {run_id}  {sweeps.describe(overrides)}")
        sys.stderr.write(f"follow them with: python -m core runs --sweep {sweep_id}\n")
    return 0
