"""Screenshot every page of a running CIFAR Lab in presenter mode, at projector and phone sizes, for a person
to look at (the back-row check of docs/CLASSROOM.md). Loopback only; each page is waited for, then shot once.

    python scripts/presenter_screens.py --url http://127.0.0.1:8501 --out screens \
        --query "dataset_kind=folder&folder=/work/cifar10&subset=2000&test_subset=1000" --sizes 1280x720,1920x1080

Writes OUT/<width>x<height>/<nn>-<page>.png (the viewport, as a projector shows it) and prints the paths.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import time
from urllib.parse import urlparse

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["home"] + sorted(p.stem for p in (ROOT / "pages").glob("*.py") if p.stem != "home")


def settle(page, timeout_s: float = 120.0) -> None:
    """Streamlit's own content is there: a title, the script run finished, no skeleton or spinner left."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_s * 1000)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_s * 1000)
    busy = '[data-testid="stSkeleton"], [data-testid="stSpinner"]'
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and page.locator(busy).count():
        page.wait_for_timeout(250)
    page.wait_for_timeout(1500)  # charts paint after the run ends


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the app, on a loopback address")
    ap.add_argument("--out", default="screens")
    ap.add_argument("--query", default="", help="lab settings as a query string (presenter=true is added)")
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--pages", default="", help="comma-separated page names (default: all)")
    ap.add_argument("--plain", action="store_true", help="without presenter mode (e.g. a student's phone)")
    args = ap.parse_args(argv)
    if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--url must be a loopback address")
    from playwright.sync_api import sync_playwright

    pages = [p for p in args.pages.split(",") if p] or PAGES
    query = "&".join(q for q in (args.query, "" if args.plain else "presenter=true") if q)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            out = pathlib.Path(args.out) / size
            out.mkdir(parents=True, exist_ok=True)
            context = browser.new_context(viewport={"width": w, "height": h})
            page = context.new_page()
            for name in pages:
                page.goto(f"{args.url}/{'' if name == 'home' else name}?{query}", wait_until="domcontentloaded")
                settle(page)
                path = out / f"{PAGES.index(name):02d}-{name}.png"
                page.screenshot(path=str(path))
                print(path, flush=True)
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
