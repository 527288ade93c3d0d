"""A packed device: how many runs may train on one device at once, and whether the next queued run fits now.

Two limits, both checked by the scheduler (core/runs/scheduler.py) inside its claiming transaction:
- a cap on concurrent runs per device: $CIFAR_LAB_MAX_PER_DEVICE if set (a whole number, or "auto"), else
  the library's `max_per_device` setting ("auto" by default). "auto" is 1 on a CPU or an Apple GPU (their
  cores are shared by every run anyway: two runs at once only take turns) and AUTO_CUDA_CAP on CUDA, where
  memory decides;
- memory: on CUDA always, elsewhere when the cap allows more than one run, the queued run's estimated bytes
  (core/train/memory.py) plus those of the runs already training there must fit the device's usable memory.

A run that could never fit alone is failed at admission with what to change; one that fits alone but not
beside the running ones waits its turn (the queue stays first-in first-out: a large run is never starved by
smaller ones jumping ahead). `admit` is the pure decision; `device_cap`, `device_capacity` and the estimates
are its inputs. Nothing here reads the run library: the scheduler reads a device's running runs and settings
inside its transaction and asks `admit`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.config import from_json
from core.errors import LabError

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


def need_or_none(config_json: str, device: str) -> int | None:
    """A run's estimated bytes on `device`, or None when no estimate can be made: a config its trainer will
    reject with its own message checks nothing here."""
    try:
        return run_need(config_json, device)
    except Exception:  # noqa: BLE001 - a bad config fails in its trainer with a clear message; never block here
        return None
