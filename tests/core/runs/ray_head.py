"""A real single-node Ray head for the cluster tests (and `python tests/core/runs/ray_head.py` by hand).

The head listens on free ports picked here (its dashboard, the Jobs API, on 127.0.0.1), keeps a small object
store (these tests move no objects), runs in its own process group so teardown ends exactly its processes,
and gets a PATH whose `python` is this interpreter: a job's entrypoint runs the lab's trainer with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's minimum is 75 MiB
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 5.0  # then SIGKILL: `ray start --block` does not always take its processes down on SIGTERM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayHead:
    """`ray start --head --block` in its own process group; .address is its dashboard (Jobs API) URL."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="ray-lab-", dir="/tmp"))  # short: Ray's socket paths are capped
        self.dashboard_port = free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        ports = {"--port": free_port(), "--dashboard-port": self.dashboard_port,
                 "--node-manager-port": free_port(), "--object-manager-port": free_port(),
                 "--ray-client-server-port": free_port(), "--metrics-export-port": free_port(),
                 "--dashboard-agent-listen-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
                 "--runtime-env-agent-port": free_port()}
        ray = Path(sys.executable).with_name("ray")
        cmd = [str(ray) if ray.exists() else "ray", "start", "--head", "--block", "--include-dashboard", "true",
               "--dashboard-host", "127.0.0.1", "--num-cpus", str(num_cpus), "--num-gpus", "0",
               "--object-store-memory", str(OBJECT_STORE_BYTES), "--temp-dir", str(self.temp),
               "--disable-usage-stats"]
        for flag, port in ports.items():
            cmd += [flag, str(port)]
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1",
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        env.pop("CIFAR_LAB_RAY", None)
        self.log = open(self.temp / "head.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.address + "/api/jobs/", timeout=2) as r:
                    json.loads(r.read())
                return
            except (OSError, ValueError):
                time.sleep(0.5)
        tail = (self.temp / "head.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"the Ray head did not come up within {START_TIMEOUT_S:.0f} s:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the head's process group, SIGKILL for whatever is left after STOP_TIMEOUT_S."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):  # raylet & co. outlive `ray start --block` at times
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)


if __name__ == "__main__":  # by hand: start a head, print its address, stop it on Enter / Ctrl-C
    head = RayHead()
    print(f"Ray head up: CIFAR_LAB_RAY={head.address}", flush=True)
    try:
        input("press Enter to stop it\n")
    except (KeyboardInterrupt, EOFError):
        pass
    finally:
        head.stop()
