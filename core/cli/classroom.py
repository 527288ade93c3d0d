"""`python -m core class show|set`: prepare a class from a terminal - the dataset, training/test subsets and device
every browser session starts from, the students' run quota, the teacher passcode the server uses and where it
comes from (core.classroom.access.resolve_passcode decides, for the server and here), and wrong passcode tries.

`class show` exits 1 when the passcode is refused as too weak (the reason is printed). `class forgive` lifts the
waits of wrong passcode tries (a teacher locked out on a shared address). `class set` checks a folder dataset before saving (class count and images per split, or the error; nothing is
saved then). Runs and settings from the CLI are the teacher's.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.classroom import access, attempts
from core.classroom import settings as class_settings
from core.classroom.roles import TEACHER
from core.cli.common import print_json
from core.runs.library import open_library


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("class", help="class mode: the class settings every student starts from, the passcode")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    show = actions.add_parser("show", help="the class settings, the students' quota and the teacher passcode")
    show.set_defaults(func=cmd_show)
    s = actions.add_parser("set", help="set the class settings (a folder dataset is checked first)")
    s.add_argument("--dataset", help="cifar100 | cifar10 | synthetic | folder:PATH (default: keep)")
    s.add_argument("--subset", type=int, metavar="N", help="training images per run, stratified; 0 = all")
    s.add_argument("--test-subset", type=int, metavar="N", help="test images; 0 = all")
    s.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: keep, else auto)")
    s.add_argument("--quota", type=int, metavar="N", help="queued-or-running runs per student (default 1)")
    s.add_argument("--minutes-per-run", type=float, metavar="M", help="the class time budget: runs started in "
                   "the app are cut (epochs, then images) to finish within M minutes here; 0 = no budget")
    s.set_defaults(func=cmd_set)
    forgive = actions.add_parser("forgive", help="lift the waits after wrong passcode tries (every browser)")
    forgive.set_defaults(func=cmd_forgive)
    for a in (show, s, forgive):
        a.add_argument("--runs-dir", metavar="DIR", help="run library folder (default $CIFAR_LAB_RUNS or ./runs)")
        a.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show, runs_dir=None, json=False)


def _state(runs_dir: str | None) -> dict[str, Any]:
    lib = open_library(runs_dir, recover=False)
    saved = class_settings.load(lib)
    found = access.resolve_passcode(lib.root, create=False)  # the server's own decision, made in a shell
    if found is not None:
        passcode: dict[str, Any] = {"code": found.code, "source": found.source, "where": found.where,
                                    "problem": found.problem}
    else:
        passcode = {"code": None, "source": "new", "problem": "",
                    "where": f"none yet: the server makes one at its first start in {access.passcode_path(lib.root)}"}
    tries = attempts.summary(lib)
    return {"runs_dir": str(lib.root), "class": saved.to_dict() if saved else None,
            "student_quota": class_settings.student_quota(lib),
            "minutes_per_run": class_settings.minutes_per_run(lib), "passcode": passcode,
            "local_teacher": access.local_teacher_enabled(),
            "wrong_passcodes": {"last_hour": tries.failures, "addresses": tries.addresses, "waiting": tries.waiting}}


def _print(state: dict[str, Any]) -> None:
    c = state["class"]
    if c is None:
        print(f"no class settings in {state['runs_dir']}: every session starts from the app's defaults "
              f"(set them with `python -m core class set --dataset ... --subset N --test-subset N`)")
    else:
        def n(v: int | None) -> str:
            return "all" if v is None else f"{v:,}"
        print(f"dataset      {c['dataset']}" + (f"  ({c['check']})" if c["check"] else ""))
        print(f"subset       {n(c['subset'])} training, {n(c['test_subset'])} test images per run")
        print(f"device       {c['device']}")
    print(f"quota        {state['student_quota']} queued or running run(s) per student")
    m = state["minutes_per_run"]
    print(f"budget       {m:g} minute(s) per run started in the app (cut to fit: epochs, then images)" if m else
          "budget       none: runs started in the app run as configured (`class set --minutes-per-run M`)")
    p = state["passcode"]
    print(f"passcode     {p['code'] + '  (from ' + p['where'] + ')' if p['code'] else p['where']}")
    if p["problem"]:
        print(f"             REFUSED: {p['problem']}")
    w = state["wrong_passcodes"]
    if w["last_hour"]:
        print(f"             {w['last_hour']} wrong tries in the last hour from {w['addresses']} address(es)"
              + (f", {w['waiting']} browser(s)/address(es) waiting (`python -m core class forgive` lifts it)"
                 if w["waiting"] else ""))
    print("teacher      anyone who enters the passcode" + (", and every browser on this machine" if
          state["local_teacher"] else " only (CIFAR_LAB_LOCAL_TEACHER=0: browsers on this machine are students too)"))


def cmd_show(args: argparse.Namespace) -> int:
    state = _state(args.runs_dir)
    print_json(state) if args.json else _print(state)
    return 1 if state["passcode"]["problem"] else 0


def cmd_forgive(args: argparse.Namespace) -> int:
    attempts.forgive(open_library(args.runs_dir, recover=False), actor=TEACHER)
    return cmd_show(args)


def cmd_set(args: argparse.Namespace) -> int:
    lib = open_library(args.runs_dir, recover=False)
    old = class_settings.load(lib)
    given = (args.dataset, args.subset, args.test_subset, args.device)
    if any(v is not None for v in given) or old is None:
        class_settings.save(
            lib, args.dataset if args.dataset is not None else (old.dataset if old else "cifar100"),
            args.subset if args.subset is not None else (old.subset if old else None),
            args.test_subset if args.test_subset is not None else (old.test_subset if old else None),
            args.device if args.device is not None else (old.device if old else "auto"))
    if args.quota is not None:
        class_settings.set_student_quota(lib, args.quota)
    if args.minutes_per_run is not None:
        class_settings.set_minutes_per_run(lib, args.minutes_per_run)
    return cmd_show(args)
