"""Real Streamlit servers for the tests that drive one: a free loopback port, and waiting until a started server
answers its health check (tests/browser/test_browser.py runs the lab, tests/ui/test_streamlit_session.py a tiny
app)."""

from __future__ import annotations

import socket
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_is_up(url: str, timeout_s: float) -> bool:
    """Whether the Streamlit server at `url` answers /_stcore/health with "ok" within timeout_s (a bound on a
    hang, not a speed target)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read() == b"ok":
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False
