"""scripts/streamlit_session.py against a real Streamlit server running a tiny two-page app: the oracle is what
the app itself records of the session (its counters and the widget values it was sent), not the client's view."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.servers import free_port, streamlit_is_up

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "streamlit_session.py"
spec = importlib.util.spec_from_file_location("streamlit_session", SCRIPT)
client = importlib.util.module_from_spec(spec)
sys.modules["streamlit_session"] = client  # dataclasses look their module up there
spec.loader.exec_module(client)

APP = """
import streamlit as st

def first():
    st.session_state.clicks = st.session_state.get("clicks", 0)
    if st.button("Count", key="count"):
        st.session_state.clicks += 1
    st.markdown(f"clicks: {st.session_state.clicks}")
    name = st.text_input("Name", value=st.query_params.get("name", ""), key="name")
    st.markdown(f"hello {name}")
    with st.container(key="box"):
        pick = st.radio("Pick", ["red", "green", "blue"], index=None, key="pick")
        st.markdown(f"picked {pick}")

    if st.button("Move me", key="arm"):
        st.session_state.armed = True

    @st.fragment(run_every=0.2)
    def ticker():
        st.session_state.ticks = st.session_state.get("ticks", 0) + 1
        st.markdown(f"ticks: {st.session_state.ticks}")
        if st.session_state.pop("armed", False):  # the server moves the page, as a follower's banner does
            st.switch_page(SECOND, query_params={"at": "7"})

    ticker()

def second():
    st.markdown(f"second page, clicks so far {st.session_state.get('clicks', 0)}")
    st.markdown(f"second page at {st.query_params.get('at')}")
    if st.button("Boom", key="boom"):
        raise ValueError("a page that fails")

SECOND = st.Page(second, title="Second", url_path="second")
st.navigation([st.Page(first, title="First", url_path="first", default=True), SECOND]).run()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("session_app")
    (tmp / "app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not streamlit_is_up(url, 60):
            pytest.fail("the Streamlit server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def texts(session) -> list[str]:
    return list(session.texts())


async def a_student(url: str) -> dict:
    s = client.StreamlitSession(url, timeout_s=60)
    await s.connect()
    try:
        first = await s.open(query="name=ana")  # a deep link: the query string reaches the script
        seen = {"first": texts(s), "page": s.page, "status": first.status, "pages": sorted(s.pages)}
        await s.click(key="count")
        await s.click(key="count")
        seen["after_clicks"] = texts(s)  # the name widget's value went back with every click
        radio = s.find("radio", inside="box")
        await s.choose(radio, "green")
        seen["after_pick"] = texts(s)
        # the fragment's run_every is driven by the client, as the browser does (the bound is not a speed target)
        seen["fragment_reruns"] = await s.fragment_ticks(2, timeout_s=60)
        await s.open(page="second")  # a menu click: page hash, empty query string
        seen["second"], seen["second_page"] = texts(s), s.page
        failed = await s.click(key="boom")
        seen["exceptions"] = failed.exceptions
        return seen
    finally:
        await s.close()


def test_a_session_opens_clicks_picks_polls_and_navigates_like_the_front_end(server):
    seen = asyncio.run(a_student(server))
    assert seen["status"] == client.FINISHED and seen["page"] == "" and seen["pages"] == ["", "second"]
    assert "clicks: 0" in seen["first"] and "hello ana" in seen["first"] and "picked None" in seen["first"]
    assert "clicks: 2" in seen["after_clicks"] and "hello ana" in seen["after_clicks"]
    assert "picked green" in seen["after_pick"] and "clicks: 2" in seen["after_pick"]
    assert seen["fragment_reruns"] >= 2
    assert seen["second_page"] == "second" and "second page, clicks so far 2" in seen["second"]
    assert not [t for t in seen["second"] if t.startswith("clicks:")]  # the first page's elements are gone
    assert len(seen["exceptions"]) == 1 and "a page that fails" in seen["exceptions"][0]


def test_opening_a_page_the_menu_does_not_have_says_so(server):
    async def go():
        s = client.StreamlitSession(server, timeout_s=60)
        await s.connect()
        try:
            await s.open(query="")
            with pytest.raises(LookupError, match="no page 'nowhere'"):
                await s.open(page="nowhere")
            with pytest.raises(LookupError, match="no button"):
                await s.click(key="not-there")
        finally:
            await s.close()

    asyncio.run(go())


def test_shown_records_the_page_and_query_after_runs_the_server_started_itself(server):
    async def go():
        s = client.StreamlitSession(server, timeout_s=60)
        await s.connect()
        try:
            await s.open(query="name=bo")
            first = list(s.shown)
            await s.click(key="arm")  # the next fragment tick switches the page, with no request of the client's

            async def moved() -> None:
                while not s.shown or s.shown[-1][1] != "second":
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(moved(), 60)  # a bound on a real server, not a speed target
            return first, list(s.shown), texts(s)
        finally:
            await s.close()

    first, shown, drawn = asyncio.run(go())
    assert [v[1:] for v in first] == [("", "name=bo")]
    assert shown[-1][1:] == ("second", "at=7") and "second page at 7" in drawn  # the app's own text: the oracle
    assert [t for t, *_ in shown] == sorted(t for t, *_ in shown)


def test_widget_values_are_what_the_front_end_would_send():
    from streamlit.proto.Slider_pb2 import Slider
    from streamlit.proto.TextInput_pb2 import TextInput

    typed = client.widget_value("text_input", TextInput(id="t", default="", value="ana", set_value=True))
    assert typed.string_value == "ana"
    assert client.widget_value("text_input", TextInput(id="t", default="x")).string_value == "x"
    sel = Slider(id="s", type=client.SELECT_SLIDER, options=["500", "1,000", "2,000"], default=[1.0])
    assert list(client.widget_value("slider", sel).string_array_value.data) == ["1,000"]
    num = Slider(id="n", default=[0.25, 0.75])
    assert list(client.widget_value("slider", num).double_array_value.data) == [0.25, 0.75]
    from streamlit.proto.Button_pb2 import Button
    from streamlit.proto.Radio_pb2 import Radio

    assert client.widget_value("button", Button(id="b")) is None
    assert client.widget_value("radio", Radio(id="r", options=["a", "b"])) is None  # index=None: no value yet
    assert client.widget_value("radio", Radio(id="r", options=["a", "b"], default=1)).string_value == "b"
