"""The CLI's entry point: the parser built from the command modules, and `main` (exit codes, one-line errors).

Each command module exposes `register(subparsers)`, adding its subcommands with `set_defaults(func=...)`;
a command function takes the parsed args and returns an exit code. Errors the user can fix (LabError) print
one line on stderr: exit 2 for a bad value (ConfigError), 1 otherwise. A bad flag also exits 2 in one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from core.errors import ConfigError, LabError

# Command modules, in the order their commands are listed by --help. A module that is missing is skipped,
# so a command group can be added without touching the others.
COMMAND_MODULES = ("core.cli.train", "core.cli.runs", "core.cli.lr_find", "core.cli.explain", "core.cli.bench",
                   "core.cli.sweep", "core.cli.classroom")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag or value is one line on stderr and exit code 2 - no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m core", description="CIFAR Lab from the terminal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. A reader that stops early (`python -m core runs | head -1`) ends every
    command quietly with 141, the shell's code for a closed pipe (128 + SIGPIPE), not a BrokenPipeError traceback."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # a pipe closed after the last write shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _stdout_to_devnull()
        return CLOSED_PIPE


CLOSED_PIPE = 141


def _stdout_to_devnull() -> None:
    """Point stdout's file descriptor at /dev/null, so the interpreter's last flush at exit has somewhere to go
    (the recipe of Python's signal documentation, "Note on SIGPIPE")."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stdout in tests has no descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        sys.stderr.write(f"python -m core: error: {e}\n")
        return 2
    except LabError as e:
        sys.stderr.write(f"python -m core: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
