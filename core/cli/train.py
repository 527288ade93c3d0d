"""`python -m core presets | train | download`: list the report's experiments, train one, fetch CIFAR."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from core.cli.common import add_config_args, config_from_args, pct, print_json
from core.errors import ConfigError
from core.lessons.presets import PRESETS
from core.runs import cluster
from core.runs.recorder import cli_recorder
from core.space import size_text
from core.train import events as ev


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the report's experiments with the report's numbers")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("train", help="train a preset (progress bar, or --json events)")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per event per line")
    p.add_argument("--name", help="a name for the run in the library")
    p.add_argument("--runs-dir", metavar="DIR", help="run library folder (default $CIFAR_LAB_RUNS or ./runs)")
    p.add_argument("--no-record", action="store_true", help="do not record the run in the run library")
    p.add_argument("--estimate", action="store_true", help="print how long the run would take on this machine "
                   "(a few timed steps the first time a model runs here) and train nothing, record nothing")
    p.add_argument("--ray", metavar="URL", help="train on the Ray cluster whose dashboard is URL, e.g. "
                   "http://head:8265 (default $CIFAR_LAB_RAY or the library's setting; `off`: this machine)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("download", help="download and verify a CIFAR dataset")
    p.add_argument("dataset", choices=["cifar100", "cifar10"])
    p.add_argument("--data-dir", metavar="DIR")
    p.set_defaults(func=cmd_download)


def cmd_presets(args: argparse.Namespace) -> int:
    from core.train.memory import estimate_run_memory  # torch: not for `python -m core --help`

    sizes = {p.name: estimate_run_memory(p.config, "cpu").checkpoint for p in PRESETS.values()}
    rows = [dict(name=p.name, title=p.title, section=p.section, report_acc=p.report_acc, model=p.config.model.name,
                 optimizer=p.config.optim.name, lr=p.config.optim.lr, batch_size=p.config.batch_size,
                 epochs=p.config.epochs, augment=p.config.data.augment.describe(), lesson=p.lesson,
                 checkpoint_bytes=sizes[p.name])
            for p in PRESETS.values()]
    if args.json:
        print_json(rows)
        return 0
    print(f"{'preset':<24}{'report':>8}  {'model':<22}{'optim':<6}{'lr':>8}{'batch':>6}{'ep':>4}{'checkpoint':>11}  "
          f"augment")
    for p in PRESETS.values():
        c = p.config
        print(f"{p.name:<24}{p.report_label:>8}  {c.model.name:<22}{c.optim.name:<6}{c.optim.lr:>8g}"
              f"{c.batch_size:>6}{c.epochs:>4}{size_text(sizes[p.name]):>11}  {c.data.augment.describe()}")
    return 0


class ProgressLine:
    """A one-line progress display on stderr for terminals (nothing when not a TTY)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.total = 1

    def show(self, e: Any) -> None:
        if isinstance(e, ev.RunStarted):
            self.total = e.steps_per_epoch * e.epochs
            sys.stderr.write(f"{e.model} on {e.dataset} ({e.train_size:,} train / {e.test_size:,} test images), "
                             f"{e.params:,} parameters, device {e.device}\n")
        elif isinstance(e, ev.Step) and self.tty:
            frac = e.step / max(1, e.total_steps)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r[{bar:<30}] {frac:5.1%} epoch {e.epoch} loss {e.loss:.3f} lr {e.lr:.2g} "
                             f"{e.images_per_s:,.0f} img/s ")
        elif isinstance(e, ev.EpochEnd):
            sys.stderr.write(("\r" if self.tty else "") + f"epoch {e.epoch:>3}: train loss {e.train_loss:.3f} "
                             f"acc {pct(e.train_acc)} | test loss {e.test_loss:.3f} acc {pct(e.test_acc)} | "
                             f"{e.seconds:.1f}s, {e.images_per_s:,.0f} img/s" + " " * 10 + "\n")
        elif isinstance(e, ev.Note):
            sys.stderr.write(f"note: {e.message}\n")
        elif isinstance(e, ev.Finished):
            sys.stderr.write(f"{e.status}: test accuracy {pct(e.test_acc)} (best {pct(e.best_test_acc)}) "
                             f"in {e.seconds:.1f}s" + (f" - {e.reason}" if e.reason else "") + "\n")


def cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.estimate:
        return cmd_estimate(args, config)
    def download_progress(done: int, total: int | None) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rdownloading {done / 1e6:.1f}" + (f"/{total / 1e6:.1f}" if total else "") + " MB")

    recorder = None
    if args.no_record and cluster.normalize(args.ray):
        raise ConfigError("--no-record trains on this machine; a cluster run (--ray) is always recorded")
    if not args.no_record:
        recorder = _open_recorder(args, config)
    if recorder is not None and recorder.device == cluster.DEVICE:  # a Ray job trains it; we print what it reports
        from core.runs import rayjob

        events = rayjob.follow(recorder)
    else:
        # deferred: torch takes seconds to import, so `--help` and bad flags stay fast
        from core.train import engine

        events = engine.train(config, should_stop=recorder.should_stop if recorder else None,
                              data_root=args.data_dir, download=args.download, data_progress=download_progress,
                              checkpoint_dir=recorder.checkpoint_dir if recorder else None)
    line = ProgressLine()
    status = "failed"
    try:
        for e in events:
            if recorder:
                recorder.record(e)
            if args.json:
                print_json({**ev.to_dict(e), **({"run_id": recorder.run_id} if recorder else {})})
            else:
                line.show(e)
            if isinstance(e, ev.Finished):
                status = e.status
    except BaseException as e:
        if recorder:
            recorder.abort(e)
        raise
    finally:
        if recorder:
            recorder.close()
    return 0 if status == "completed" else 1


def cmd_estimate(args: argparse.Namespace, config: Any) -> int:
    """`train --estimate`: the run's time on this machine, from the rate kept in the run library's settings or
    from a calibration made now (and kept). Loads the data (its size and loading time are part of the run)."""
    if cluster.normalize(args.ray):
        raise ConfigError("--estimate times this machine; a cluster run (--ray) is not estimated")
    from core.runs.library import open_library
    from core.train import calibrate as cal
    from core.train import estimate as est
    from core.train.setup import resolve_device, run_dataset

    device = resolve_device(config.device)
    t0 = time.perf_counter()
    dataset = run_dataset(config, None, args.data_dir, download=args.download)
    data_s = time.perf_counter() - t0
    lib = open_library(args.runs_dir, recover=False)
    key = cal.run_rate_key(config, device)
    rate = est.load_rate(lib.get_setting, key)
    if rate is None:
        rate = cal.calibrate(config, device, dataset.num_classes, data_s=data_s)
        est.save_rate(lib.set_setting, key, rate)
    e = est.estimate(config, rate, len(dataset.train_x), len(dataset.test_x))
    if args.json:
        print_json(e.to_dict())
    else:
        print(est.estimate_text(e, cal.where_text(device)))
    return 0


def _open_recorder(args: argparse.Namespace, config: Any) -> Any:
    """The run library's recorder for a CLI run."""
    return cli_recorder(config, runs_dir=args.runs_dir, name=args.name,
                             preset=None if args.config else args.preset, ray=args.ray)


def cmd_download(args: argparse.Namespace) -> int:
    def progress(done: int, total: int | None) -> None:
        sys.stderr.write(f"\r{done / 1e6:.1f}" + (f" / {total / 1e6:.1f}" if total else "") + " MB")

    from core.data.cifar import download  # deferred: torch takes seconds to import

    path = download(args.dataset, args.data_dir, progress=progress)
    sys.stderr.write(f"\n{args.dataset} is ready in {path}\n")
    return 0
