"""A scripted student guessing the teacher passcode over Streamlit's websocket (scripts/streamlit_session.py) against
the real app: the oracle is the server's own record of the tries (core.classroom.attempts in the run library) and
the sidebar it draws, never the client's timing."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.classroom import attempts
from core.classroom.roles import TEACHER
from core.runs.library import open_library
from tests.servers import free_port, streamlit_is_up

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "streamlit_session.py"
if "streamlit_session" in sys.modules:  # loaded by tests/ui/test_streamlit_session.py in the same run
    client = sys.modules["streamlit_session"]
else:
    spec = importlib.util.spec_from_file_location("streamlit_session", SCRIPT)
    client = importlib.util.module_from_spec(spec)
    sys.modules["streamlit_session"] = client  # dataclasses look their module up there
    spec.loader.exec_module(client)

CODE = "owl-7731-kite"
GUESSES = 40


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("passcode_app")
    env = dict(os.environ, CIFAR_LAB_RUNS=str(tmp / "runs"), CIFAR_LAB_DATA=str(tmp / "data"),
               CIFAR_LAB_PASSCODE=CODE, CIFAR_LAB_LOCAL_TEACHER="0")  # loopback is a student here
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not streamlit_is_up(url, 120):
            pytest.fail("the Streamlit server did not start")
        yield url, tmp / "runs"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sidebar_says(session) -> str:
    return "\n".join(session.texts())


async def guess(url: str, codes: list[str]) -> list[str]:
    """One browser tab typing each code into "Teacher passcode"; what the sidebar said after each."""
    s = client.StreamlitSession(url, timeout_s=120)
    await s.connect()
    said = []
    try:
        await s.open(query="dataset_kind=synthetic&nick=Eve")
        for code in codes:
            field = s.find("text_input", key="teacher_code")
            assert field is not None, "no passcode field: the tab became the teacher?"
            await s.choose(field, code)  # a text input's value travels as a string, as a choice does
            said.append(sidebar_says(s))
    finally:
        await s.close()
    return said


def test_many_wrong_passcodes_over_the_websocket_get_a_handful_through(lab):
    url, runs = lab
    said = asyncio.run(guess(url, [f"guess-{i:03d}" for i in range(GUESSES)] + [CODE]))
    assert all("You are a student" in text and "You are the teacher" not in text for text in said)
    judged = attempts.summary(open_library(runs, recover=False)).failures
    assert judged <= attempts.FREE_FAILURES + 1  # the guesses came within seconds: 3 free, one after 5 s at most
    assert sum("Too many wrong passcodes" in text for text in said) >= GUESSES - judged
    assert "Too many wrong passcodes" in said[-1]  # the right passcode waits too: it is not even compared

    # the teacher on the same address after the lockout: lifts the waits on the server (`class forgive`), then in
    attempts.forgive(open_library(runs, recover=False), actor=TEACHER)
    said = asyncio.run(guess(url, [CODE]))
    assert "You are the teacher" in said[-1]

