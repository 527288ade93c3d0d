"""End to end in a real browser: start the app on a free localhost port, visit every page in Debian's Chromium
through Playwright, check that no page shows an exception, and save a screenshot per page.

Skipped (with the reason) only where Chromium or Playwright is missing; `make test` installs Chromium first.
Screenshots go to test-artifacts/screenshots/ (printed at the end of the test).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from tests.servers import free_port, streamlit_is_up

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
PAGES = ["home"] + sorted(p.stem for p in (ROOT / "pages").glob("*.py") if p.stem != "home")
QUERY = "dataset_kind=synthetic&subset=500&test_subset=500&device=cpu"
# The screenshot script's wait for a settled page (a title, the script run over, no skeleton or spinner): one
# definition of "the page is there" for the test and for the person looking at the screenshots.
_spec = importlib.util.spec_from_file_location("presenter_screens", ROOT / "scripts" / "presenter_screens.py")
screens = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screens)
settle = screens.settle
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium through apt as root)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    tmp = tmp_path_factory.mktemp("browser")
    port = int(os.environ.get("CIFAR_LAB_TEST_PORT") or free_port())  # a shared machine: a port range of one's own
    env = {**os.environ, "CIFAR_LAB_DATA": str(tmp / "data"), "CIFAR_LAB_RUNS": str(tmp / "runs"),
           "OMP_NUM_THREADS": "1"}
    env.pop("CIFAR_LAB_PASSCODE", None)
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.headless", "true"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        if not streamlit_is_up(url, 90):
            pytest.fail(f"the app did not start in 90 s; its log:\n{(tmp / 'server.log').read_text()[-3000:]}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


def test_a_deep_link_to_a_fresh_server_opens_the_page_inside_the_app(app_url, browser):
    """Must run first (fresh server): Streamlit would serve pages/transfer.py alone, without app.py's menu."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{app_url}/transfer?{QUERY}", wait_until="domcontentloaded")
    settle(page)
    assert page.locator("h1").first.inner_text() == "Transfer learning"
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert nav.get_by_text("Report card").count() == 1 and nav.get_by_text("app", exact=True).count() == 0
    assert "dataset_kind=synthetic" in page.url
    page.close()


def test_every_page_in_a_real_browser(app_url, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 2400})  # Streamlit scrolls inside itself
    page = context.new_page()
    failures = []
    for name in PAGES:
        path = "" if name == "home" else name
        page.goto(f"{app_url}/{path}?{QUERY}", wait_until="domcontentloaded")
        settle(page)
        exceptions = page.locator('[data-testid="stException"]')
        if exceptions.count():
            failures.append(f"{name}: {exceptions.first.inner_text()[:300]}")
        if page.get_by_text("Traceback (most recent call last)").count():
            failures.append(f"{name}: shows a traceback")
        page.screenshot(path=str(SHOTS / f"{PAGES.index(name):02d}-{name}.png"))
    context.close()
    print(f"\nscreenshots of {len(PAGES)} pages in {SHOTS}")
    assert failures == []


def test_no_page_scrolls_sideways_on_a_phone(app_url, browser):
    """A student's phone (390×844): the document is never wider than the window, on any page. Charts and
    tables scroll inside their own box, if at all."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    wide = []
    for name in PAGES:
        page.goto(f"{app_url}/{'' if name == 'home' else name}?{QUERY}&nick=ana", wait_until="domcontentloaded")
        settle(page)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if widths[0] > widths[1]:
            wide.append(f"{name}: {widths[0]} px wide in a {widths[1]} px window")
            page.screenshot(path=str(SHOTS / f"phone-{name}.png"), full_page=True)
    context.close()
    assert wide == []


def test_sidebar_settings_survive_an_interaction(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{app_url}/mlp_vs_cnn?{QUERY}", wait_until="domcontentloaded")
    settle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Lab settings").count() == 1
    sidebar.get_by_text("Presenter mode").click()  # a widget in the entrypoint: forces a full rerun
    # Right after the click the old run still reads "notRunning": wait for the rerun's URL before settling.
    page.wait_for_url(re.compile(r"presenter=true", re.IGNORECASE), timeout=60_000)
    settle(page)
    assert "presenter=true" in page.url.lower()
    assert sidebar.get_by_text("Lab settings").count() == 1 and page.locator("h1").first.inner_text() == "MLP vs CNN"
    page.close()


def test_the_classroom_load_script_plays_one_student_and_prints_its_json(app_url):
    """scripts/classroom_load.py against the real server: one student, two pages, one JSON object."""
    import json

    env = {k: v for k, v in os.environ.items() if k != "CIFAR_LAB_RUNS"}  # the server's runs are in its tmp folder
    out = subprocess.run([sys.executable, "scripts/classroom_load.py", "--url", app_url, "--students", "1",
                          "--pages", "home,mlp_vs_cnn", "--query", QUERY, "--json", "--no-lr-steps",
                          "--max-s", "240"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["students"] == 1 and result["page_loads"] == 2, out.stderr[-2000:]
    assert result["errors"] == 0 and result["runs_lost"] == 0, result["error_details"]
    assert result["p50_s"] is not None and result["p95_s"] >= result["p50_s"]
    assert result["rss_mb_before"] is not None and result["server_pid"] is not None


def test_the_classroom_load_script_mixes_browsers_and_websocket_sessions(app_url):
    """Two students over the websocket and one in Chromium, each on three pages with the LR finder stepped."""
    import json

    env = {k: v for k, v in os.environ.items() if k != "CIFAR_LAB_RUNS"}
    out = subprocess.run([sys.executable, "scripts/classroom_load.py", "--url", app_url, "--students", "3",
                          "--browsers", "1", "--pages", "home,augmentation,lr_finder", "--query", QUERY, "--json",
                          "--max-s", "240"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0 and result["page_loads"] == 9, result["error_details"]
    assert result["per_client"]["websocket"]["n"] == 6 and result["per_client"]["browser"]["n"] == 3
    assert result["actions"]["lr_finder +10 steps"]["n"] == 3  # every student, whichever its client
    assert result["fragment_reruns"] is not None
