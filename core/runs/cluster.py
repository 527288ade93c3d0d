"""Which runs go to a Ray cluster, and whether the cluster can be reached - without importing ray.

A run goes to the cluster when an address is set: `CIFAR_LAB_RAY=http://HEAD:8265` in the environment (or the
CLI's `--ray URL`, which sets it for that process), else the library setting `ray_address` (the teacher's
sidebar and `python -m core runs settings --ray URL` write it, so every process sharing the runs folder agrees).
Without either nothing changes: runs train on this machine and ray is never imported.

Cluster runs wait in the library's own FIFO queue like local runs, on the pseudo-device DEVICE ("ray"), with
`ray_slots` (a setting, 4 by default) of them handed to the cluster at once; Ray then places each job on a free
GPU. Queue position, stop and resume therefore work exactly as for a local device. The Ray side (submitting
the job, reading its log, stopping it) is core/runs/rayjob.py.

An unreachable cluster is caught before a run is queued (check_reachable raises LabError, nothing is queued,
so nothing is lost); if the cluster goes away later, the run is marked failed with the reason and can be
resumed from its last checkpoint once the head is back.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.error
import urllib.request
from typing import Any

from core.errors import LabError

ENV = "CIFAR_LAB_RAY"
SETTING = "ray_address"
SLOTS_SETTING = "ray_slots"
DEFAULT_SLOTS = 4
DEVICE = "ray"  # the pseudo-device (queue) of cluster runs
CONNECT_TIMEOUT_S = 5.0


def normalize(address: str | None) -> str | None:
    """'HEAD:8265' -> 'http://HEAD:8265'; '', 'off', 'none', 'local' -> None (train here)."""
    text = (address or "").strip().rstrip("/")
    if text.lower() in ("", "off", "none", "local"):
        return None
    if "://" not in text:
        text = "http://" + text
    if not text.startswith(("http://", "https://")):
        raise LabError(f"a Ray cluster address looks like http://HEAD:8265 (its dashboard), got {address!r}")
    return text


def address_for(get_setting: Any | None = None, override: str | None = None) -> str | None:
    """The cluster runs go to: `override` (a CLI flag), else $CIFAR_LAB_RAY, else the library's setting
    (`get_setting` is a RunStore's get_setting), else None (train on this machine)."""
    if override is not None:
        return normalize(override)
    if os.environ.get(ENV) is not None:
        return normalize(os.environ[ENV])
    return normalize(get_setting(SETTING, "")) if get_setting is not None else None


def where_runs_go(get_setting: Any) -> tuple[str | None, str]:
    """(the cluster address or None, where that choice comes from: "environment" | "setting" | "default"),
    for the sidebar: an address from the environment cannot be changed from the app."""
    if os.environ.get(ENV) is not None:
        return normalize(os.environ[ENV]), "environment"
    address = normalize(get_setting(SETTING, ""))
    return address, "setting" if address else "default"


def set_address(store: Any, address: str | None) -> str | None:
    """Save the library's cluster address (None/'off' clears it), after checking the head answers."""
    value = normalize(address)
    if value:
        check_reachable(value)
    store.set_setting(SETTING, value or "")
    return value


def set_slots(store: Any, n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise LabError(f"ray_slots must be a whole number >= 1, got {n!r}")
    store.set_setting(SLOTS_SETTING, n)


def columns(address: str) -> dict[str, str]:
    """The run row's columns of a run sent to `address` (store.insert_run's `extra`)."""
    return {"backend": "ray", "cluster": address}


def slots(conn: sqlite3.Connection) -> int:
    """How many cluster runs may be handed to Ray at once (read inside the queue's claim transaction)."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (SLOTS_SETTING,)).fetchone()
    try:
        return max(1, int(row[0])) if row else DEFAULT_SLOTS
    except ValueError:
        return DEFAULT_SLOTS


def unreachable(address: str, why: object) -> LabError:
    return LabError(f"cannot reach the Ray cluster at {address} ({why}): start its head (`ray start --head "
                    f"--dashboard-host 0.0.0.0`, docs/CLUSTER.md), check the address, or unset {ENV} (and the "
                    f"`ray_address` setting) to train on this machine")


def _get_json(address: str, path: str, timeout: float) -> Any:
    with urllib.request.urlopen(address + path, timeout=timeout) as response:  # noqa: S310 - http(s) only
        return json.loads(response.read().decode("utf-8"))


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> dict[str, Any]:
    """The head's version info, or LabError saying the cluster cannot be reached and what to do."""
    try:
        info = _get_json(address, "/api/version", timeout)
    except urllib.error.HTTPError as e:
        raise unreachable(address, f"HTTP {e.code} from /api/version: is this a Ray dashboard address?") from None
    except (OSError, ValueError) as e:  # refused, timed out, unknown host, not JSON
        raise unreachable(address, getattr(e, "reason", None) or e) from None
    if not isinstance(info, dict) or "ray_version" not in info:
        raise unreachable(address, "it answered, but not as a Ray dashboard")
    return info


def cluster_gpus(address: str, timeout: float = CONNECT_TIMEOUT_S) -> float | None:
    """GPUs the cluster has in all (from the dashboard's cluster status), None when it cannot tell."""
    try:
        data = _get_json(address, "/api/cluster_status", timeout)
        usage = data["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    gpu = usage.get("GPU")
    return float(gpu[1]) if isinstance(gpu, list) and len(gpu) == 2 else 0.0


def gpus_per_run(device: str, address: str) -> float:
    """entrypoint_num_gpus for a run asking for `device`: cpu -> 0; cuda -> 1; auto -> 1 if the cluster has
    GPUs (or cannot tell) else 0, so a CPU-only cluster trains instead of waiting forever for a GPU.
    $CIFAR_LAB_RAY_GPUS overrides it (e.g. 0.5 to share a GPU between two small runs)."""
    if os.environ.get("CIFAR_LAB_RAY_GPUS"):
        try:
            return float(os.environ["CIFAR_LAB_RAY_GPUS"])
        except ValueError:
            raise LabError(f"CIFAR_LAB_RAY_GPUS must be a number of GPUs per run, got "
                           f"{os.environ['CIFAR_LAB_RAY_GPUS']!r}") from None
    if device == "cpu":
        return 0.0
    if device.startswith("cuda"):
        return 1.0
    total = cluster_gpus(address)
    return 1.0 if total is None or total > 0 else 0.0
