"""A run trained as a Ray job: submit it through Ray's Jobs API, ingest its log, stop it. Imports ray lazily.

`follow(rec)` is what a trainer process (or `python -m core train`) does instead of calling the engine when the
run it owns is on the pseudo-device "ray" (core/runs/cluster.py). It yields the very events the job's trainer
prints, so the caller records them exactly as it records a local run's:

  1. submit: `JobSubmissionClient(address).submit_job(entrypoint="python -m core.runs.trainer --stream PKG",
     submission_id="cifar-lab-RUN-xxxxxx", entrypoint_num_gpus=..., runtime_env=...)`. The runtime_env ships
     the lab's code as working_dir (this repo minus data, runs, .venv, .git, checkpoints: Ray caches it by
     content, so it is uploaded once per code change) and the run itself as a py_module PKG (its config and,
     on a resume, its last.pt/best.pt; core/runs/stream.py). No shared filesystem is needed.
  2. ingest: a thread tails the job's log (tail_job_logs, a websocket); the marked lines become events and
     checkpoint files in the run's local folder. So the inside-the-network pages and resume work on cluster
     runs as on local ones (a worker's job folder is temporary, and the pages read checkpoints locally).
     Mid-run a checkpoint comes back at most every 10 minutes, and the final one always (core/runs/stream.py):
     a job lost with its node loses at most that much training.
  3. stop: a stop request (app, `runs stop`, SIGTERM, Ctrl-C) becomes stop_job; Ray sends the job SIGTERM, its
     trainer checkpoints and reports `finished` (stopped) - RAY_JOB_STOP_WAIT_TIME_S gives it time to.
  4. end: if the job ended without a `finished` line (killed, its node lost, a crash before training), a
     Finished(failed) carries the job's own reason from get_job_info.
If the log stream breaks (the head restarted, a network blip) it polls get_job_info and, once the job ended,
reads what it missed with get_job_logs; after LOST_AFTER_S without an answer the run fails with the reason.
If the following process itself dies (the lab's machine rebooted, the process killed), crash recovery queues
the run again and the next follower `attach`es to the same job instead of submitting one: it reads the log
from the start (epochs are recorded once however often they are read), so a job that trained on, or even
finished, while nobody followed it is recorded in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import LabError
from core.runs import cluster, lifecycle
from core.runs.recorder import Recorder
from core.runs.stream import FileAssembler, parse_line, write_package
from core.runs.supervisor import REPO_ROOT
from core.train import events as ev

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
LOST_AFTER_S = 60.0  # this long without an answer from the head: the run is failed (resumable)
POLL_S = 0.5  # how often stop requests are looked at while the log is quiet
STOP_GRACE_S = 60  # RAY_JOB_STOP_WAIT_TIME_S: time between SIGTERM and SIGKILL for the checkpoint to go out
# Never shipped to the cluster: data, runs, environments and artefacts (Ray also honours .gitignore). Not
# "*.pt": Ray applies excludes to the py_modules too, and the run's package carries its checkpoints.
EXCLUDES = ["/data", "/runs", "/.venv", "/.git", "/test-artifacts", "/bench-results", "/.whl", "/.gl",
            "__pycache__", ".pytest_cache", ".ruff_cache"]


def _client(address: str) -> Any:
    cluster.check_reachable(address)  # a quick, bounded check before ray's own (unbounded) connect
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise LabError("this run goes to a Ray cluster but ray is not installed here: "
                       "`pip install -r requirements-cluster.txt`, or unset CIFAR_LAB_RAY") from None
    try:
        return JobSubmissionClient(address)
    except Exception as e:  # noqa: BLE001 - ray raises ConnectionError, RuntimeError, ... for the same thing
        raise cluster.unreachable(address, e) from None


def entrypoint(package: str) -> str:
    """The job's command: the lab's trainer in streaming mode. `python` is the worker's (docs/CLUSTER.md);
    $CIFAR_LAB_RAY_PYTHON names another one."""
    python = os.environ.get("CIFAR_LAB_RAY_PYTHON") or "python"
    return f"{python} -m core.runs.trainer --stream {package}"


def submit(rec: Recorder, address: str) -> tuple[Any, str]:
    """Submit the recorder's run as a new Ray job; returns (client, job id) and records both in the run."""
    client = _client(address)
    run = rec.lib.get(rec.run_id)
    if run.job_id:  # resumed after its follower died: never let the old job train on beside the new one
        with contextlib.suppress(Exception):
            if str(client.get_job_status(run.job_id)) not in TERMINAL:
                client.stop_job(run.job_id)
    package = f"cifar_lab_run_{run.id}"
    job_id = f"cifar-lab-{run.id}-{secrets.token_hex(3)}"  # a resume is a new job: ids are unique per cluster
    stage = Path(tempfile.mkdtemp(prefix="cifar-lab-stage-"))
    try:
        write_package(stage / package, run.config, job_id=job_id, resume_from=rec.checkpoint_dir if run.resume_requested else None,
                      data_dir=run.data_dir, download=run.download)
        runtime_env = {"working_dir": str(REPO_ROOT), "excludes": EXCLUDES, "py_modules": [str(stage / package)],
                       "env_vars": {"PYTHONUNBUFFERED": "1", "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_GRACE_S)}}
        client.submit_job(entrypoint=entrypoint(package), submission_id=job_id, runtime_env=runtime_env,
                          entrypoint_num_cpus=1, entrypoint_num_gpus=cluster.gpus_per_run(run.config.device, address),
                          metadata={"cifar_lab_run": run.id, "name": run.name[:100]})
    except LabError:
        raise
    except Exception as e:  # noqa: BLE001 - refused by the cluster (bad runtime_env, upload failed, ...)
        raise LabError(f"the Ray cluster at {address} did not accept run {run.id}: {type(e).__name__}: {e}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    with rec.lib.connect() as conn:
        conn.execute("UPDATE runs SET backend = 'ray', cluster = ?, job_id = ? WHERE id = ?",
                     (address, job_id, run.id))
    return client, job_id


def attach(rec: Recorder, address: str, job_id: str) -> tuple[Any, str]:
    """Follow the run's existing job (its previous follower died): (client, job id). LabError when the cluster
    no longer knows the job, saying how to continue."""
    client = _client(address)
    try:
        client.get_job_info(job_id)
    except Exception as e:  # noqa: BLE001 - unknown job, head restarted, network: one message for all
        raise LabError(f"cannot re-attach to Ray job {job_id} at {address} ({type(e).__name__}: {e}): resume the run, "
                       f"it continues from the last checkpoint that came back") from None
    with rec.lib.connect() as conn:
        lifecycle.reattached(conn, rec.run_id)
    return client, job_id


def _tail(client: Any, job_id: str, out: queue.Queue) -> None:
    """Thread: the job's log, chunk by chunk, into `out`; then None (ended) or the exception that broke it."""
    async def run() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.put(chunk)

    try:
        asyncio.run(run())
    except Exception as e:  # noqa: BLE001 - handed to the reader, which falls back to polling
        out.put(e)
        return
    out.put(None)


class _Ingest:
    """Turns log text into events and checkpoint files. A log may be read again from its start (the stream
    broke and was reopened): our lines are counted so each is handled once."""

    def __init__(self, folder: Path) -> None:
        self.files = FileAssembler(folder)
        self.buffer = ""
        self.handled = 0  # our lines handled so far, over all passes
        self.pos = 0  # our lines seen in this pass over the log
        self.finished: ev.Finished | None = None

    def restart(self) -> None:
        self.buffer, self.pos = "", 0

    def feed(self, text: str) -> Iterator[ev.Event]:
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            payload = parse_line(line)
            if payload is None:
                continue
            self.pos += 1
            if self.pos <= self.handled:
                continue
            self.handled = self.pos
            if "file" in payload:
                self.files.add(payload)
            elif "event" in payload:
                try:
                    event = ev.from_dict(payload["event"])
                except (KeyError, TypeError, ValueError):
                    continue
                if isinstance(event, ev.Finished):
                    self.finished = event
                yield event


def _ended(status: str, message: str, job_id: str, stop_sent: bool) -> ev.Finished:
    """How a job that ended without its trainer's `finished` line ended, in the job's own words."""
    if status == "STOPPED":
        reason = f"the Ray job {job_id} was stopped" + ("" if stop_sent else " on the cluster (not from the lab)")
        return ev.Finished(status="stopped", reason=reason, test_acc=None, best_test_acc=None, epochs_done=0,
                           seconds=0.0)
    message = (message or "").strip() or "no message from Ray"
    return ev.Finished(status="failed", reason=f"the Ray job {job_id} {status.lower()}: {message}", test_acc=None,
                       best_test_acc=None, epochs_done=0, seconds=0.0)


class _Job:
    """One submitted job as seen from here: its log passes, stop requests and final status."""

    def __init__(self, rec: Recorder, client: Any, job_id: str, address: str) -> None:
        self.rec, self.client, self.job_id, self.address = rec, client, job_id, address
        self.ingest = _Ingest(rec.checkpoint_dir)
        self.stop_sent = False

    def check_stop(self) -> None:
        # Once `finished` is recorded the run is no longer `running` and should_stop() says so: that is the
        # job ending by itself, not a stop to send.
        if not self.stop_sent and self.ingest.finished is None and self.rec.should_stop():
            self.stop_sent = True
            self.client.stop_job(self.job_id)

    def passes(self) -> Iterator[ev.Event]:
        """Events from the log, reopening the stream while the job is alive, until the job ended."""
        while True:
            chunks: queue.Queue = queue.Queue()
            threading.Thread(target=_tail, args=(self.client, self.job_id, chunks), name=f"tail-{self.job_id}",
                             daemon=True).start()
            self.ingest.restart()
            broke: Exception | None = None
            while True:
                self.check_stop()
                try:
                    item = chunks.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if item is None or isinstance(item, Exception):
                    broke = item
                    break
                yield from self.ingest.feed(item)
            yield from self.ingest.feed("\n")  # a last line without its newline
            info = yield from self._wait_status(terminal_only=broke is None)
            if info is None or str(info.status) in TERMINAL:
                break
            time.sleep(1.0)  # the stream broke but the job runs on: reopen it, without hammering the head
        if info is not None and self.ingest.finished is None:
            try:  # what a broken stream did not deliver
                self.ingest.restart()
                yield from self.ingest.feed(self.client.get_job_logs(self.job_id) + "\n")
            except Exception:  # noqa: BLE001,S110 - the reason below still says how the job ended
                pass
        if self.ingest.finished is None and info is not None:
            yield _ended(str(info.status), info.message, self.job_id, self.stop_sent)

    def _wait_status(self, *, terminal_only: bool) -> Iterator[ev.Event]:
        """The job's info once the head answers (and, with terminal_only, once the job ended); None after
        LOST_AFTER_S without an answer, having yielded the Finished(failed) that says so."""
        last_answer = time.monotonic()
        while True:
            try:
                info = self.client.get_job_info(self.job_id)
                last_answer = time.monotonic()
                if not terminal_only or str(info.status) in TERMINAL:
                    return info
                self.check_stop()
            except Exception as e:  # noqa: BLE001 - head down or network: retry until LOST_AFTER_S
                if time.monotonic() - last_answer > LOST_AFTER_S:
                    yield ev.Finished(status="failed", reason=f"lost contact with the Ray cluster at {self.address} "
                                      f"while job {self.job_id} was running ({type(e).__name__}: {e}); resume the "
                                      f"run once the cluster is back", test_acc=None, best_test_acc=None,
                                      epochs_done=0, seconds=0.0)
                    return None
            time.sleep(1.0)


def follow(rec: Recorder) -> Iterator[ev.Event]:
    """Train the recorder's run on its Ray cluster; yields the job's events (the last one a Finished)."""
    run = rec.lib.get(rec.run_id)
    address = run.cluster or cluster.address_for(rec.lib.get_setting)
    if not address:
        raise LabError(f"run {run.id} is queued for a Ray cluster but no address is known: set {cluster.ENV}")
    if run.reattach_pending and run.job_id:
        client, job_id = attach(rec, address, run.job_id)
        yield ev.Note(f"re-attached to Ray job {job_id} at {address}; its log is read again from the start")
    else:
        client, job_id = submit(rec, address)
        yield ev.Note(f"training on the Ray cluster at {address} as job {job_id}")
    job, ended = _Job(rec, client, job_id, address), False
    try:
        yield from job.passes()
        ended = True
    finally:
        if not ended:  # the caller gave up on us (Ctrl-C, an error): do not leave the job training alone
            with contextlib.suppress(Exception):  # best effort; the caller marks the run
                client.stop_job(job_id)
