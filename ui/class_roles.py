"""Who this browser is, in class mode: the teacher (on the server's machine, or after the passcode) or a student
with a nickname; the class settings every session starts from; and the sidebar's "Class" box.

The rules themselves live in core.classroom (access: loopback + passcode; roles: what each may do, enforced by
the run library); this module only reads the connection's address, the session and the URL.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import streamlit as st

from core.classroom import access, roles
from core.classroom import settings as class_settings
from core.classroom.roles import Actor
from core.errors import LabError
from core.runs.library import open_library, runs_root
from ui import urlstate

UNLOCKED = "_teacher"  # session flag: this tab entered the passcode (or brought its token)
REMEMBERED = "_teacher_remembered"  # session flag: unlocked by the browser's token, not by typing the passcode
TOKEN_SEEN = "_teacher_token_seen"  # session flag: the browser's token was looked at (once: it is sent at connect)
COOKIE = "_teacher_cookie"  # session: the cookie this tab's browser must hold ("" = none), written by the sidebar


def server_passcode() -> access.Passcode:
    """The teacher passcode: $CIFAR_LAB_PASSCODE, else teacher_passcode in secrets, else the runs folder's own."""
    configured, source = os.environ.get(access.PASSCODE_ENV), "env"
    if not configured:
        with contextlib.suppress(Exception):  # no secrets.toml at all is the normal case
            configured, source = st.secrets.get("teacher_passcode"), "secrets"
    return _passcode_for(str(runs_root()), configured or None, source)


@st.cache_resource(show_spinner=False)
def _passcode_for(root: str, configured: str | None, source: str) -> access.Passcode:
    """Made (and printed in the server's terminal, Jupyter-style) once per server and runs folder."""
    passcode = access.ensure_passcode(root, configured=configured, source=source)
    made = "made a new" if passcode.source == "new" else "the"
    sys.stdout.write(f"\n  CIFAR Lab: {made} teacher passcode is {passcode.code}  (kept in {passcode.where}; "
                     f"students enter it in the sidebar to become the teacher)\n\n")
    sys.stdout.flush()
    return passcode


def on_server_machine() -> bool:
    """Whether this browser connects from a loopback address. Streamlit reports 127.0.0.1 and ::1 as None
    (and AppTest's mocked runtime answers a non-string), other loopback addresses as text."""
    ip = st.context.ip_address
    return not isinstance(ip, str) or access.is_loopback(ip)


def is_teacher() -> bool:
    # The token comes with the connection and cannot change during the session: look at it on the session's first
    # run only (a reload, a new tab). After "Lock" it is not looked at again, so it cannot undo the lock.
    if not st.session_state.get(TOKEN_SEEN):
        st.session_state[TOKEN_SEEN] = True
        if access.token_is_valid(teacher_cookie(), server_passcode(), time.time()):
            st.session_state[UNLOCKED] = st.session_state[REMEMBERED] = True
    unlocked = bool(st.session_state.get(UNLOCKED))
    return access.is_teacher(loopback=on_server_machine(), unlocked=unlocked, local_rule=access.local_teacher_enabled())


def teacher_cookie() -> str | None:
    """The teacher token this browser sent when it connected (None: none, or no browser context)."""
    with contextlib.suppress(Exception):
        return st.context.cookies.get(access.TOKEN_COOKIE)
    return None


def _write_cookie(sb) -> None:
    """Have the browser keep (or forget) the teacher token: a one-line script, drawn on every run of a tab that
    unlocked or locked, so it runs whenever the sidebar is mounted. SameSite=Strict: sent to this server only."""
    token = st.session_state.get(COOKIE)
    if token is None:
        return
    age = access.TOKEN_MAX_AGE_S if token else 0
    sb.html(f"<script>document.cookie = '{access.TOKEN_COOKIE}={token}; path=/; max-age={age}; "
            "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def voter_id(actor: Actor) -> str:
    """Whose answer this is: the nickname, else this browser tab's session."""
    if actor.is_teacher or actor.name:
        return actor.name
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return f"guest-{(ctx.session_id if ctx else 'local')[:8]}"


def class_defaults() -> class_settings.ClassSettings | None:
    """The class settings saved by the teacher (None when never set, or the library cannot be opened)."""
    try:
        return class_settings.load(open_library(runs_root(), recover=False))
    except LabError:
        return None


def identity(sb) -> Actor:
    """The sidebar's Class box: nickname (students) or passcode; the teacher's passcode and lock. Returns the actor
    (a student without a nickname has name "")."""
    server_passcode()
    if is_teacher():
        _teacher_box(sb)
        return roles.TEACHER
    nick = urlstate.text_input(sb, "Your nickname", key="nick", default="", max_chars=roles.MAX_NICKNAME,
                               placeholder="e.g. Ana",
                               help="Picked once; your runs and answers carry it. It stays in this page's link.")
    actor = Actor(roles.STUDENT_ROLE, "")
    if nick.strip():
        try:
            actor = roles.student(nick)
        except LabError as e:
            sb.error(str(e))
    entered = sb.text_input("Teacher passcode", type="password", key="teacher_code",
                            help="Only the teacher needs it: it unlocks every control in this browser for the day.")
    if entered:
        if access.passcode_matches(entered, server_passcode()):
            st.session_state[UNLOCKED] = True
            st.session_state[COOKIE] = access.teacher_token(server_passcode(), int(time.time()))
            st.rerun()
        sb.error("Wrong passcode.")
    sb.caption(f"You are a student{' (' + actor.name + ')' if actor.name else ''}: you can start one run of "
               f"your own, answer questions and follow the teacher.")
    _write_cookie(sb)  # after "Lock": the browser forgets the token
    return actor


def _teacher_box(sb) -> None:
    _write_cookie(sb)  # first: the browser keeps the token before anything else of the sidebar is drawn
    where = "this machine" if not st.session_state.get(UNLOCKED) else \
        "the passcode, remembered in this browser for the day" if st.session_state.get(REMEMBERED) else "the passcode"
    sb.caption(f"You are the teacher (by {where}).")
    with sb.expander("Class: passcode and sharing"):
        passcode = server_passcode()
        st.markdown(f"Teacher passcode: `{passcode.code}`  \nKept in {passcode.where}. Students open the plain "
                    f"address of this server; anyone who enters the passcode becomes a teacher.")
        st.toggle("Students follow me", value=True, key="class_lead",
                  help="Students' pages show a banner with the page you are on and your live run.")
    if st.session_state.get(UNLOCKED) and sb.button("Lock teacher controls", key="teacher_lock",
                                                    help="This browser forgets the passcode: a student again"):
        st.session_state[UNLOCKED] = st.session_state[REMEMBERED] = False
        st.session_state[COOKIE] = ""
        st.rerun()


def save_button(sb, settings) -> None:
    """The teacher's "Save as class settings": every new session starts from the sidebar's current values."""
    saved = class_defaults()
    if saved is not None:
        sb.caption(f"Class settings: {saved.dataset} · {_n(saved.subset)} / {_n(saved.test_subset)} images · "
                   f"{saved.device}")
    if not settings.actor.is_teacher:
        return
    if sb.button("Save as class settings", key="class_save",
                 help="Every student who opens the plain address starts from these (a link's settings still win)."):
        try:
            done = class_settings.save(open_library(runs_root(), recover=False), settings.dataset, settings.subset,
                                       settings.test_subset, settings.device, actor=settings.actor)
            st.toast("Class settings saved" + (f": {done.check}" if done.check else ""))
        except LabError as e:
            sb.error(str(e))


def _n(v: int | None) -> str:
    return "all" if v is None else f"{v:,}"
