"""One Streamlit session without a browser: a websocket client that speaks the front end's protocol (the
`streamlit.proto` BackMsg / ForwardMsg messages) against a running app, for the classroom load test.

What the browser does and this client does too, so the server carries the same load:
- opens `/_stcore/stream`, asks for a script run with the URL's query string (a deep link) or a page's hash (a
  menu click, with an empty query string, as the front end sends it);
- keeps every widget's value as the server last drew it and sends them all with each run;
- honours `auto_rerun`: a fragment with `run_every` is rerun by the client at its interval (the run panels, the
  class banner), and stops when the next full run starts;
- follows the query string the app writes (`page_info_changed`);
- records what the page shows: `shown` gets (unix time, page, query string) each time a finished run (the page's
  or a fragment's) leaves the page or its query string different from the last one - including the runs the server
  starts itself (st.rerun, st.switch_page from a fragment: a student following the teacher).
What it does not do: draw anything, load the front end's JavaScript, or fetch media. So a page's time here is the
server's part of a page load - the script run and its messages - without the student device's rendering.

    session = StreamlitSession("http://127.0.0.1:8501")
    await session.connect()
    run = await session.open(query="nick=ana")          # the landing page, by URL
    run = await session.open(page="mlp_vs_cnn")         # a menu click
    run = await session.click(key="q_submit")           # a button, by its key
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED, COMPILE_ERROR, EARLY_FOR_RERUN, FRAGMENT_FINISHED = 0, 1, 2, 3
SELECT_SLIDER = 2  # Slider.type for st.select_slider


@dataclass
class Element:
    kind: str  # the Element oneof: "markdown", "button", "radio", ...
    proto: Any
    keys: tuple[str, ...]  # the keys of the blocks it sits in (st.container(key=...)), outermost first
    run: int  # the full script run during which it was last drawn (by the run or by one of its fragments)

    @property
    def id(self) -> str:
        return getattr(self.proto, "id", "") or ""

    @property
    def key(self) -> str:
        """The widget's user key ('' for none): Streamlit ids end with '-<key>'."""
        return self.id.split("-", 2)[-1] if self.id.startswith("$$ID-") and self.id.count("-") >= 2 else ""

    @property
    def text(self) -> str:
        p = self.proto
        for name in ("body", "label", "text", "message"):
            value = getattr(p, name, None)
            if isinstance(value, str) and value:
                return value
        return ""


@dataclass
class Run:
    """A full script run the client asked for (with the st.rerun / st.switch_page runs it led to)."""
    seconds: float
    status: int
    page: str  # the url_pathname of the page drawn ('' for the default page)
    exceptions: list[str] = field(default_factory=list)


def widget_value(kind: str, p: Any) -> WidgetState | None:
    """The value the front end would send for a widget the server just drew (its set value, else its default),
    for the widgets this lab uses; None where the widget has no value to send (buttons, an unset radio)."""
    w = WidgetState(id=p.id)
    if kind in ("text_input", "text_area"):
        w.string_value = p.value if p.set_value else p.default
    elif kind == "checkbox":
        w.bool_value = p.value if p.set_value else p.default
    elif kind in ("selectbox", "radio"):
        if p.set_value and p.HasField("raw_value"):
            w.string_value = p.raw_value
        elif p.HasField("default") and 0 <= p.default < len(p.options):
            w.string_value = p.options[p.default]
        else:
            return None
    elif kind == "slider":
        if p.type == SELECT_SLIDER:
            values = list(p.raw_value) if p.set_value and p.raw_value else [p.options[int(i)] for i in p.default]
            w.string_array_value.data.extend(values)
        else:
            w.double_array_value.data.extend(p.value if p.set_value else p.default)
    elif kind == "number_input":
        value = p.value if p.set_value else p.default
        if p.data_type == p.INT:
            w.int_value = int(value)
        else:
            w.double_value = float(value)
    else:
        return None
    return w


class StreamlitSession:
    def __init__(self, url: str, *, timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.elements: dict[tuple[int, ...], Element] = {}
        self.pages: dict[str, str] = {}  # url_pathname ('' = default page) -> page_script_hash
        self.page = ""
        self.query = ""
        self.fragment_reruns = 0
        self.shown: list[tuple[float, str, str]] = []  # (time.time(), page, query) at each change, after a run
        self._ticked = asyncio.Event()  # set at each fragment rerun the client asks for
        self._ws: Any = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, asyncio.Task] = {}
        self._values: dict[str, WidgetState] = {}
        self._run = 0  # counts the full script runs the server started
        self._block_keys: dict[tuple[int, ...], str] = {}
        self._finished: asyncio.Queue[int] = asyncio.Queue()
        self._exceptions: list[str] = []
        self._full_run_active = False

    # --- the connection ---------------------------------------------------------------------------------

    async def connect(self) -> None:
        ws_url = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/_stcore/stream"
        self._ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                            open_timeout=self.timeout_s)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        for task in self._timers.values():
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    # --- what a student does ----------------------------------------------------------------------------

    async def open(self, page: str | None = None, query: str | None = None) -> Run:
        """A deep link (query given: the URL's query string, the page by its path) or a menu click (query None:
        the front end sends an empty query string and the page's hash)."""
        target = "" if page in (None, "", "home") else page
        if query is None and target not in self.pages:
            raise LookupError(f"no page {target!r} in the app's menu ({sorted(self.pages)})")
        return await self._rerun(query="" if query is None else query, page_hash=self.pages.get(target, ""),
                                 page_name="" if query is None else target)

    async def click(self, *, key: str | None = None, label: str | None = None) -> Run:
        """Press the button with this user key (or, failing that, this label) and wait for the run it starts."""
        button = self.find("button", key=key, label=label)
        if button is None:
            raise LookupError(f"no button {key or label!r} on the page")
        return await self._rerun(query=self.query, page_hash=self.pages.get(self.page, ""),
                                 trigger=WidgetState(id=button.id, trigger_value=True))

    async def choose(self, element: Element, option: str) -> Run:
        """Pick an option of a radio or a selectbox (the front end reruns at once)."""
        self._values[element.id] = WidgetState(id=element.id, string_value=option)
        return await self._rerun(query=self.query, page_hash=self.pages.get(self.page, ""))

    async def fill(self, element: Element, text: str) -> Run:
        """Type into a text input and press Enter (the front end reruns with the new value)."""
        self._values[element.id] = WidgetState(id=element.id, string_value=text)
        return await self._rerun(query=self.query, page_hash=self.pages.get(self.page, ""))

    async def fragment_ticks(self, n: int, timeout_s: float) -> int:
        """Wait until the client has asked for n fragment reruns (TimeoutError after timeout_s); returns the count."""
        async def ticks() -> None:
            while self.fragment_reruns < n:
                self._ticked.clear()
                await self._ticked.wait()

        await asyncio.wait_for(ticks(), timeout_s)
        return self.fragment_reruns

    def find(self, kind: str | None = None, *, key: str | None = None, label: str | None = None,
             inside: str | None = None) -> Element | None:
        for el in self.find_all(kind, inside=inside):
            if (key is None or el.key == key or el.key.startswith(key)) and (label is None or el.text == label):
                return el
        return None

    def find_all(self, kind: str | None = None, *, inside: str | None = None) -> list[Element]:
        return [el for _, el in sorted(self.elements.items())
                if (kind is None or el.kind == kind) and (inside is None or inside in el.keys)]

    def texts(self, inside: str | None = None) -> Iterable[str]:
        return (el.text for el in self.find_all(inside=inside) if el.text)

    # --- the protocol -----------------------------------------------------------------------------------

    async def _rerun(self, *, query: str, page_hash: str, page_name: str = "",
                     trigger: WidgetState | None = None) -> Run:
        for task in self._timers.values():  # a full run replaces every fragment's timer
            task.cancel()
        self._timers.clear()
        while not self._finished.empty():
            self._finished.get_nowait()
        self._exceptions, start_run = [], self._run
        self._full_run_active = True
        self.query = query  # the URL's query string now, as the front end's address bar has it
        t0 = time.monotonic()
        await self._send(query=query, page_hash=page_hash, page_name=page_name, trigger=trigger)
        deadline = t0 + self.timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the script run did not finish in {self.timeout_s:.0f} s")
                status = await asyncio.wait_for(self._finished.get(), left)
                if status in (FINISHED, COMPILE_ERROR):
                    break  # EARLY_FOR_RERUN: st.rerun / st.switch_page, the next run follows
        finally:
            self._full_run_active = False
        # What the last full run did not draw is gone, as the front end drops stale elements. (Runs are counted by
        # new_session, not by the status "running": a request that lands during a fragment's run restarts the
        # script without a new status, and its elements would have looked stale.)
        for path in [p for p, el in self.elements.items() if self._run > start_run and el.run < self._run]:
            del self.elements[path]
        return Run(time.monotonic() - t0, status, self.page, list(self._exceptions))

    async def _send(self, *, query: str, page_hash: str, page_name: str = "", fragment: str = "",
                    trigger: WidgetState | None = None) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = query
        state.page_script_hash = page_hash
        state.page_name = page_name
        state.context_info.url = f"{self.url}/{self.page}" + (f"?{query}" if query else "")
        if fragment:
            state.fragment_id, state.is_auto_rerun = fragment, True
        drawn = {el.id for el in self.elements.values()}  # the front end sends the widgets on the page only
        values = {k: v for k, v in self._values.items() if k in drawn}
        if trigger is not None:
            values[trigger.id] = trigger
        state.widget_states.widgets.extend(values.values())
        await self._ws.send(msg.SerializeToString())

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            self._handle(msg)

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":  # the start of each full script run (a fragment's run sends none)
            self._run += 1
        elif kind == "navigation":  # (new_session's app_pages name pages by title: the menu is here)
            self._pages(msg.navigation.app_pages, msg.navigation.page_script_hash)
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "delta":
            self._delta(msg)
        elif kind == "auto_rerun":
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "script_finished":
            if msg.script_finished in (FINISHED, FRAGMENT_FINISHED):
                self._record_shown()
            self._finished.put_nowait(msg.script_finished)
        elif kind == "page_not_found":
            self._exceptions.append(f"page not found: {msg.page_not_found.page_name}")

    def _record_shown(self) -> None:
        if not self.shown or self.shown[-1][1:] != (self.page, self.query):
            self.shown.append((time.time(), self.page, self.query))

    def _pages(self, app_pages, current_hash: str) -> None:
        for p in app_pages:
            self.pages["" if p.is_default else p.url_pathname] = p.page_script_hash
        for path, h in self.pages.items():
            if h == current_hash:
                self.page = path

    def _delta(self, msg: ForwardMsg) -> None:
        path = tuple(msg.metadata.delta_path)
        delta = msg.delta
        which = delta.WhichOneof("type")
        if which == "add_block":
            if delta.add_block.id:
                self._block_keys[path] = delta.add_block.id.split("-", 2)[-1]
            else:
                self._block_keys.pop(path, None)
            return
        if which != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type") or ""
        proto = getattr(el, kind) if kind else None
        keys = tuple(k for i in range(1, len(path)) if (k := self._block_keys.get(path[:i])))
        self.elements[path] = Element(kind, proto, keys, self._run)
        if kind == "exception":
            self._exceptions.append(f"{proto.type}: {proto.message}"[:300])
        value = widget_value(kind, proto) if proto is not None and getattr(proto, "id", "") else None
        if value is not None and (getattr(proto, "set_value", False) or proto.id not in self._values):
            self._values[proto.id] = value

    def _start_timer(self, fragment: str, interval: float) -> None:
        old = self._timers.pop(fragment, None)
        if old is not None:
            old.cancel()
        self._timers[fragment] = asyncio.create_task(self._every(fragment, interval))

    async def _every(self, fragment: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if not self._full_run_active:  # the front end skips a fragment's tick while the page itself runs
                self.fragment_reruns += 1
                with contextlib.suppress(Exception):
                    await self._send(query=self.query, page_hash=self.pages.get(self.page, ""), fragment=fragment)
                self._ticked.set()
