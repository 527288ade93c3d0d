"""`python -m core sweep`: queue a grid of runs that share a sweep id (or, with --dry-run, only print the grid).

    python -m core sweep --preset cnn --param lr=1e-4,1e-3,1e-2 --param batch_size=128,256 --epochs 5
    python -m core sweep --preset cnn --lesson lr --dry-run --json

Values are read by core.runs.sweeps.parse_grid, the Sweeps page's parser too: each like a --set value, and a
comma inside brackets or quotes does not split (`--param model.widths=[32,32,32,64],[64,64,64,128]`). The runs
go to the run library's queue (started by "cli"); follow them with `python -m core runs --sweep ID`, or add --wait to return only when every run has
ended (progress on a terminal; exit 1 if any failed or was stopped).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from core.cli.common import add_config_args, config_from_args, print_json
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
                   help="training images of the dataset, for --lesson data-size (default: --subset, else the dataset's training split)")
    p.add_argument("--name", metavar="PREFIX", help="run names start with this (default: the preset)")
    p.add_argument("--dry-run", action="store_true", help="print the expanded grid; queue nothing")
    p.add_argument("--json", action="store_true", help="one JSON object {sweep_id, runs: [{run_id, overrides}]}")
    p.add_argument("--runs-dir", metavar="DIR", help="run library folder (default $CIFAR_LAB_RUNS or ./runs)")
    p.add_argument("--wait", action="store_true",
                   help="return only when every run of the sweep has ended (progress on a terminal); exit 1 if any "
                        "failed or was stopped (a diverged run is a result: too high a learning rate)")
    p.set_defaults(func=cmd_sweep)


def parse_params(items: list[str]) -> dict[str, list[Any]]:
    """The --param flags as a grid (core.runs.sweeps.parse_grid, the Sweeps page's parser too); its ConfigError
    names the flag."""
    try:
        return sweeps.parse_grid(items)
    except ConfigError as e:
        raise ConfigError(f"--param: {e}") from None


def _lesson_grid(args: argparse.Namespace, config: TrainConfig) -> dict[str, list[Any]]:
    if args.lesson == "data-size":
        from core.data.loading import (
            dataset_facts,  # deferred: torch takes seconds to import; `--help` stays fast
        )

        size = args.train_size or config.data.subset or dataset_facts(config.data.dataset).train_images
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
    queued = [{"run_id": r, "overrides": o} for r, (o, _) in zip(run_ids, pairs, strict=True)]
    if args.json:
        if not args.wait:  # with --wait, one object at the end, with each run's outcome
            print_json({"sweep_id": sweep_id, "runs": queued})
    else:
        print(f"sweep {sweep_id}: {len(run_ids)} run(s) queued")
        for run_id, (overrides, _) in zip(run_ids, pairs, strict=True):
            print(f"  {run_id}  {sweeps.describe(overrides)}")
        if not args.wait:
            sys.stderr.write(f"follow them with: python -m core runs --sweep {sweep_id}\n")
    if not args.wait:
        return 0
    try:
        runs = wait_for(lib, run_ids, on_update=ProgressLines(sys.stderr).show)
    except KeyboardInterrupt:
        sys.stderr.write(f"\nstopped waiting; the runs go on: python -m core runs --sweep {sweep_id}\n")
        return 130
    bad = [r for r in runs if r.status in FAILED]
    if args.json:
        ended = {r.id: r for r in runs}
        print_json({"sweep_id": sweep_id, "runs": [
            {**q, "status": ended[q["run_id"]].status if q["run_id"] in ended else "deleted",
             "reason": ended[q["run_id"]].reason if q["run_id"] in ended else "",
             "best_test_acc": ended[q["run_id"]].best_test_acc if q["run_id"] in ended else None} for q in queued]})
    else:
        for r in runs:
            acc = "—" if r.best_test_acc is None else f"{r.best_test_acc:.1%}"
            print(f"  {r.id}  {r.status:<9} best {acc:>6}  {r.name}" + (f" - {r.reason}" if r.reason else ""))
    if bad:
        sys.stderr.write(f"{len(bad)} of {len(runs)} run(s) did not finish: "
                         + ", ".join(f"{r.id} {r.status}" for r in bad) + "\n")
    return 1 if bad else 0


FAILED = ("failed", "stopped")  # ended without a result of their own; diverged is a result (lr too high)


def wait_for(lib: Any, run_ids: Sequence[str], *, on_update: Callable[[list[Any]], None] | None = None,
             sleep: Callable[[float], None] = time.sleep, poll_s: float = 1.0) -> list[Any]:
    """Poll the run library until none of the runs is queued or running; returns their final records.
    Each poll also runs the library's crash recovery, so a trainer that died is marked failed (and the next
    queued run started) instead of being waited on forever. A run deleted meanwhile counts as ended."""
    while True:
        lib.recover(force=True)
        runs = [r for r in (lib.find(i) for i in run_ids) if r is not None]
        if on_update is not None:
            on_update(runs)
        if not any(r.active for r in runs):
            return runs
        sleep(poll_s)


class ProgressLines:
    """The sweep's state, one line, rewritten in place on a terminal; on a pipe, a line whenever it changes."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.tty, self.last = stream, stream.isatty(), ""

    def show(self, runs: list[Any]) -> None:
        done = sum(not r.active for r in runs)
        parts = [f"{done}/{len(runs)} ended"]
        for r in runs:
            if r.status == "running":
                p = r.progress
                parts.append(f"{r.name}: epoch {p.epoch if p else r.epochs_done + 1}/{r.epochs}"
                             + (f" {p.fraction:.0%}" if p else ""))
        queued = sum(r.status == "queued" for r in runs)
        if queued:
            parts.append(f"{queued} queued")
        line = " · ".join(parts)
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(len(self.last[:160])))
            if done == len(runs):
                self.stream.write("\n")
        elif line.split(" · ")[0] != self.last.split(" · ")[0] or not self.last:
            self.stream.write(line + "\n")  # a log: one line per run that ends, not one per second
        self.stream.flush()
        self.last = line
