"""The trainer process: `python -m core.trainer --runs-dir DIR --run-id ID` trains one claimed run.

Started (detached) by core/runs_jobs.py's kick(); stdout/stderr go to DIR/ID/train.log. It takes over the run
kick claimed, starts its heartbeat before importing torch (so a slow import is never mistaken for a hang),
trains with core.engine (resuming from DIR/ID/last.pt when the run was resumed), records every event, and
finally starts the device's next queued run. Whatever happens, the run does not stay `running`: a setup
LabError fails it with its message, any other exception with `Type: message` (the traceback is in the log).
SIGTERM asks the run to stop like the Stop button (checkpoint, then `stopped`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback

from core.errors import LabError
from core.runs import open_library
from core.runs_recorder import Recorder, attach_worker


def _log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def train_claimed(rec: Recorder) -> int:
    """Train the run `rec` owns; returns the process exit code (0 = completed)."""
    run = rec.lib.get(rec.run_id)
    if run.stop_requested:
        rec.finish("stopped", "stopped before training started")
        return 0
    resume = run.resume_requested
    _log(f"run {run.id} ({run.name}) on {run.device}" + (" - resuming from its checkpoint" if resume else ""))
    status = "failed"
    try:
        from core import engine  # the slow import, after the heartbeat started

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
    return 0 if status == "completed" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    lib = open_library(args.runs_dir, recover=False)
    rec = attach_worker(lib, args.run_id)
    if rec is None:
        _log(f"run {args.run_id} is not waiting for a trainer (stopped or deleted meanwhile); nothing to do")
        lib.kick()
        return 0

    def on_term(signum: int, frame: object) -> None:
        rec.terminate_requested = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        return train_claimed(rec)
    finally:
        rec.close()  # stops the heartbeat, never leaves the run `running`, starts the next queued run


if __name__ == "__main__":
    sys.exit(main())
