"""A packed device: how many runs may train on one device at once, and whether the next queued run fits now.

Two limits, both checked by the queue (core/runs/queue.py) inside its claiming transaction:
- a cap on concurrent runs per device: $CIFAR_LAB_MAX_PER_DEVICE if set (a whole number, or "auto"), else
  the library's `max_per_device` setting ("auto" by default). "auto" is 1 on a CPU or an Apple GPU (their
  cores are shared by every run anyway: two runs at once only take turns) and AUTO_CUDA_CAP on CUDA, where
  memory decides;
- memory: on CUDA always, elsewhere when the cap allows more than one run, the queued run's estimated bytes
  (core/train/memory.py) plus those of the runs already training there must fit the device's usable memory.

A run that could never fit alone is failed at admission with what to change; one that fits alone but not
beside the running ones waits its turn (the queue stays first-in first-out: a large run is never starved by
smaller ones jumping ahead). `admit` is the pure decision; `device_capacity` and the estimates are the
measured inputs; `admission` reads a device's running runs inside the queue's transaction and asks `admit`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.config import from_json
from core.errors import LabError
from core.runs import cluster

MAX_PER_DEVICE_ENV = "CIFAR_LAB_MAX_PER_DEVICE"
AUTO = "auto"
AUTO_CUDA_CAP = 16  # runs at once on one GPU when memory allows: beyond this they only take turns on the SMs
USABLE_FRACTION = 0.9  # of a device's memory: the rest for other programs and the allocator's slack
GIB = 2**30


@dataclass(frozen=True)
class Admission:
    """The queue's answer for the run at the head of a device's queue."""

    verdict: str  # "start" | "wait" (a running run must end first) | "never" (fail it: it cannot fit alone)
    reason: str  # why, in words a teacher can act on ("" for start)


def parse_cap(value: str | int | None, where: str) -> int | None:
    """A cap as written in the setting or the environment: a whole number >= 1, or "auto" / empty (None)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", AUTO)):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise LabError(f"{where} must be a whole number >= 1 or 'auto', got {value!r}: fix it (or remove it for "
                       f"the default, 'auto': one run at a time on a CPU, by memory on a GPU)")
    return n


def device_cap(device: str, setting: str | None, env: Mapping[str, str] | None = None) -> tuple[int, bool]:
    """(most runs at once on `device`, whether memory is checked too) from the environment and the setting."""
    env = os.environ if env is None else env
    cap = parse_cap(env.get(MAX_PER_DEVICE_ENV), f"${MAX_PER_DEVICE_ENV}") if env.get(MAX_PER_DEVICE_ENV) \
        else parse_cap(setting, "the library's max_per_device setting")
    cuda = device.startswith("cuda")
    if cap is None:
        return (AUTO_CUDA_CAP, True) if cuda else (1, False)
    return cap, cuda or cap > 1


def admit(need: int | None, running_needs: Sequence[int], *, cap: int, capacity: int | None,
          device: str = "the device") -> Admission:
    """Whether a run needing `need` bytes may start beside runs needing `running_needs` bytes on a device with
    `capacity` usable bytes, at most `cap` runs at once. need/capacity None: memory is not checked."""
    running = len(running_needs)
    if running >= cap:
        return Admission("wait", f"{device} trains {cap} run(s) at once and {running} are running")
    if need is None or capacity is None:
        return Admission("start", "")
    if need > capacity:
        return Admission("never", f"out of memory at admission: this run needs about {need / GIB:.1f} GiB on "
                                  f"{device}, which has {capacity / GIB:.1f} GiB usable: lower the batch size, "
                                  f"or choose a smaller model or a test subset")
    used = sum(running_needs)
    if used + need > capacity:
        return Admission("wait", f"{device} has {(capacity - used) / GIB:.1f} GiB free of {capacity / GIB:.1f} GiB "
                                 f"usable; this run needs about {need / GIB:.1f} GiB")
    return Admission("start", "")


def device_capacity(device: str) -> int:
    """Usable bytes of `device` for training runs: USABLE_FRACTION of a GPU's memory, or of this machine's RAM
    for the CPU and MPS (each run is a process of its own)."""
    if device.startswith("cuda"):
        import torch  # deferred: listing runs must not import torch

        index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        return int(torch.cuda.get_device_properties(index).total_memory * USABLE_FRACTION)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): memory then never blocks a run
        return 1 << 62
    return int(total * USABLE_FRACTION)


def run_need(config_json: str, device: str) -> int:
    """Estimated bytes of a run (its TrainConfig as JSON) on `device`; cached per config by the estimator."""
    from core.train.memory import estimate_run_memory  # deferred: imports torch

    return estimate_run_memory(from_json(config_json), device.split(":", 1)[0]).total


def _need(config_json: str, device: str) -> int | None:
    """A run's estimated bytes on `device`, or None when no estimate can be made (see admission)."""
    try:
        return run_need(config_json, device)
    except Exception:  # noqa: BLE001 - a bad config fails in its trainer with a clear message; never block here
        return None


def _cap_of(conn: sqlite3.Connection, device: str) -> tuple[int, bool]:
    if device == cluster.DEVICE:  # Ray places the jobs on its GPUs itself: only how many it gets at once is ours
        return cluster.slots(conn), False
    setting = conn.execute("SELECT value FROM settings WHERE key = 'max_per_device'").fetchone()
    return device_cap(device, setting[0] if setting else None)


def admission(conn: sqlite3.Connection, device: str, config_json: str) -> Admission:
    """May the queued run with this config (JSON) start on `device` now? Read inside the queue's transaction
    `conn`: the cap and, where memory is checked, the estimates of the device's running runs. An estimate that
    cannot be made (a config its trainer will reject with its own message) checks nothing."""
    cap, by_memory = _cap_of(conn, device)
    running = [r[0] for r in conn.execute("SELECT config FROM runs WHERE status = 'running' AND device = ?",
                                          (device,))]
    if not by_memory or len(running) >= cap:
        return admit(None, [0] * len(running), cap=cap, capacity=None, device=device)
    need = _need(config_json, device)
    running_needs = [_need(c, device) or 0 for c in running]
    return admit(need, running_needs, cap=cap, capacity=device_capacity(device), device=device)


def warm_estimates(conn: sqlite3.Connection, devices: Sequence[str]) -> None:
    """Make the estimates a claim will need before it takes the write lock (the first one imports torch and
    builds models on the meta device: not something to do while every writer waits)."""
    for dev in devices:
        if _cap_of(conn, dev)[1]:
            for (config_json,) in conn.execute("SELECT config FROM runs WHERE device = ? AND status IN "
                                               "('running', 'queued')", (dev,)):
                _need(config_json, dev)
