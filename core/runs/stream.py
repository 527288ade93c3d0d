"""The trainer's streaming mode, for runs trained as Ray jobs: events and checkpoints as JSON lines on stdout.

A cluster worker shares no filesystem and no database with the lab's server, so the job's trainer
(`python -m core.runs.trainer --stream PACKAGE`, started by core/runs/cluster.py through Ray's Jobs API) reads
its run from PACKAGE - a folder Ray ships with the job (runtime_env py_modules) holding `run.json` (the config
and how to load the data) and, when the run is resumed, its `last.pt` / `best.pt` - trains with the same engine
as a local trainer and prints every line it means for the server with the prefix MARK:

    @cifar-lab@ {"event": {...core.train.events.to_dict(e)...}}
    @cifar-lab@ {"file": "<LAST>", "part": 0, "parts": 3, "data": "<base64>"}

    @cifar-lab@ {"file": "<BEST>", "same_as": "<LAST>"}  (BEST byte for byte the LAST just sent)

A checkpoint file the engine rewrote (after an epoch, on a stop) is printed BEFORE the next event - at most
every CHECKPOINT_EVERY_S mid-run, and always before `finished` - so when the server reads `finished` it
already holds the checkpoint that goes with it. Files go in
parts of at most PART_CHARS base64 characters: log readers and websockets choke on multi-megabyte lines.
Anything else the job prints (warnings, tracebacks) is not prefixed and the server ignores it. SIGTERM - what
Ray's stop_job sends - stops the run like the Stop button: checkpoint, `finished` (stopped), exit.
"""

from __future__ import annotations

import base64
import filecmp
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from core.config import TrainConfig, from_dict, to_dict
from core.errors import LabError
from core.train import events as ev
from core.train.files import BEST, LAST

MARK = "@cifar-lab@ "
PART_CHARS = 1 << 20  # 1 MiB of base64 per line
RUN_FILE = "run.json"
# A checkpoint travels through the job's log (the cnn preset's is 200 MB with its Adam state): at most one per
# CHECKPOINT_EVERY_S mid-run, and always the final one with `finished`. A job lost with its node so loses at
# most that much training, and the log stays a bounded multiple of the model's size.
CHECKPOINT_EVERY_S = 600.0
CHECKPOINTS = (BEST, LAST)


# ---- the wire format ---------------------------------------------------------------------------------------

def event_line(event: ev.Event) -> str:
    return MARK + json.dumps({"event": ev.to_dict(event)})


def file_lines(path: Path, same_as: str | None = None) -> Iterator[str]:
    """A checkpoint as our lines: base64 in parts read one at a time (a CNN's checkpoint is hundreds of MB), or
    one line saying it is byte for byte the file `same_as` sent just before (best.pt after an improved epoch)."""
    if same_as is not None:
        yield MARK + json.dumps({"file": path.name, "same_as": same_as})
        return
    raw_part = PART_CHARS // 4 * 3  # bytes per part: a whole number of base64 quanta, so parts decode alone
    parts = max(1, -(-path.stat().st_size // raw_part))
    with open(path, "rb") as f:
        for i in range(parts):
            data = base64.b64encode(f.read(raw_part)).decode("ascii")
            yield MARK + json.dumps({"file": path.name, "part": i, "parts": parts, "data": data})


def parse_line(line: str) -> dict[str, Any] | None:
    """The payload of one of our lines; None for any other line of the job's log (or a damaged one)."""
    start = line.find(MARK)
    if start < 0:
        return None
    try:
        payload = json.loads(line[start + len(MARK):])
    except json.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


class FileAssembler:
    """Puts checkpoint parts back together into `folder`, decoding each part as it comes (constant memory), and
    moves a file into place only once whole (a reader never sees half a file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._next: dict[str, int] = {}  # file name -> the part expected next

    def add(self, payload: dict[str, Any]) -> Path | None:
        """Take one line's payload; returns the file's path once it is complete."""
        name = Path(str(payload["file"])).name  # never a path outside the run's folder
        if name not in CHECKPOINTS:
            return None
        path = self.folder / name
        tmp = path.with_suffix(path.suffix + ".part")
        same_as = payload.get("same_as")
        if same_as is not None:
            source = self.folder / Path(str(same_as)).name
            if Path(str(same_as)).name not in CHECKPOINTS or not source.is_file():
                return None
            from core.train.checkpoint import keep_as  # torch's import, paid only where a checkpoint arrives
            keep_as(source, path)  # a hard link: the server keeps one 200 MB file, not two
            return path
        part = payload["part"]
        if part != self._next.get(name, 0) and part != 0:
            self._next.pop(name, None)  # a part went missing: wait for the next whole file
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb" if part == 0 else "ab") as f:
            f.write(base64.b64decode(payload["data"]))
        self._next[name] = part + 1
        if part + 1 < payload["parts"]:
            return None
        del self._next[name]
        os.replace(tmp, path)
        return path


# ---- the job's side ----------------------------------------------------------------------------------------

def write_package(folder: Path, config: TrainConfig, *, job_id: str, resume_from: Path | None,
                  data_dir: str | None, download: bool) -> Path:
    """Write the run's package for the job (a Python package folder, so Ray can ship it as a py_module).
    The job id goes inside: Ray caches py_modules by their files' content, not their folder's name, so two
    jobs of the same config would otherwise get the first one's folder, under the first one's name."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text('"""A CIFAR Lab run shipped to a Ray job (core/runs/stream.py)."""\n')
    resume = resume_from is not None and (resume_from / LAST).is_file()
    if resume:
        for name in CHECKPOINTS:
            if (resume_from / name).is_file():
                shutil.copy2(resume_from / name, folder / name)
    run = {"job_id": job_id, "config": to_dict(config), "resume": resume, "data_dir": data_dir, "download": download}
    (folder / RUN_FILE).write_text(json.dumps(run))
    return folder


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LabError(f"the run's package {package!r} did not reach this job (runtime_env py_modules)")
    return Path(list(spec.submodule_search_locations)[0])


def checkpoint_every_s() -> float:
    """Seconds between checkpoints sent mid-run ($CIFAR_LAB_RAY_CHECKPOINT_S, default CHECKPOINT_EVERY_S)."""
    try:
        return float(os.environ.get("CIFAR_LAB_RAY_CHECKPOINT_S") or CHECKPOINT_EVERY_S)
    except ValueError:
        return CHECKPOINT_EVERY_S


def _data_root(server_dir: str | None) -> str | None:
    # A worker's own $CIFAR_LAB_DATA wins (docs/CLUSTER.md); otherwise the same path as on the server.
    return os.environ.get("CIFAR_LAB_DATA") or server_dir


class _Changed:
    """Which checkpoint files the engine rewrote since we last looked (by mtime and size)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen = {name: self._stamp(name) for name in CHECKPOINTS}

    def _stamp(self, name: str) -> tuple[int, int] | None:
        try:
            st = (self.folder / name).stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def __call__(self) -> list[Path]:
        out = []
        for name in CHECKPOINTS:
            stamp = self._stamp(name)
            if stamp is not None and stamp != self.seen[name]:
                self.seen[name] = stamp
                out.append(self.folder / name)
        return out


def _send(paths: list[Path], emit: Callable[[str], None]) -> bool:
    """Send the changed checkpoints, last.pt first; a best.pt equal to it goes as a one-line copy."""
    names = {p.name: p for p in paths}
    for name in (LAST, BEST):
        if name not in names:
            continue
        same = name == BEST and LAST in names and (
            os.path.samefile(names[BEST], names[LAST])  # linked by the engine: nothing to compare
            or filecmp.cmp(names[BEST], names[LAST], shallow=False))
        for line in file_lines(names[name], same_as=LAST if same else None):
            emit(line)
    return bool(paths)


def stream_run(package: str, out: TextIO | None = None,
               train: Callable[..., Iterator[ev.Event]] | None = None) -> int:
    """Train the run in `package`, printing our lines on `out`; exit code 0 when it completed."""
    out = out or sys.stdout
    stop = {"asked": False}

    def on_term(signum: int, frame: object) -> None:
        stop["asked"] = True

    signal.signal(signal.SIGTERM, on_term)

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    status = "failed"
    work = Path(tempfile.mkdtemp(prefix="cifar-lab-job-"))  # the shipped package may be a shared read-only cache
    try:
        folder = _package_folder(package)
        run = json.loads((folder / RUN_FILE).read_text())
        for name in CHECKPOINTS:
            if (folder / name).is_file():
                shutil.copy2(folder / name, work / name)
        changed = _Changed(work)
        if train is None:
            from core.train.engine import train  # the slow import
        events = train(from_dict(run["config"]), should_stop=lambda: stop["asked"],
                       data_root=_data_root(run.get("data_dir")), download=bool(run.get("download")),
                       checkpoint_dir=work, resume=bool(run.get("resume")))
        sent_at = time.monotonic()
        for event in events:
            due = isinstance(event, ev.Finished) or time.monotonic() - sent_at >= checkpoint_every_s()
            if due and _send(changed(), emit):
                sent_at = time.monotonic()
            emit(event_line(event))
            if isinstance(event, ev.Finished):
                status = event.status
    except LabError as e:  # setup problems the user can fix: the message says what to do
        emit(event_line(ev.Finished(status="failed", reason=str(e), test_acc=None, best_test_acc=None,
                                    epochs_done=0, seconds=0.0)))
    except Exception as e:  # noqa: BLE001 - a bug: keep the traceback in the job's log, the reason in the run
        traceback.print_exc()
        emit(event_line(ev.Finished(status="failed", reason=f"{type(e).__name__}: {e}", test_acc=None,
                                    best_test_acc=None, epochs_done=0, seconds=0.0)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if status == "completed" else 1
