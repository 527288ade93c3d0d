"""How fast does a fresh server show its first page? Starts `streamlit run app.py` on an empty runs folder, opens
`/` in headless Chromium (Debian's `chromium`, as the browser tests) and prints: the server up, the real menu
drawn, the first page settled, and a second browser's page settled.

    python scripts/first_paint.py [--port 8503]

The server-side part (the first script run once torch is imported) is timed apart, with Streamlit's AppTest:
    python -c "import torch, torchvision, time; from streamlit.testing.v1 import AppTest; a = AppTest.from_file('app.py'); t = time.time(); a.run(); print(time.time() - t)"
docs/PERFORMANCE.md ("First paint on a fresh server") has the figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from presenter_screens import settle  # noqa: E402

MENU = '[data-testid="stSidebarNav"], [data-testid="stTopNavLinkContainer"], nav'


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8503)
    args = ap.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}/"
    with tempfile.TemporaryDirectory() as runs:
        t0 = time.time()
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
                                   str(args.port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                                  cwd=ROOT, env=dict(os.environ, CIFAR_LAB_RUNS=runs), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            for line in server.stdout:
                if "URL:" in line:
                    break
            up = time.time() - t0
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                            args=["--headless", "--no-sandbox", "--disable-gpu"])
                first = browser.new_page(viewport={"width": 1280, "height": 720})
                t1 = time.time()
                first.goto(url, wait_until="domcontentloaded")
                first.wait_for_selector(MENU, timeout=60_000)
                menu = time.time() - t1
                settle(first)
                page = time.time() - t1
                second = browser.new_page(viewport={"width": 1280, "height": 720})
                t2 = time.time()
                second.goto(url, wait_until="domcontentloaded")
                settle(second)
                again = time.time() - t2
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"server up {up:.1f} s; menu {menu:.2f} s; first page settled {page:.2f} s; "
          f"a second browser's page {again:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
