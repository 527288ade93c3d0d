"""Export a run to JSON (+ a CSV of its curves, + optionally its checkpoints) and import it back.

The JSON file is self-describing ({"format": "cifar-lab-run", "version": 1, "run": {...}, "epochs": [...]})
so a class can share runs between machines. An imported run gets a new id when its id is taken, is marked
`started_by = "import"`, and does not need its checkpoint (only resuming or evaluating it does). Every
function takes the library (core/runs/library.py): `export_run(lib, run_id, path)`, `import_run(lib, path)`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.config import from_dict, to_dict
from core.errors import ConfigError, LabError
from core.runs import lifecycle
from core.runs.library import RunLibrary
from core.runs.records import EPOCH_FIELDS, RUN_STATUSES, EpochRow
from core.train.files import CHECKPOINTS, LAST

FORMAT = "cifar-lab-run"
VERSION = 1
# Run fields carried by an export (the rest - pid, heartbeat, queue - only mean something on the machine).
EXPORTED = ("id", "name", "preset", "dataset", "model", "device", "status", "reason", "created", "started",
            "finished", "started_by", "params", "trainable_params", "train_size", "test_size", "num_classes",
            "steps_per_epoch", "epochs_done", "test_acc", "best_test_acc", "seconds", "per_class_acc", "sweep_id",
            "tags", "notes", "messages")
_NUMBERS = {"created", "started", "finished", "test_acc", "best_test_acc", "seconds"}
_INTS = {"params", "trainable_params", "train_size", "test_size", "num_classes", "steps_per_epoch", "epochs_done"}
_TEXTS = {"name", "preset", "dataset", "model", "device", "status", "reason", "started_by", "sweep_id", "tags",
          "notes", "messages", "id"}


def _json_safe(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def export_dict(lib: RunLibrary, run_id: str) -> dict[str, Any]:
    """The run as a JSON-ready dict (what `export_run` writes)."""
    run = lib.get(run_id)
    record = run.to_dict()
    body = {k: record[k] for k in EXPORTED}
    body["config"] = to_dict(run.config)
    return {"format": FORMAT, "version": VERSION, "exported": time.time(), "run": body,
            "epochs": [{k: _json_safe(v) for k, v in e.to_dict().items()} for e in lib.curves(run_id)]}


def curves_csv(rows: list[EpochRow]) -> str:
    """A run's curves as CSV text: one line per epoch, the EpochRow fields as columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(EPOCH_FIELDS)
    for row in rows:
        writer.writerow(["" if getattr(row, k) is None else getattr(row, k) for k in EPOCH_FIELDS])
    return buf.getvalue()


def export_run(lib: RunLibrary, run_id: str, path: str | Path | None = None, *,
               with_checkpoint: bool = False) -> list[Path]:
    """Write PATH (JSON, default ./run-ID.json), PATH's .csv of curves beside it and, with_checkpoint, the run's
    checkpoints as PATH-stem-last.pt / -best.pt. Returns the files written."""
    data = export_dict(lib, run_id)
    path = Path(path) if path else Path(f"run-{run_id}.json")
    if path.suffix.lower() != ".json":
        path = path.with_name(path.name + ".json")
    folder = lib.run_dir(run_id)
    copies: list[tuple[Path, Path]] = []
    if with_checkpoint:
        found = [name for name in CHECKPOINTS if (folder / name).is_file()]
        if LAST not in found:
            where = f"its folder {folder} was deleted" if not folder.exists() else f"{folder / LAST} is missing"
            raise LabError(f"cannot export run {run_id} with its checkpoint: {where}; export it without the "
                           f"checkpoint instead")
        for name in found:
            target = path.with_name(f"{path.stem}-{name}")
            copies.append((folder / name, target))
        data["checkpoints"] = {name: target.name for (src, target), name in zip(copies, found)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
        csv_path = path.with_suffix(".csv")
        csv_path.write_text(curves_csv(lib.curves(run_id)), encoding="utf-8")
        for src, target in copies:
            shutil.copyfile(src, target)
    except OSError as e:
        raise LabError(f"cannot write the export of run {run_id} to {path.parent}: {e.strerror}; choose another "
                       f"--out") from None
    return [path, csv_path, *(t for _, t in copies)]


def _bad(source: str, what: str) -> LabError:
    return LabError(f"{source} is not a CIFAR Lab run export ({what}); export the run again with "
                    f"`python -m core runs export ID`")


def _check_run(data: Any, source: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(data, Mapping):
        raise _bad(source, "not a JSON object")
    if data.get("format") != FORMAT:
        raise _bad(source, f"field 'format' must be {FORMAT!r}")
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise _bad(source, f"version {data.get('version')!r} is not one this CIFAR Lab reads (up to {VERSION}): "
                           f"upgrade CIFAR Lab")
    run, epochs = data.get("run"), data.get("epochs")
    if not isinstance(run, Mapping):
        raise _bad(source, "missing field 'run'")
    if not isinstance(epochs, list):
        raise _bad(source, "missing field 'epochs'")
    for key in ("id", "name", "config", "status"):
        if run.get(key) is None:
            raise _bad(source, f"missing field 'run.{key}'")
    for key, value in run.items():
        ok = (value is None or (key in _NUMBERS and isinstance(value, (int, float)))
              or (key in _INTS and isinstance(value, int)) or (key in _TEXTS and isinstance(value, str))
              or key not in _NUMBERS | _INTS | _TEXTS)
        if not ok:
            raise _bad(source, f"field 'run.{key}' has the wrong type ({type(value).__name__})")
    if run["status"] not in RUN_STATUSES:
        raise _bad(source, f"unknown status {run['status']!r}")
    rows = []
    for i, e in enumerate(epochs):
        if not isinstance(e, Mapping) or not isinstance(e.get("epoch"), int):
            raise _bad(source, f"epochs[{i}] has no whole-number 'epoch'")
        if any(e.get(k) is not None and not isinstance(e.get(k), (int, float)) for k in EPOCH_FIELDS):
            raise _bad(source, f"epochs[{i}] has a value that is not a number")
        rows.append({k: e.get(k) for k in EPOCH_FIELDS})
    if len({r["epoch"] for r in rows}) != len(rows):
        raise _bad(source, "an epoch appears twice")
    return dict(run), rows


def import_dict(lib: RunLibrary, data: Any, *, source: str = "the file",
                checkpoints: Mapping[str, Path] | None = None) -> str:
    """Add an exported run (a dict from export_dict) to the library; returns its id (new if the id is taken).
    `checkpoints` maps last.pt / best.pt to files to copy into the run's folder."""
    run, rows = _check_run(data, source)
    try:
        config = from_dict(run["config"])
    except ConfigError as e:
        raise _bad(source, f"its config is invalid: {e}") from None
    status, reason = run["status"], run.get("reason") or ""
    if status in ("queued", "running"):  # an import never trains by itself
        status, reason = "stopped", f"was {status} when it was exported"
    pca = run.get("per_class_acc")
    if pca is not None and not (isinstance(pca, list) and all(v is None or isinstance(v, (int, float)) for v in pca)):
        raise _bad(source, "field 'run.per_class_acc' must be a list of numbers")
    extra = {k: run.get(k) for k in ("created", "started", "finished", "params", "trainable_params", "train_size",
                                     "test_size", "num_classes", "steps_per_epoch", "test_acc", "best_test_acc",
                                     "dataset", "model") if run.get(k) is not None}
    extra.update(reason=reason, messages=run.get("messages") or "", notes=run.get("notes"),
                 seconds=float(run.get("seconds") or 0.0), per_class_acc=json.dumps(pca) if pca else None,
                 epochs_done=max((r["epoch"] for r in rows), default=0))
    run_id = run["id"] if lib.find(run["id"]) is None else None
    with lib.transaction() as conn:
        if run_id is not None and conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
            run_id = None  # taken meanwhile
        run_id = run_id or lifecycle.new_run_id()
        lifecycle.insert_run(conn, config, device=run.get("device") or "cpu", status=status, started_by="import",
                             name=run["name"], preset=run.get("preset"), sweep_id=run.get("sweep_id"),
                             tags=run.get("tags"), run_id=run_id, extra=extra)
        conn.executemany(f"INSERT INTO epochs (run_id, {', '.join(EPOCH_FIELDS)}) VALUES "
                         f"(?, {', '.join('?' * len(EPOCH_FIELDS))})",
                         [(run_id, *(r[k] for k in EPOCH_FIELDS)) for r in rows])
    for name, src in (checkpoints or {}).items():
        if name in CHECKPOINTS and Path(src).is_file():
            lib.run_dir(run_id).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, lib.run_dir(run_id) / name)
    return run_id


def import_run(lib: RunLibrary, path: str | Path) -> str:
    """Import a file written by export_run; checkpoints listed in it are copied when they are beside it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise LabError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise _bad(str(path), "not a text file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(str(path), f"not valid JSON: {e.msg} at line {e.lineno}") from None
    files = data.get("checkpoints") if isinstance(data, Mapping) else None
    checkpoints = {name: path.with_name(Path(str(file)).name) for name, file in files.items()} \
        if isinstance(files, Mapping) else None
    return import_dict(lib, data, source=str(path), checkpoints=checkpoints)
