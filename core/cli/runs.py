"""`python -m core runs [ACTION]`: list, inspect, stop, resume, export, import, rename and delete library runs.

Without an action it lists runs (newest first; --json: one JSON array). Every action takes --runs-dir
(default $CIFAR_LAB_RUNS or ./runs). An unknown id or a bad file is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from core.cli.common import pct, print_json
from core.runs import cluster
from core.runs.library import RunLibrary, open_library
from core.runs.packing import AUTO, parse_cap
from core.runs.records import RUN_STATUSES, RunRecord, diverged_reason
from core.runs.transfer import export_run, import_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="the run library: list runs, or stop/resume/export/import/rename/delete one")
    _common(p, top=True)
    p.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    p.add_argument("--preset", metavar="NAME", help="only runs of this preset")
    p.add_argument("--dataset", metavar="NAME", help="only runs on this dataset")
    p.add_argument("--sweep", metavar="ID", help="only runs of this sweep")
    p.add_argument("--limit", type=int, metavar="N", help="at most N runs (newest first)")
    p.set_defaults(func=cmd_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    def action(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help)
        _common(a, top=False)
        a.set_defaults(func=func)
        return a

    a = action("show", cmd_show, "one run's details and its curve")
    a.add_argument("run_id", metavar="ID")
    a = action("stop", cmd_stop, "stop a running or queued run (it keeps a checkpoint)")
    a.add_argument("run_id", metavar="ID")
    a = action("resume", cmd_resume, "queue a stopped run again; it continues from its checkpoint")
    a.add_argument("run_id", metavar="ID")
    a = action("again", cmd_again, "queue a diverged run again at a tenth of its learning rate")
    a.add_argument("run_id", metavar="ID")
    a = action("export", cmd_export, "write a run as JSON (+ a CSV of its curves beside it)")
    a.add_argument("run_id", metavar="ID")
    a.add_argument("--out", metavar="FILE", help="the JSON file (default ./run-ID.json)")
    a.add_argument("--with-checkpoint", action="store_true", help="also copy its checkpoints beside the file")
    a = action("import", cmd_import, "add a run exported with `runs export`")
    a.add_argument("file", metavar="FILE")
    a = action("delete", cmd_delete, "delete a run and its files")
    a.add_argument("run_id", metavar="ID")
    a = action("rename", cmd_rename, "give a run a new name")
    a.add_argument("run_id", metavar="ID")
    a.add_argument("name", metavar="NAME")
    a = action("settings", cmd_settings, "show or change the library's settings")
    a.add_argument("--max-per-device", metavar="N|auto",
                   help="training runs per device at once; auto (default): 1 on a CPU, as many as fit on a GPU")
    a.add_argument("--stale-after", type=float, metavar="S",
                   help="seconds without a heartbeat before a running run is marked failed")
    a.add_argument("--ray", metavar="URL", help="send new runs to the Ray cluster whose dashboard is URL "
                   "(http://head:8265); `off` trains on this machine again ($CIFAR_LAB_RAY wins over this)")
    a.add_argument("--ray-slots", type=int, metavar="N", help="cluster runs handed to Ray at once")


def _common(p: argparse.ArgumentParser, *, top: bool) -> None:
    # On actions the defaults are SUPPRESS so `runs --json stop ID` and `runs stop ID --json` both work.
    default = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--runs-dir", metavar="DIR", help="run library folder (default $CIFAR_LAB_RUNS or ./runs)",
                   **default)
    p.add_argument("--json", action="store_true", help="machine-readable output", **default)


def _lib(args: argparse.Namespace) -> RunLibrary:
    return open_library(args.runs_dir)


def summary(run: RunRecord, lib: RunLibrary | None = None) -> dict[str, Any]:
    """The fields `runs --json` prints for each run."""
    out = {k: getattr(run, k) for k in ("id", "name", "preset", "status", "reason", "test_acc", "best_test_acc",
                                        "epochs_done", "epochs", "dataset", "model", "device", "started_by",
                                        "by_role", "by_name",
                                        "sweep_id", "params", "created", "started", "finished", "seconds",
                                        "backend", "cluster", "job_id")}
    out["progress"] = run.to_dict()["progress"]
    out["queue_position"] = lib.queue_position(run.id) if lib is not None and run.status == "queued" else None
    return out


def red(text: str) -> str:
    """`text` in red on a terminal (as it is read), unchanged when piped or redirected (as it is parsed)."""
    return f"\033[31m{text}\033[0m" if sys.stdout.isatty() else text


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "—"


def cmd_list(args: argparse.Namespace) -> int:
    lib = _lib(args)
    runs = lib.list_runs(status=args.status, preset=args.preset, dataset=args.dataset, sweep_id=args.sweep,
                         limit=args.limit)
    if args.json:
        print_json([summary(r, lib) for r in runs])
        return 0
    if not runs:
        print(f"no runs in {lib.root}" + (" matching the filters" if any(
            (args.status, args.preset, args.dataset, args.sweep)) else ""))
        return 0
    print(f"{'id':<10}{'status':<11}{'epochs':>7}  {'test':>6} {'best':>6}  {'device':<8}{'by':<7}{'created':<17}  name")
    for r in runs:
        status = r.status
        if r.status == "running" and r.progress:
            status = f"run {r.progress.fraction:.0%}"
        status = red(f"{status:<11}") if r.status in ("diverged", "failed") else f"{status:<11}"
        print(f"{r.id:<10}{status}{r.epochs_done:>3}/{r.epochs:<3}  {pct(r.test_acc):>6} {pct(r.best_test_acc):>6}  "
              f"{r.device:<8}{r.started_by:<7}{_when(r.created):<17}  {r.name}")
        if r.status == "diverged":  # where and why, and what to do: `runs again ID`
            print(" " * 10 + red(diverged_reason(r)) + f" (`python -m core runs again {r.id}`)")
    disk = lib.disk_usage()
    print(disk.summary())
    if disk.warning():
        print(disk.warning())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    lib = _lib(args)
    run = lib.get(args.run_id)
    curves = lib.curves(args.run_id)
    if args.json:
        print_json({**run.to_dict(), "curves": [c.to_dict() for c in curves]})
        return 0
    why = diverged_reason(run) or run.reason
    print(f"{run.id}  {run.name}\n  status " + (red(run.status) if run.status == "diverged" else run.status)
          + (f" - {why}" if why else ""))
    print(f"  preset {run.preset or '—'}, model {run.model}, dataset {run.dataset}, device {run.device}, "
          f"started by {run.started_by}")
    print(f"  test accuracy {pct(run.test_acc)} (best {pct(run.best_test_acc)}), {run.epochs_done}/{run.epochs} "
          f"epochs, {run.seconds:.1f} s")
    if run.status == "queued":
        print(f"  queued: {lib.queue_position(run.id)} run(s) ahead of it on {run.device}")
    for c in curves:
        print(f"  epoch {c.epoch:>3}: train loss {c.train_loss:.3f} acc {pct(c.train_acc)} | test loss "
              f"{c.test_loss:.3f} acc {pct(c.test_acc)} | {c.seconds:.1f}s")
    return 0


def _done(args: argparse.Namespace, message: str, **fields: Any) -> int:
    if args.json:
        print_json(fields)
    else:
        print(message)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    status = _lib(args).request_stop(args.run_id)
    message = {"running": f"run {args.run_id}: stop requested; it saves a checkpoint and stops within seconds",
               "stopped": f"run {args.run_id} is stopped"}.get(status, f"run {args.run_id} is already {status}")
    return _done(args, message, id=args.run_id, status=status)


def cmd_resume(args: argparse.Namespace) -> int:
    lib = _lib(args)
    lib.resume(args.run_id)
    run = lib.get(args.run_id)
    return _done(args, f"run {args.run_id} is {run.status} on {run.device}", id=run.id, status=run.status)


def cmd_again(args: argparse.Namespace) -> int:
    lib = _lib(args)
    new_id = lib.train_again(args.run_id, started_by="cli")
    run = lib.get(new_id)
    return _done(args, f"run {new_id} is {run.status} on {run.device} at lr {run.config.optim.lr:.3g} "
                       f"(a tenth of run {args.run_id}'s)", id=new_id, status=run.status, lr=run.config.optim.lr)


def cmd_export(args: argparse.Namespace) -> int:
    files = export_run(_lib(args), args.run_id, args.out, with_checkpoint=args.with_checkpoint)
    return _done(args, "wrote " + ", ".join(str(f) for f in files), id=args.run_id, files=[str(f) for f in files])


def cmd_import(args: argparse.Namespace) -> int:
    run_id = import_run(_lib(args), args.file)
    return _done(args, f"imported as run {run_id}", id=run_id)


def cmd_delete(args: argparse.Namespace) -> int:
    _lib(args).delete(args.run_id)
    return _done(args, f"deleted run {args.run_id}", id=args.run_id, deleted=True)


def cmd_rename(args: argparse.Namespace) -> int:
    _lib(args).rename(args.run_id, args.name)
    return _done(args, f"run {args.run_id} is now called {args.name.strip()!r}", id=args.run_id,
                 name=args.name.strip())


def cmd_settings(args: argparse.Namespace) -> int:
    lib = _lib(args)
    if args.max_per_device is not None:
        n = parse_cap(args.max_per_device, "--max-per-device")
        lib.set_max_per_device(AUTO if n is None else n)
    if args.stale_after is not None:
        lib.set_stale_after_s(args.stale_after)
    if args.ray is not None:
        cluster.set_address(lib, args.ray)
    if args.ray_slots is not None:
        cluster.set_slots(lib, args.ray_slots)
    values = {"max_per_device": lib.max_per_device, "stale_after_s": lib.stale_after_s, "runs_dir": str(lib.root),
              "ray_address": cluster.address_for(lib.get_setting), "ray_slots": int(lib.get_setting(
                  cluster.SLOTS_SETTING, str(cluster.DEFAULT_SLOTS)) or cluster.DEFAULT_SLOTS)}
    if args.json:
        print_json(values)
    else:
        for k, v in values.items():
            sys.stdout.write(f"{k}: {v}\n")
    return 0
