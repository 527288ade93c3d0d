"""The trainer process: `python -m core.runs.trainer --runs-dir DIR --run-id ID` trains one claimed run, then the
device's next queued runs.

Started (detached) by core/runs/supervisor.py for a run the scheduler claimed; stdout/stderr go to DIR/ID/train.log. It takes over the run
kick claimed, starts its heartbeat before importing torch (so a slow import is never mistaken for a hang),
trains with core.train.engine (resuming from DIR/ID/last.pt when the run was resumed) and records every event.
A run on the pseudo-device "ray" is trained by a Ray job instead: this process submits it and records the
events the job prints (core/runs/rayjob.py); inside the job, `--stream PACKAGE` is the trainer's other mode.
Whatever happens, the run does not stay `running`: a setup LabError fails it with its message, any other
exception with `Type: message` (the traceback is in the log).

When a run ends cleanly (completed, stopped or diverged) the process claims the device's next queued run
itself and trains it too, logging into that run's train.log: torch, the device and the data are already
loaded, which saves seconds per run (a queue of short runs, a sweep). After a failed run - an OOM or a CUDA
error may leave the process unhealthy - or MAX_RUNS_PER_PROCESS runs, it exits and kicks the queue, which
starts a fresh process. SIGTERM asks the current run to stop like the Stop button, and the process to exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from core.errors import LabError
from core.runs import cluster
from core.runs.library import open_library
from core.runs.recorder import Recorder, attach_worker
from core.runs.supervisor import LOG_NAME

MAX_RUNS_PER_PROCESS = 20  # then a fresh process: bounds whatever a long-lived process might accumulate
REUSE_AFTER = ("completed", "stopped", "diverged")  # outcomes after which the process is known to be healthy


def _log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _log_to(path: Path) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to another run's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def train_claimed(rec: Recorder) -> str:
    """Train the run `rec` owns; returns how it ended (completed | stopped | diverged | failed)."""
    run = rec.lib.get(rec.run_id)
    if run.stop_requested:
        rec.finish("stopped", "stopped before training started")
        return "stopped"
    resume = run.resume_requested
    _log(f"run {run.id} ({run.name}) on {run.device}, trainer process {os.getpid()}"
         + (" - resuming from its checkpoint" if resume else ""))
    status = "failed"
    try:
        if run.device == cluster.DEVICE:  # a Ray job trains it; this process records what the job reports
            from core.runs import rayjob

            events = rayjob.follow(rec)
        else:
            from core.train import engine  # the slow import, after the heartbeat started

            events = engine.train(run.config, should_stop=rec.should_stop, data_root=run.data_dir,
                                  download=run.download, checkpoint_dir=rec.checkpoint_dir, resume=resume)
        for event in events:
            rec.record(event)
            if event.event == "finished":
                status = event.status
                _log(f"{event.status}" + (f": {event.reason}" if event.reason else ""))
            elif event.event == "epoch":
                _log(f"epoch {event.epoch}: test accuracy {event.test_acc:.1%}")
    except LabError as e:  # setup problems the user can fix: the message says what to do
        _log(f"failed: {e}")
        rec.abort(e)
    except BaseException as e:  # noqa: BLE001 - a bug or a crash in training: keep the traceback in the log
        traceback.print_exc()
        rec.abort(e)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.runs.trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir")
    parser.add_argument("--run-id")
    parser.add_argument("--stream", metavar="PACKAGE", help="inside a Ray job: train the run shipped as PACKAGE "
                        "and print its events and checkpoints as JSON lines (core/runs/stream.py)")
    args = parser.parse_args(argv)
    if args.stream:
        from core.runs.stream import stream_run

        return stream_run(args.stream)
    if not (args.runs_dir and args.run_id):
        parser.error("--runs-dir and --run-id are required (or --stream PACKAGE inside a Ray job)")
    lib = open_library(args.runs_dir, recover=False)
    current: dict[str, Recorder | bool | None] = {"rec": None, "terminated": False}

    def on_term(signum: int, frame: object) -> None:
        current["terminated"] = True
        if isinstance(current["rec"], Recorder):
            current["rec"].terminate_requested = True

    signal.signal(signal.SIGTERM, on_term)
    run_id: str | None = args.run_id
    served, device = 0, None
    while run_id is not None:
        if served:
            _log_to(lib.run_dir(run_id) / LOG_NAME)
        rec = attach_worker(lib, run_id)
        if rec is None:
            _log(f"run {run_id} is not waiting for a trainer (stopped or deleted meanwhile); nothing to do")
            break
        current["rec"], device = rec, rec.device
        try:
            status = train_claimed(rec)
        finally:
            rec.close(kick=False)  # stops the heartbeat; never leaves the run `running`
        served += 1
        run_id = None
        if status in REUSE_AFTER and served < MAX_RUNS_PER_PROCESS and not current["terminated"]:
            run_id = lib.claim_next(device)
    lib.kick(device)  # whatever is still queued gets a fresh process
    return 0


if __name__ == "__main__":
    sys.exit(main())
