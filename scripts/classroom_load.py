"""A class of N students against one running CIFAR Lab: real sessions, no mocks, that open the lab's pages the
way students do - the report card by URL, then the menu - step the LR finder, answer the teacher's open question
and follow the teacher where the app offers those, while the server (and, with --train-args, a training run)
carries on. Prints ONE JSON object (--json) or a short table.

Two kinds of student. --browsers K of them (default 1, the last to arrive) drive a Chromium context: their page
times include drawing the page, on this machine's cores. The others are Streamlit sessions over the front end's
websocket protocol without a browser (scripts/streamlit_session.py): their page times are the server's part.
In a real class every student's device draws its own page; N browsers on the server's own two cores measure
mostly the browsers (docs/PERFORMANCE.md). The JSON's per_client splits the figures by kind.

    python scripts/classroom_load.py --url http://127.0.0.1:8501 --students 8 --json \
        --query "dataset_kind=folder&folder=/work/cifar10&subset=2000&test_subset=1000" \
        --train-args "--preset cnn --dataset folder:/work/cifar10 --subset 5000 --test-subset 1000 --epochs 15"

--follow: the students only follow. A teacher's websocket session (unlocked with the passcode: run the server
with CIFAR_LAB_LOCAL_TEACHER=0, or every loopback student is a teacher too) plays --follow-tour - MLP vs CNN, the
experiment picker on "cnn" then "mlp", the LR finder and "+10 steps" twice, the augmentation lab, the report card -
pausing --follow-pause-s after each change. The students open the report card by URL and click nothing. Each
change is timed at its publication (class_presenting's `at` in the runs folder's lab.db; without --runs-dir, at the
end of the teacher's run); a student's follow delay runs from there to the first settled run of theirs that shows
the same page and the same shared query string (websocket: the session's record of its runs; browser: the URL of a
settled page). One not shown within --follow-bound-s, or before the teacher's next change, is missed: an error.

    CIFAR_LAB_RUNS=runs CIFAR_LAB_LOCAL_TEACHER=0 streamlit run app.py --server.address 127.0.0.1 &
    python scripts/classroom_load.py --url http://127.0.0.1:8501 --students 10 --follow --runs-dir runs --json \
        --query "dataset_kind=folder&folder=/work/cifar10&subset=2000&test_subset=1000&device=cpu"

Loopback only. Every wait has a bound (--page-timeout-s per page, --max-s for the whole test); the browser and
any training it started are closed before it exits. The server's memory is read from /proc (the process that
listens on --url's port, or --server-pid): before the students come, with all of them connected, at its peak
and after they left. runs_lost counts runs of --runs-dir that were queued or running at any look and ended
failed or vanished (a run the load made its supervisor give up on), and runs of --train-args that did not
complete. With --follow, training_cover is the share of the teacher's tour the run of --train-args trained
through (1.0: "with a run training" held for the whole tour). See docs/PERFORMANCE.md ("Classroom load").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAGES = ("home", "mlp_vs_cnn", "augmentation", "lr_finder")
ACTIVE = ("queued", "running")
BUSY = '[data-testid="stSkeleton"], [data-testid="stSpinner"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
FRESH = '[data-testid="stElementContainer"]:not([data-stale="true"])'
LAST_ELEMENT = re.compile(r"^Try this")  # every concept page ends with ui.layout.try_this
CLASS_BOXES = ".st-key-class_question, .st-key-class_reveal"  # an open question ends the page (docs/CLASSROOM.md)
# Class-mode widgets, by the stable labels of docs/CLASSROOM.md; a page without them is counted in
# features_missing, not as an error.
FOLLOW_JUMP = ".st-key-follow_jump button"
QUESTION_BOX, ANSWER_BUTTON = ".st-key-class_question", ".st-key-q_submit button"
ASK, OPEN_QUESTION = "Ask the class: predict, then reveal", ".st-key-q_open button"
REVEAL, CLOSE_REVEALED = ".st-key-q_reveal button", ".st-key-q_close_revealed button"
LR_STEP_BUTTON = "+10 steps"
# --follow: the teacher's tour - a page (menu click), key=option (the run panel's experiment picker), +button
DEFAULT_FOLLOW_TOUR = "mlp_vs_cnn,nets_preset=cnn,nets_preset=mlp,lr_finder,+10 steps,+10 steps,augmentation,home"


# --- the summary: plain numbers in, one dict out (unit-tested) ----------------------------------------------

def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default); None if empty."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def lost_runs(looks: Sequence[Mapping[str, str]]) -> list[str]:
    """Runs that were active (queued/running) at some look and are failed or gone at the last one, plus runs
    seen earlier that vanished. looks: {run id: status} snapshots in time order."""
    if not looks:
        return []
    last = looks[-1]
    seen = {rid for look in looks[:-1] for rid in look}
    was_active = {rid for look in looks for rid, status in look.items() if status in ACTIVE}
    return sorted(rid for rid in seen | was_active if rid not in last or (rid in was_active and last[rid] == "failed"))


def _project() -> None:
    """The project's own modules importable (once: view() runs at every change a browser student shows)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def view(page: str, query: str | Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What a page shows, as a follower compares it: the page's name ("home" for the default page; a script path
    such as pages/lr_finder.py is named by its file) and the query string without the keys that are one browser's
    own (core.classroom.follow.shared_state), as sorted pairs."""
    from urllib.parse import parse_qsl

    _project()
    from core.classroom.follow import shared_state

    name = page.rsplit("/", 1)[-1].removesuffix(".py") or "home"
    pairs = dict(parse_qsl(query, keep_blank_values=True)) if isinstance(query, str) else dict(query)
    return name, shared_state(pairs)


def arrival(shown: Sequence[Sequence[Any]], at: float, want: Sequence[Any], until: float) -> float | None:
    """When a student first showed `want` (page, state) in [at, until]: `at` itself if the page already showed it,
    else the first change to it; None if it never did. shown: (time, page, state) in time order, each what the
    page shows from that time on."""
    want = tuple(want)
    before = [tuple(v[1:]) for v in shown if v[0] <= at]
    if before and before[-1] == want:
        return at
    return next((v[0] for v in shown if at < v[0] <= until and tuple(v[1:]) == want), None)


def _frozen(state: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dict(state).items()))


def follow_delays(changes: Sequence[Mapping[str, Any]], timelines: Mapping[Any, Mapping[str, Any]],
                  bound_s: float) -> list[dict[str, Any]]:
    """Each student's delay for each change of the teacher's: from the change ({"at", "page", "state", "what"}, in
    time order) to the moment the student's page showed that page and state, within bound_s and before the
    teacher's next change (else seconds is None: missed). timelines: {student: {"client", "shown"}}, shown as for
    `arrival` (states as pairs or dicts)."""
    out = []
    for k, change in enumerate(changes):
        at = float(change["at"])
        until = at + bound_s
        if k + 1 < len(changes):
            until = min(until, float(changes[k + 1]["at"]))
        want = (change["page"], _frozen(change["state"]))
        for student, line in sorted(timelines.items()):
            shown = [(float(t), page, _frozen(state)) for t, page, state in line["shown"]]
            t = arrival(shown, at, want, until)
            out.append({"student": student, "client": line.get("client", "websocket"), "change": k,
                        "what": change.get("what", ""), "seconds": None if t is None else round(t - at, 3)})
    return out


def _follow_summary(follows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The follow figures (delays per kind of student and per change; the changes missed) and one error line per
    change a student never showed."""
    got = [f for f in follows if f["seconds"] is not None]
    missed = [f for f in follows if f["seconds"] is None]
    per_client: dict[str, list[float]] = {}
    per_change: dict[str, list[float]] = {}
    for f in got:
        per_client.setdefault(str(f["client"]), []).append(float(f["seconds"]))
        per_change.setdefault(f"{f['change']}: {f['what']}", []).append(float(f["seconds"]))
    overall = _stats(f["seconds"] for f in got)
    out = {"follow_changes": len({f["change"] for f in follows}), "follow_delays": overall["n"],
           "follow_p50_s": overall["p50_s"], "follow_p95_s": overall["p95_s"], "follow_max_s": overall["max_s"],
           "changes_missed": len(missed), "follow_per_client": {k: _stats(v) for k, v in per_client.items()},
           "follow_per_change": {k: _stats(v) for k, v in per_change.items()}}
    lines = [f"student {f['student']} ({f['client']}) never showed the teacher's change {f['change']} "
             f"({f['what']}) within the bound" for f in missed]
    return out, lines


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _stats(times: Iterable[float]) -> dict[str, Any]:
    xs = [float(t) for t in times]
    r = _r
    return {"n": len(xs), "p50_s": r(percentile(xs, 50)), "p95_s": r(percentile(xs, 95)),
            "max_s": r(max(xs) if xs else None)}


def summarize(loads: Sequence[Mapping[str, Any]], *, students: int, errors: Sequence[str] = (),
              actions: Sequence[Mapping[str, Any]] = (), looks: Sequence[Mapping[str, str]] = (),
              train_status: str | None = None, rss_mb: Mapping[str, float | None] | None = None,
              extra: Mapping[str, Any] | None = None,
              follows: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The test's JSON object. loads: {"page", "seconds", "student"} per page render that finished; errors:
    one line each (timeouts, exceptions on a page); actions: {"what", "seconds"} (LR steps, answers, follows);
    looks: run-library snapshots; train_status: the final status of the run --train-args started (None: none);
    rss_mb: before / loaded / peak / after (MB); follows (--follow): `follow_delays`' records - a change a
    student never showed counts in changes_missed and as an error."""
    rss = dict(rss_mb or {})
    follow_out, follow_errors = _follow_summary(follows) if follows is not None else ({}, [])
    errors = [*errors, *follow_errors]
    lost = lost_runs(looks)
    if train_status is not None and train_status != "completed":
        lost.append(f"trained run ({train_status})")
    per_page: dict[str, list[float]] = {}
    per_client: dict[str, list[float]] = {}
    for load in loads:
        per_page.setdefault(str(load["page"]), []).append(float(load["seconds"]))
        per_client.setdefault(str(load.get("client", "browser")), []).append(float(load["seconds"]))
    kinds: dict[str, list[float]] = {}
    for a in actions:
        kinds.setdefault(str(a["what"]), []).append(float(a["seconds"]))
    overall = _stats(load["seconds"] for load in loads)
    before, loaded = rss.get("before"), rss.get("loaded")
    per_student = None if before is None or loaded is None or students <= 0 else round((loaded - before) / students, 1)
    out: dict[str, Any] = {
        "students": students, "page_loads": overall["n"], "p50_s": overall["p50_s"], "p95_s": overall["p95_s"],
        "max_s": overall["max_s"], "errors": len(errors), "runs_lost": len(lost),
        "rss_mb_before": rss.get("before"), "rss_mb_loaded": loaded, "rss_mb_peak": rss.get("peak"),
        "rss_mb_after": rss.get("after"), "rss_mb_per_student": per_student,
        "per_page": {k: _stats(v) for k, v in per_page.items()},
        "per_client": {k: _stats(v) for k, v in per_client.items()},
        "actions": {k: _stats(v) for k, v in kinds.items()},
        "error_details": list(errors)[:20], "lost_runs": lost, "train_status": train_status, **follow_out,
    }
    out.update(extra or {})
    return out


# --- the server and the machine ------------------------------------------------------------------------------

def listening_pid(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1/0.0.0.0:port, from /proc (Linux; our own processes)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class PeakRss(threading.Thread):
    """Samples a process's RSS twice a second until stopped; keeps the peak."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt = pid, rss_mb(pid), threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.5):
            now = rss_mb(self.pid)
            if now is not None:
                self.peak = max(self.peak or 0.0, now)

    def stop(self) -> float | None:
        self._halt.set()
        self.join(timeout=2)
        return self.peak


def cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used, from /proc/<pid>/stat."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, IndexError, ValueError):
        return None


def children_cpu_s() -> float:
    """CPU seconds of this script's finished children (the browser and its driver, once closed)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    return {"cpu": model, "cores": os.cpu_count(), "loadavg": [round(v, 2) for v in os.getloadavg()]}


def library_look(runs_dir: str | None) -> dict[str, str]:
    """{run id: status} of the run library (read-only; no recovery from here: the server does that); {} when
    neither --runs-dir nor $CIFAR_LAB_RUNS names one (the runs are then not checked)."""
    runs_dir = runs_dir or os.environ.get("CIFAR_LAB_RUNS")
    if not runs_dir:
        return {}
    sys.path.insert(0, str(ROOT))
    from core.runs.library import open_library

    try:
        lib = open_library(runs_dir, recover=False)
        return {r.id: r.status for r in lib.list_runs(limit=1000)}
    except Exception as e:  # noqa: BLE001 - a missing library is reported, the test goes on
        return {"_error": f"{type(e).__name__}: {e}"}


# --- one student ----------------------------------------------------------------------------------------------

async def settle(page, timeout_s: float, previous_title: str | None = None) -> str:
    """Wait until the page shows its own title (a new one after a menu click), no skeleton or spinner is left,
    and the page's run has finished: the app is idle, or - while a run trains, a live panel's fragment reruns
    every second and the app is seldom idle - the page's last element ("Try this") is drawn and not stale.
    Returns the title. Raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    h1 = page.locator('[data-testid="stMain"] h1').first
    main = page.locator('[data-testid="stMain"]')
    last = main.locator(FRESH, has_text=LAST_ELEMENT).or_(main.locator(CLASS_BOXES))
    await h1.wait_for(timeout=timeout_s * 1000)
    while True:
        title = (await h1.inner_text()).strip()
        if title and title != previous_title and not await page.locator(BUSY).count() \
                and (await page.locator(IDLE).count()
                     or (await last.count() and not await main.locator('[data-stale="true"]').count())):
            return title
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled after {timeout_s:.0f} s (title {title!r})")
        await page.wait_for_timeout(100)


async def showing(page) -> bool:
    """Whether the page is settled now (as `settle` waits for): a title, no skeleton or spinner, and the app idle or
    its last element drawn and nothing stale."""
    main = page.locator('[data-testid="stMain"]')
    if not await main.locator("h1").count() or await page.locator(BUSY).count():
        return False
    if await page.locator(IDLE).count():
        return True
    last = main.locator(FRESH, has_text=LAST_ELEMENT).or_(main.locator(CLASS_BOXES))
    return bool(await last.count()) and not await main.locator('[data-stale="true"]').count()


async def page_problems(page) -> list[str]:
    out = []
    exc = page.locator('[data-testid="stException"]')
    if await exc.count():
        out.append("exception: " + (await exc.first.inner_text())[:200].replace("\n", " "))
    if await page.get_by_text("Traceback (most recent call last)").count():
        out.append("traceback on the page")
    return out


async def click_and_time(page, button, timeout_s: float) -> float:
    t0 = time.monotonic()
    await button.click()
    await page.wait_for_timeout(300)  # the click's rerun starts; then wait for it to end
    deadline = t0 + timeout_s
    while await page.locator('[data-testid="stApp"][data-test-script-state="running"]').count() \
            or await page.locator(BUSY).count():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the click did not finish in {timeout_s:.0f} s")
        await page.wait_for_timeout(100)
    return time.monotonic() - t0


class BrowserStudent:
    """A student in a Chromium context: the page is drawn, on this machine's cores."""

    kind, fragment_reruns = "browser", None

    def __init__(self, i: int, browser, args: argparse.Namespace) -> None:
        self.i, self.browser, self.args, self.title = i, browser, args, None

    async def start(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = await self.context.new_page()

    async def open(self, name: str, first: bool) -> list[str]:
        """The first page by URL, the others through the menu; returns the page's problems."""
        page, timeout_s = self.page, self.args.page_timeout_s
        link = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{name}"]')
        if first or not await link.count():
            path = "" if name == "home" else name
            await page.goto(f"{self.args.url}/{path}?{self.args.query}&nick=student{self.i}",
                            wait_until="domcontentloaded", timeout=timeout_s * 1000)
            self.title = await settle(page, timeout_s)
        else:
            await link.first.click()
            self.title = await settle(page, timeout_s, previous_title=self.title)
        return await page_problems(page)

    async def step_lr(self) -> float:
        step = self.page.get_by_role("button", name=LR_STEP_BUTTON)  # not drawn: a timeout, an error
        return await click_and_time(self.page, step.first, self.args.page_timeout_s)

    async def is_teacher(self) -> bool:  # a loopback browser is the teacher unless CIFAR_LAB_LOCAL_TEACHER=0
        return bool(await self.page.locator('[data-testid="stSidebar"]').get_by_text("You are the teacher").count())

    async def answer(self, name: str) -> bool:
        """Answer the open question (the choice picked by the student's number); False: no answer box here."""
        box, timeout_s = self.page.locator('[data-testid="stMain"]').locator(QUESTION_BOX), self.args.page_timeout_s
        if name == "mlp_vs_cnn" and not await box.count():
            with contextlib.suppress(Exception):  # the page can settle a moment before its question box is drawn
                await box.first.locator(ANSWER_BUTTON).wait_for(timeout=5000)
        if not (await box.count() and await box.locator(ANSWER_BUTTON).count()):
            return False
        # the choices: every label in the radio but the widget's own ("Your prediction")
        options = box.locator('[data-testid="stRadio"] label:not([data-testid="stWidgetLabel"])')
        n = await options.count()
        if not n:
            return False
        done = box.get_by_text("Your answer", exact=False).first
        for attempt in range(3):  # a radio click that lands mid-rerun can be lost: then submit says "pick one"
            await options.nth(self.i % n).click()
            await box.locator(ANSWER_BUTTON).click(timeout=timeout_s * 1000)
            try:
                await done.wait_for(timeout=timeout_s * 1000 / 3)
                break
            except Exception:
                if attempt == 2:
                    raise
        return True

    async def follow(self) -> float | None:
        """Press the banner's jump to the teacher's page: its seconds, or None where the banner offers none."""
        jump = self.page.locator('[data-testid="stMain"]').locator(FOLLOW_JUMP)
        if not await jump.count():
            with contextlib.suppress(Exception):  # the banner polls every 2 s: give it one round
                await jump.first.wait_for(timeout=5000)
        if not await jump.count():
            return None
        t0 = time.monotonic()
        await jump.first.click()
        self.title = await settle(self.page, self.args.page_timeout_s, previous_title=self.title)
        return time.monotonic() - t0

    async def watch(self, stop: asyncio.Event, shown: list) -> None:
        """Until stop: (time.time(), page, state) each time the settled page's URL (path and query string) differs
        from the last one recorded - what this student's screen shows, for --follow."""
        from urllib.parse import urlsplit

        while not stop.is_set():
            with contextlib.suppress(Exception):  # a page mid-navigation: look again
                if await showing(self.page):
                    url = urlsplit(self.page.url)
                    now = view(url.path.rsplit("/", 1)[-1], url.query)
                    if not shown or tuple(shown[-1][1:]) != now:
                        shown.append((time.time(), *now))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)

    async def close(self) -> None:
        await self.context.close()


class SocketStudent:
    """A student without a browser: a real Streamlit session over the front end's websocket protocol
    (scripts/streamlit_session.py), the same widgets found by their keys (docs/CLASSROOM.md). A page's time is the
    server's part of it: from the request to the end of the script run, the connection included on the first
    page."""

    kind = "websocket"

    def __init__(self, i: int, args: argparse.Namespace) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from streamlit_session import StreamlitSession

        self.i, self.args = i, args
        self.s = StreamlitSession(args.url, timeout_s=args.page_timeout_s)

    @property
    def fragment_reruns(self) -> int:
        return self.s.fragment_reruns

    async def start(self) -> None:
        pass  # connecting is part of the first page's time

    async def open(self, name: str, first: bool) -> list[str]:
        if first:
            await self.s.connect()
            run = await self.s.open(page=name, query=f"{self.args.query}&nick=student{self.i}")
        else:
            run = await self.s.open(page=name)
        return run.exceptions

    async def step_lr(self) -> float:
        return (await self.s.click(label=LR_STEP_BUTTON)).seconds  # LookupError (an error) if it is not drawn

    async def is_teacher(self) -> bool:
        return any("You are the teacher" in t for t in self.s.texts())

    async def answer(self, name: str) -> bool:
        s = self.s
        radio = s.find("radio", inside="class_question")
        if radio is None or s.find("button", key="q_submit") is None:
            return False
        await s.choose(radio, radio.proto.options[self.i % len(radio.proto.options)])
        await s.click(key="q_submit")
        if not any(t.startswith("Your answer") for t in s.texts(inside="class_question")):
            raise RuntimeError("the answer was not acknowledged")
        return True

    async def follow(self) -> float | None:
        s = self.s
        for _ in range(50):  # the banner polls every 2 s: give it a few rounds to draw the jump
            if s.find("button", key="follow_jump") is not None:
                break
            await asyncio.sleep(0.1)
        if s.find("button", key="follow_jump") is None:
            return None
        before = s.page
        run = await s.click(key="follow_jump")
        if s.page == before:
            raise RuntimeError(f"following the teacher stayed on {before!r}")
        return run.seconds

    async def watch(self, stop: asyncio.Event, shown: list) -> None:
        """Until stop: what the page shows, from the session's own record (its runs, the server's included)."""
        await stop.wait()
        shown.extend((t, *view(page, query)) for t, page, query in self.s.shown)

    def drawn(self) -> str:
        """What the page shows, for an error line."""
        return f"page {self.s.page!r}: {[f'{el.kind}:{el.key or el.text[:40]}' for el in self.s.find_all()][:40]}"

    async def close(self) -> None:
        await self.s.close()


async def class_actions(client, name: str, rec: dict[str, Any], last: bool) -> None:
    """A student answers the open question where the page asks one, and on the last page follows the teacher
    (the banner's jump), where the app offers them (docs/CLASSROOM.md). client: a BrowserStudent or a
    SocketStudent."""
    if await client.is_teacher():
        rec["teachers"].add(client.i)
    t0 = time.monotonic()
    if await client.answer(name):
        rec["actions"].append({"what": "answer", "seconds": time.monotonic() - t0})
        rec["answers"] += 1
    elif name == "mlp_vs_cnn" and rec.get("question_opened") and client.i not in rec["teachers"]:
        shown = f" ({client.drawn()})" if hasattr(client, "drawn") else ""
        raise RuntimeError(f"the teacher's question has no answer box here{shown}")
    elif name == "mlp_vs_cnn":
        rec["missing"].add("question")
    if not last:
        return
    seconds = await client.follow()
    if seconds is None:
        rec["missing"].add("follow")
    else:
        rec["actions"].append({"what": "follow", "seconds": seconds})
        rec["follows"] += 1


def teacher_passcode(args: argparse.Namespace) -> str | None:
    """--passcode, else $CIFAR_LAB_PASSCODE, else the one the server keeps in its runs folder."""
    if args.passcode or os.environ.get("CIFAR_LAB_PASSCODE"):
        return args.passcode or os.environ.get("CIFAR_LAB_PASSCODE")
    saved = Path(args.runs_dir or os.environ.get("CIFAR_LAB_RUNS") or "/nonexistent") / "teacher-passcode"
    return saved.read_text().strip() if saved.is_file() else None


async def teacher(browser, args: argparse.Namespace, rec: dict[str, Any]) -> None:
    """The teacher's browser: unlocks with the passcode, visits every page (the server warms up: imports, the
    dataset), then stays on the question page with the question open - students see "The teacher is on ..."
    and the question - until the class is done; then reveals the tally and closes the question."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    try:
        title = None
        await page.goto(f"{args.url}/?{args.query}", wait_until="domcontentloaded",
                        timeout=args.page_timeout_s * 1000)
        title = await settle(page, args.page_timeout_s)
        code = page.get_by_role("textbox", name="Teacher passcode")
        passcode = teacher_passcode(args)  # read now: the server makes its own at its first session
        if passcode and await code.count():
            await code.fill(passcode)
            await code.press("Enter")
            await page.get_by_text("You are the teacher").first.wait_for(timeout=args.page_timeout_s * 1000)
        ask_on = "mlp_vs_cnn" if "mlp_vs_cnn" in args.pages else None
        for name in [p for p in args.pages if p != "home" and p != ask_on] + ([ask_on] if ask_on else []):
            link = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{name}"]')
            await link.first.click()
            title = await settle(page, args.page_timeout_s, previous_title=title)
        if ask_on and await page.get_by_text(ASK).count():
            await page.get_by_text(ASK).first.click()
            await page.locator(OPEN_QUESTION).first.click()
            await page.locator(QUESTION_BOX).first.wait_for(timeout=args.page_timeout_s * 1000)
            rec["question_opened"] = True
        rec["warm"].set()
        await rec["all_done"].wait()
        if rec.get("question_opened") and await page.locator(REVEAL).count():
            await page.locator(REVEAL).first.click()
            await page.locator(CLOSE_REVEALED).first.wait_for(timeout=args.page_timeout_s * 1000)
            tally = (await page.locator(".st-key-class_reveal").first.inner_text())[:300]
            rec["tally"] = " ".join(tally.split())
            await page.locator(CLOSE_REVEALED).first.click()
            await page.wait_for_timeout(1500)
    except Exception as e:  # noqa: BLE001 - the class goes on without the teacher's part
        rec["errors"].append(f"teacher: {type(e).__name__}: {str(e)[:200]}")
        rec["warm"].set()
    finally:
        await context.close()


async def student(client, args: argparse.Namespace, rec: dict[str, Any]) -> None:
    """One student's class, whichever the client: the pages of --pages (--rounds times), the LR finder stepped,
    the question answered, the teacher followed on the last page, --dwell-s on each page."""
    i = client.i
    await client.start()
    try:
        await asyncio.sleep(max(0, i) * args.stagger_s)
        tour = list(args.pages) * args.rounds
        for n, name in enumerate(tour):
            t0 = time.monotonic()
            try:
                problems = await client.open(name, first=n == 0)
                rec["loads"].append({"page": name, "seconds": time.monotonic() - t0, "student": i,
                                     "client": client.kind})
                rec["errors"] += [f"student {i} {name}: {p}" for p in problems]
                if name == "lr_finder" and args.lr_steps:
                    rec["actions"].append({"what": "lr_finder +10 steps", "seconds": await client.step_lr()})
                if args.class_actions:
                    await class_actions(client, name, rec, last=n == len(tour) - 1)
                await asyncio.sleep(args.dwell_s)  # reading the page; its live panels poll meanwhile
            except Exception as e:  # noqa: BLE001 - one line per failure; the student goes on
                rec["errors"].append(f"student {i} {name}: {type(e).__name__}: {str(e)[:200]}")
        rec["done"] += 1
        await rec["all_done"].wait()  # hold the session until every student is through (memory: "loaded")
    finally:
        if client.fragment_reruns is not None:
            rec["fragment_reruns"] = rec.get("fragment_reruns", 0) + client.fragment_reruns
        await client.close()


def chromium(nice: int) -> str:
    """Debian's Chromium; with nice > 0 a wrapper that starts it at that niceness, so the browsers - which in a
    real class run on the students' own devices - yield the shared CPU to the server they are measuring."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if nice <= 0:
        return path
    import tempfile

    wrapper = Path(tempfile.gettempdir()) / f"classroom-load-chromium-nice{nice}.sh"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {nice} {shlex.quote(path)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


async def run_class(args: argparse.Namespace, pid: int | None, on_warm=None) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    rec: dict[str, Any] = {"loads": [], "errors": [], "actions": [], "answers": 0, "follows": 0, "missing": set(),
                           "teachers": set(), "done": 0, "all_done": asyncio.Event(), "warm": asyncio.Event()}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium(args.browser_nice),
                                          args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"])
        lead = None
        if args.warmup:  # the teacher's browser, before class: the dataset decoded, the imports done
            t0 = time.monotonic()
            lead = asyncio.create_task(teacher(browser, args, rec))
            await asyncio.wait_for(rec["warm"].wait(), timeout=args.max_s)
            rec["warmup_s"] = round(time.monotonic() - t0, 1)
            rec["rss_warm"] = rss_mb(pid)
        if on_warm is not None and on_warm():
            await asyncio.sleep(3)  # the run is in the library and training before the students come
        # the browsers arrive last, when the rest of the class is already on the server
        clients = [BrowserStudent(i, browser, args) if i >= args.students - args.browsers else SocketStudent(i, args)
                   for i in range(args.students)]
        tasks = [asyncio.create_task(student(c, args, rec)) for c in clients]
        deadline = time.monotonic() + args.max_s
        while rec["done"] + sum(t.done() for t in tasks) < args.students and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            if all(t.done() for t in tasks):
                break
        rec["rss_loaded"] = rss_mb(pid)  # every student still connected
        rec["all_done"].set()
        done, pending = await asyncio.wait(tasks + ([lead] if lead else []), timeout=60)
        for t in pending:
            t.cancel()
            rec["errors"].append("a student did not finish within --max-s")
        for t in done:
            if t.exception() is not None:
                rec["errors"].append(f"student task: {type(t.exception()).__name__}: {t.exception()}")
        await browser.close()
    return rec


# --- --follow: the students follow a scripted teacher, no clicks ---------------------------------------------

def tour_steps(spec: str) -> list[tuple[str, str, str]]:
    """--follow-tour's comma-separated steps: "page" (a menu click), "key=option" (pick an option of the widget
    with this key), "button:label" or a label that starts with "+" such as the LR finder's "+10 steps" (press the
    button with this label): (kind, what, value) each."""
    steps = []
    for item in (x.strip() for x in spec.split(",")):
        if item.startswith(("+", "button:")):
            steps.append(("click", item.removeprefix("button:").strip(), ""))
        elif "=" in item:
            key, _, value = item.partition("=")
            steps.append(("pick", key.strip(), value.strip()))
        elif item:
            steps.append(("page", item, ""))
    return steps


def pick_option(options: Sequence[str], value: str) -> str:
    """The option a picker shows for `value`: the value itself, else the label of the preset it names (the run
    panel's picker shows "<title>  (report: ...)")."""
    if value in options:
        return value
    _project()
    from core.lessons.presets import get_preset

    title = get_preset(value).title
    found = [o for o in options if o == title or o.startswith(title + "  ")]
    if not found:
        raise LookupError(f"no option {value!r} in {list(options)}")
    return found[0]


def training_cover(runs_dir: str | None, start: float | None, end: float | None) -> float | None:
    """The share of the teacher's tour [start, end] (unix s) during which a run of --train-args (started_by cli)
    was training, from the run library: 1.0 means the whole tour ran "with a run training"; None when unknown."""
    runs_dir = runs_dir or os.environ.get("CIFAR_LAB_RUNS")
    if not runs_dir or start is None or end is None or end <= start:
        return None
    _project()
    from core.runs.library import open_library

    covered = 0.0
    for r in open_library(runs_dir, recover=False).list_runs(limit=1000):
        if r.started_by == "cli" and r.started is not None:
            covered += max(0.0, min(end, r.finished or end) - max(start, r.started))
    return round(min(1.0, covered / (end - start)), 2)


def published(runs_dir: str | None) -> dict[str, Any] | None:
    """What the teacher's page last published for the followers (class_presenting in the run library's settings
    table, core.classroom.follow): {"at", "page", "state"}; None without a runs folder or a record."""
    runs_dir = runs_dir or os.environ.get("CIFAR_LAB_RUNS")
    if not runs_dir:
        return None
    _project()
    from core.classroom.follow import presenting
    from core.runs.library import open_library

    p = presenting(open_library(runs_dir, recover=False))
    return None if p is None else {"at": p.at, "page": view(p.page, p.state_dict())[0], "state": p.state_dict()}


class FollowTeacher:
    """The teacher as a websocket session (scripts/streamlit_session.py): unlocks with the passcode (the server
    runs with CIFAR_LAB_LOCAL_TEACHER=0, or every loopback student would be a teacher too), then plays the tour.
    Each change is timed at its publication in the run library (class_presenting's `at`), else at the end of the
    teacher's run."""

    def __init__(self, args: argparse.Namespace) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from streamlit_session import StreamlitSession

        self.args, self.s = args, StreamlitSession(args.url, timeout_s=args.page_timeout_s)

    async def start(self, pages: Sequence[str]) -> None:
        """Connect, unlock, and visit each page once (the server warms up: imports, the dataset), ending home."""
        s = self.s
        await s.connect()
        await s.open(page="home", query=self.args.query)
        box, passcode = s.find("text_input", key="teacher_code"), teacher_passcode(self.args)
        if box is not None and passcode:
            await s.fill(box, passcode)
        if not any("You are the teacher" in t for t in s.texts()):
            raise RuntimeError("the teacher's session is not the teacher (no passcode? see --passcode)")
        for name in [*dict.fromkeys(p for p in pages if p != "home"), "home"]:
            await s.open(page=name)

    async def step(self, kind: str, what: str, value: str) -> float:
        s = self.s
        t0 = time.monotonic()
        if kind == "page":
            await s.open(page=what)
        elif kind == "click":
            await s.click(label=what)
        else:
            widget = s.find("selectbox", key=what) or s.find("radio", key=what)
            if widget is None:
                raise LookupError(f"no picker {what!r} on {s.page or 'home'!r}")
            await s.choose(widget, pick_option(list(widget.proto.options), value))
        return time.monotonic() - t0

    async def change(self, kind: str, what: str, value: str, rec: dict[str, Any]) -> None:
        """One step of the tour, recorded as a change the class must follow (or an error where none was seen)."""
        label = what if kind != "pick" else f"{what}={value}"
        before = published(self.args.runs_dir)
        seconds = await self.step(kind, what, value)
        ended = time.time()
        rec["actions"].append({"what": f"teacher {kind}", "seconds": seconds})
        page, state = view(self.s.page, self.s.query)
        after = published(self.args.runs_dir)
        if after is None and before is None and not (self.args.runs_dir or os.environ.get("CIFAR_LAB_RUNS")):
            rec["changes"].append({"what": label, "at": ended, "page": page, "state": dict(state),
                                   "clock": "teacher run end"})
        elif after is None or (before is not None and after["at"] == before["at"]):
            rec["errors"].append(f"teacher: {label} published nothing (page {page!r}, state {dict(state)})")
        else:
            if (after["page"], _frozen(after["state"])) != (page, state):
                rec["errors"].append(f"teacher: {label} shows {page} {dict(state)}, published {after}")
            rec["changes"].append({"what": label, **after, "clock": "published"})

    async def close(self) -> None:
        await self.s.close()


async def follower(client, args: argparse.Namespace, rec: dict[str, Any], stop: asyncio.Event) -> None:
    """A student who opens the report card by URL and then only follows: no clicks until the class ends."""
    i = client.i
    await client.start()
    shown: list = []
    try:
        await asyncio.sleep(max(0, i) * args.stagger_s)
        t0 = time.monotonic()
        problems = await client.open("home", first=True)
        rec["loads"].append({"page": "home", "seconds": time.monotonic() - t0, "student": i, "client": client.kind})
        rec["errors"] += [f"student {i} home: {p}" for p in problems]
        if await client.is_teacher():
            rec["teachers"].add(i)
            rec["errors"].append(f"student {i} is a teacher (a loopback student: start the server with "
                                 "CIFAR_LAB_LOCAL_TEACHER=0)")
        rec["done"] += 1
        await client.watch(stop, shown)
    except Exception as e:  # noqa: BLE001 - one line; the class goes on
        rec["errors"].append(f"student {i}: {type(e).__name__}: {str(e)[:200]}")
        rec["done"] += 1
    finally:
        rec["timelines"][i] = {"client": client.kind, "shown": shown}
        if client.fragment_reruns is not None:
            rec["fragment_reruns"] = rec.get("fragment_reruns", 0) + client.fragment_reruns
        await client.close()


async def teach(teacher: FollowTeacher, steps, args: argparse.Namespace, rec: dict[str, Any]) -> None:
    """The tour, a pause after each change (longer than a follower's expected delay)."""
    for kind, what, value in steps:
        try:
            await teacher.change(kind, what, value, rec)
        except Exception as e:  # noqa: BLE001 - the tour goes on
            rec["errors"].append(f"teacher: {what}: {type(e).__name__}: {str(e)[:200]}")
        await asyncio.sleep(args.follow_pause_s)
    await asyncio.sleep(max(0.0, args.follow_bound_s - args.follow_pause_s))


async def run_follow(args: argparse.Namespace, pid: int | None, on_warm=None) -> dict[str, Any]:
    rec: dict[str, Any] = {"loads": [], "errors": [], "actions": [], "answers": 0, "follows": 0, "missing": set(),
                           "teachers": set(), "done": 0, "changes": [], "timelines": {}}
    steps = tour_steps(args.follow_tour) * args.rounds
    stop, teacher, pw, browser, tasks = asyncio.Event(), FollowTeacher(args), None, None, []
    try:
        t0 = time.monotonic()
        await asyncio.wait_for(teacher.start([w for k, w, _ in steps if k == "page"]), args.max_s)
        rec["warmup_s"], rec["rss_warm"] = round(time.monotonic() - t0, 1), rss_mb(pid)
        if on_warm is not None and on_warm():
            await asyncio.sleep(3)  # the run is in the library and training before the students come
        if args.browsers:
            from playwright.async_api import async_playwright

            pw = await async_playwright().start()
            browser = await pw.chromium.launch(executable_path=chromium(args.browser_nice),
                                               args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"])
        clients = [BrowserStudent(i, browser, args) if i >= args.students - args.browsers else SocketStudent(i, args)
                   for i in range(args.students)]
        tasks = [asyncio.create_task(follower(c, args, rec, stop)) for c in clients]
        deadline = time.monotonic() + args.max_s
        while rec["done"] < args.students and time.monotonic() < deadline and not all(t.done() for t in tasks):
            await asyncio.sleep(0.25)
        rec["rss_loaded"] = rss_mb(pid)
        rec["tour"] = [time.time(), None]
        await asyncio.wait_for(teach(teacher, steps, args, rec), max(1.0, deadline - time.monotonic()))
        rec["tour"][1] = time.time()
    except Exception as e:  # noqa: BLE001 - reported; the students are closed below
        rec["errors"].append(f"class: {type(e).__name__}: {str(e)[:200]}")
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=60) if tasks else (set(), set())
        for t in pending:
            t.cancel()
            rec["errors"].append("a student did not finish within 60 s of the end")
        await teacher.close()
        if browser is not None:
            await browser.close()
        if pw is not None:
            await pw.stop()
    return rec


# --- main -------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the running app, on a loopback address")
    ap.add_argument("--students", type=int, default=8)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--browsers", type=int, default=1,
                    help="how many of the students drive a Chromium context, the last to arrive (default 1; "
                         "--browsers N: all of them); "
                         "the others are Streamlit sessions over the websocket without a browser "
                         "(scripts/streamlit_session.py), whose page times are the server's part alone. The "
                         "teacher is always a browser.")
    ap.add_argument("--pages", default=",".join(DEFAULT_PAGES), help="pages each student opens, in order")
    ap.add_argument("--query", default="", help="lab settings as a query string for the first page")
    ap.add_argument("--runs-dir", default=None, help="the server's run library (default $CIFAR_LAB_RUNS; neither: "
                                                     "runs are not checked)")
    ap.add_argument("--server-pid", type=int, default=None, help="default: the process listening on --url's port")
    ap.add_argument("--train-args", default="", help="start `python -m core train --runs-dir RUNS ARGS` first")
    ap.add_argument("--no-lr-steps", dest="lr_steps", action="store_false", help="do not step the LR finder")
    ap.add_argument("--no-class-actions", dest="class_actions", action="store_false",
                    help="do not answer questions or follow the teacher")
    ap.add_argument("--passcode", default=None, help="the teacher passcode (default $CIFAR_LAB_PASSCODE, else the "
                                                     "teacher-passcode file in --runs-dir)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="no teacher visit of every page before the students (then the first loads include the "
                         "server's cold start: imports, decoding the dataset)")
    ap.add_argument("--browser-nice", type=int, default=0,
                    help="run the browsers at this niceness (19: they yield the CPU to the server, as students' own "
                         "devices would not share it)")
    ap.add_argument("--dwell-s", type=float, default=2.0,
                    help="seconds a student reads each page before the next (its live panels poll meanwhile)")
    ap.add_argument("--rounds", type=int, default=1, help="each student tours --pages this many times (the later "
                                                          "rounds through the menu)")
    ap.add_argument("--stagger-s", type=float, default=0.5, help="seconds between students' arrivals")
    ap.add_argument("--follow", action="store_true",
                    help="the students only follow (no clicks) while a teacher's websocket session plays "
                         "--follow-tour; reports each student's delay until their page shows the teacher's page and "
                         "state (the server must run with CIFAR_LAB_LOCAL_TEACHER=0; the teacher uses the passcode)")
    ap.add_argument("--follow-tour", default=DEFAULT_FOLLOW_TOUR,
                    help="the teacher's changes: a page (menu click), key=option (pick), button:label or +label "
                         "(press a button, e.g. +10 steps)")
    ap.add_argument("--follow-pause-s", type=float, default=8.0,
                    help="the teacher's pause after each change (longer than a follower's expected delay: the "
                         "banner polls every 2 s)")
    ap.add_argument("--follow-bound-s", type=float, default=8.0,
                    help="a student who has not shown a change within this (or before the teacher's next change) "
                         "missed it: an error")
    ap.add_argument("--page-timeout-s", type=float, default=120.0)
    ap.add_argument("--max-s", type=float, default=900.0, help="bound on the whole class")
    args = ap.parse_args(argv)
    if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--url must be a loopback address (this is a load test for your own server)")
    if not 1 <= args.students <= 200:
        ap.error("--students must be between 1 and 200")
    if args.rounds < 1 or args.dwell_s < 0:
        ap.error("--rounds must be at least 1 and --dwell-s not negative")
    if args.follow and (args.follow_pause_s <= 0 or args.follow_bound_s <= 0 or not tour_steps(args.follow_tour)):
        ap.error("--follow needs a tour and positive --follow-pause-s and --follow-bound-s")
    if not 0 <= args.browsers <= args.students:
        ap.error("--browsers must be between 0 and --students")
    args.url = args.url.rstrip("/")
    args.pages = [p for p in args.pages.split(",") if p]
    return args


def start_training(args: argparse.Namespace) -> subprocess.Popen | None:
    if not args.train_args:
        return None
    cmd = [sys.executable, "-m", "core", "train", "--json", *shlex.split(args.train_args)]
    if args.runs_dir:
        cmd += ["--runs-dir", args.runs_dir]
    return subprocess.Popen(["nice", "-n", "10", *cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish_training(proc: subprocess.Popen | None, bound_s: float) -> str | None:
    """The trained run's final status from its JSON events; terminated (and 'unfinished') past the bound."""
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=bound_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        return "unfinished"
    status = "no finished event"
    for line in (out or "").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "finished":
            status = str(event.get("status"))
    return status if proc.returncode == 0 else f"{status} (exit {proc.returncode})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    port = urlparse(args.url).port or 80
    pid = args.server_pid or listening_pid(port)
    t0 = time.monotonic()
    before_machine = machine()
    looks = [library_look(args.runs_dir)]
    trainer: list[subprocess.Popen | None] = [None]

    def on_warm() -> bool:
        trainer[0] = start_training(args)
        return trainer[0] is not None

    rss_start, server_cpu0, browser_cpu0 = rss_mb(pid), cpu_s(pid), children_cpu_s()
    sampler = PeakRss(pid)
    sampler.start()
    rec = asyncio.run(run_follow(args, pid, on_warm) if args.follow else run_class(args, pid, on_warm))
    rss_before = rec.get("rss_warm", rss_start)  # per student: from the warm server, not its cold start
    peak = sampler.stop()
    server_cpu1, browser_cpu = cpu_s(pid), round(children_cpu_s() - browser_cpu0, 1)  # the trainer: not reaped yet
    time.sleep(2)
    rss_after = rss_mb(pid)
    looks.append(library_look(args.runs_dir))
    tour = rec.get("tour") or [None, None]
    train_status = finish_training(trainer[0], max(30.0, args.max_s - (time.monotonic() - t0)))
    cover = training_cover(args.runs_dir, *tour) if trainer[0] is not None and args.follow else None
    if trainer[0] is not None:
        looks.append(library_look(args.runs_dir))
    looks = [{k: v for k, v in look.items() if not k.startswith("_")} for look in looks]
    follows = follow_delays(rec["changes"], rec["timelines"], args.follow_bound_s) if args.follow else None
    summary = summarize(rec["loads"], students=args.students, errors=rec["errors"], actions=rec["actions"],
                        looks=looks, train_status=train_status, follows=follows,
                        rss_mb={"before": rss_before, "loaded": rec.get("rss_loaded"), "peak": peak,
                                "after": rss_after},
                        extra={"pages": ["home"] if args.follow else args.pages, "browsers": args.browsers,
                               "follow": args.follow, "teacher_changes": rec.get("changes"),
                               "training_cover": cover,
                               "fragment_reruns": rec.get("fragment_reruns"),
                               "runs_checked": bool(args.runs_dir or os.environ.get("CIFAR_LAB_RUNS")),
                               "answers": rec["answers"], "follows": rec["follows"], "rss_mb_start": rss_start,
                               "question_opened": bool(rec.get("question_opened")), "tally": rec.get("tally"),
                               "students_seen_as_teacher": len(rec["teachers"]),
                               "warmup_s": rec.get("warmup_s"), "browser_cpu_s": browser_cpu,
                               "browser_nice": args.browser_nice,
                               "server_cpu_s": None if server_cpu0 is None or server_cpu1 is None
                               else round(server_cpu1 - server_cpu0, 1),
                               "features_missing": sorted(rec["missing"]), "server_pid": pid,
                               "machine_before": before_machine, "loadavg_after": machine()["loadavg"],
                               "wall_s": round(time.monotonic() - t0, 1)})
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['students']} students, {summary['page_loads']} page loads: p50 {summary['p50_s']} s, "
              f"p95 {summary['p95_s']} s, max {summary['max_s']} s; {summary['errors']} errors, "
              f"{summary['runs_lost']} runs lost; server RSS {summary['rss_mb_before']} -> "
              f"{summary['rss_mb_loaded']} MB (peak {summary['rss_mb_peak']}, after {summary['rss_mb_after']})")
        if args.follow:
            print(f"followed {summary['follow_changes']} teacher changes: delay p50 {summary['follow_p50_s']} s, "
                  f"p95 {summary['follow_p95_s']} s, max {summary['follow_max_s']} s; "
                  f"{summary['changes_missed']} missed; per kind {summary['follow_per_client']}")
            if summary.get("training_cover") is not None and summary["training_cover"] < 1.0:
                print(f"  note: the run trained during only {summary['training_cover']:.0%} of the tour: give "
                      "--train-args more images or epochs for figures 'with a run training'")
        for line in summary["error_details"]:
            print("  error:", line)
    return 0 if summary["errors"] == 0 and summary["runs_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
