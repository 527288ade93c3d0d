"""`python -m core class show|set`: prepare a class from a terminal - the dataset, training/test subsets and device
every browser session starts from, the students' run quota, and where the teacher passcode is.

`class set` checks a folder dataset before saving (class count and images per split, or the error; nothing is
saved then). Runs and settings from the CLI are the teacher's.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from core.classroom import access
from core.classroom import settings as class_settings
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
    s.set_defaults(func=cmd_set)
    for a in (show, s):
        a.add_argument("--runs-dir", metavar="DIR", help="run library folder (default $CIFAR_LAB_RUNS or ./runs)")
        a.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show, runs_dir=None, json=False)


def _state(runs_dir: str | None) -> dict[str, Any]:
    lib = open_library(runs_dir, recover=False)
    saved = class_settings.load(lib)
    configured = os.environ.get(access.PASSCODE_ENV)
    path = access.passcode_path(lib.root)
    if configured:
        passcode: dict[str, Any] = {"where": f"${access.PASSCODE_ENV}", "code": configured}
    elif path.is_file():
        passcode = {"where": str(path), "code": path.read_text(encoding="utf-8").strip()}
    else:  # secrets.toml is Streamlit's business: the app reports it; otherwise the app makes one at start
        passcode = {"where": f"made at the app's first start in {path} (unless .streamlit/secrets.toml sets "
                             f"teacher_passcode)", "code": None}
    return {"runs_dir": str(lib.root), "class": saved.to_dict() if saved else None,
            "student_quota": class_settings.student_quota(lib), "passcode": passcode,
            "local_teacher": access.local_teacher_enabled()}


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
    code = state["passcode"]["code"]
    print(f"passcode     {code + '  (' + state['passcode']['where'] + ')' if code else state['passcode']['where']}")
    print("teacher      anyone who enters the passcode" + (", and every browser on this machine" if
          state["local_teacher"] else " only (CIFAR_LAB_LOCAL_TEACHER=0: browsers on this machine are students too)"))


def cmd_show(args: argparse.Namespace) -> int:
    state = _state(args.runs_dir)
    print_json(state) if args.json else _print(state)
    return 0


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
    return cmd_show(args)
