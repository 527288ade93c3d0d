"""Who this browser is, in class mode: the teacher (on the server's machine, or after the passcode) or a student
with a nickname; the class settings every session starts from; and the sidebar's "Class" box.

The rules themselves live in core.classroom (access: loopback + passcode; roles: what each may do, enforced by
the run library); this module only reads the connection's address, the session and the URL.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time

import streamlit as st

from core.classroom import access, attempts, roles, roster
from core.classroom import settings as class_settings
from core.classroom.roles import Actor
from core.errors import LabError
from core.runs.library import open_library, runs_root
from ui import urlstate

UNLOCKED = "_teacher"  # session flag: this tab entered the passcode (or brought its token)
REMEMBERED = "_teacher_remembered"  # session flag: unlocked by the browser's token, not by typing the passcode
TOKEN_SEEN = "_teacher_token_seen"  # session flag: the browser's token was looked at (once: it is sent at connect)
COOKIE = "_teacher_cookie"  # session: the cookie this tab's browser must hold ("" = none), written by the sidebar
_CLEAR = "_teacher_code_clear"  # session: empty the passcode field on this run (the last entry was judged)
_MESSAGE = "_teacher_code_message"  # session: what came of the last entry, shown once


def server_passcode() -> access.Passcode | None:
    """The teacher passcode, decided by core.classroom.access.resolve_passcode (as `python -m core class show`
    does) from $CIFAR_LAB_PASSCODE, Streamlit's secrets files, or the runs folder's own (made at the first
    start). None when it cannot be read (passcode_state says why); a weak one comes back with its problem."""
    return passcode_state()[0]


def passcode_state() -> tuple[access.Passcode | None, str]:
    """(the passcode, "" ) or (the passcode or None, why it unlocks nothing). Announced once in the terminal."""
    try:
        passcode = access.resolve_passcode(runs_root(), secrets_files=st.get_option("secrets.files"))
    except LabError as e:
        _announce(None, str(e))
        return None, str(e)
    _announce(passcode.code if not passcode.problem else None, passcode.problem, passcode.where,
              passcode.source == "new")
    return passcode, passcode.problem


@st.cache_resource(show_spinner=False, max_entries=16)
def _announce(code: str | None, problem: str, where: str = "", _made: bool = False) -> None:
    """Printed in the server's terminal (Jupyter-style) once per passcode: the code, or why it is refused."""
    if problem:
        sys.stdout.write(f"\n  CIFAR Lab: REFUSED the teacher passcode{' from ' + where if where else ''}: "
                         f"{problem}. Until then only a browser on this machine is the teacher.\n\n")
    else:
        sys.stdout.write(f"\n  CIFAR Lab: {'made a new' if _made else 'the'} teacher passcode is {code}  (kept in "
                         f"{where}; students enter it in the sidebar to become the teacher)\n\n")
    sys.stdout.flush()


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
        passcode = server_passcode()
        if passcode is not None and access.token_is_valid(teacher_cookie(), passcode, time.time()):
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


def client_address() -> str:
    """This browser's address as the server sees it ("loopback" for the server's own machine)."""
    ip = st.context.ip_address
    return ip if isinstance(ip, str) and ip else "loopback"


def session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else "local"


def identity(sb) -> Actor:
    """The sidebar's Class box: nickname (students) or passcode; the teacher's follow toggle, join code, roster
    and passcode (revealed on demand, never in presenter mode). Returns the actor (a student without a nickname
    has name "")."""
    passcode, problem = passcode_state()
    if is_teacher():
        _teacher_box(sb, passcode, problem)
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
    _passcode_entry(sb, passcode, problem)
    sb.caption(f"You are a student{' (' + actor.name + ')' if actor.name else ''}: you can start one run of "
               f"your own, answer questions and follow the teacher.")
    _write_cookie(sb)  # after "Lock": the browser forgets the token
    return actor


def _passcode_entry(sb, passcode: access.Passcode | None, problem: str) -> None:
    """The passcode field. Each typed passcode is judged once (then the field is emptied), at the pace
    core.classroom.attempts allows this browser and its address; a refused passcode unlocks nothing."""
    if st.session_state.pop(_CLEAR, False):
        st.session_state["teacher_code"] = ""
    entered = sb.text_input("Teacher passcode", type="password", key="teacher_code", disabled=bool(problem),
                            help="Only the teacher needs it: it unlocks every control in this browser for the day.")
    message = st.session_state.pop(_MESSAGE, None)
    if problem:  # no detail for students (a length would help a guess): the teacher's own sidebar says why
        sb.caption("The teacher passcode is turned off on this server until the teacher sets a stronger one.")
    elif entered and passcode is not None:
        lib = open_library(runs_root(), recover=False)
        tried = attempts.try_passcode(lib, session=session_id(), address=client_address(),
                                      check=lambda: access.passcode_matches(entered, passcode))
        st.session_state[_CLEAR] = True
        if tried.ok:
            st.session_state[UNLOCKED] = True
            st.session_state[COOKIE] = access.teacher_token(passcode, int(time.time()))
            roster.leave(lib, session_id())
        elif not tried.allowed:
            st.session_state[_MESSAGE] = (f"Too many wrong passcodes from this browser or network: wait "
                                          f"{math.ceil(tried.wait_s)} s, then try again.")
        else:
            st.session_state[_MESSAGE] = "Wrong passcode." + (
                f" Wait {math.ceil(tried.wait_s)} s before the next try." if tried.wait_s else "")
        st.rerun()
    if message:
        sb.error(message)


def _teacher_box(sb, passcode: access.Passcode | None, problem: str) -> None:
    from ui import class_room
    from ui import presenter as presenter_mode

    _write_cookie(sb)  # first: the browser keeps the token before anything else of the sidebar is drawn
    where = "this machine" if not st.session_state.get(UNLOCKED) else \
        "the passcode, remembered in this browser for the day" if st.session_state.get(REMEMBERED) else "the passcode"
    sb.caption(f"You are the teacher (by {where}).")
    sb.toggle("Students follow me", value=True, key="class_lead",
              help="Students' pages show a banner with the page you are on and your live run.")
    class_room.join_box(sb)
    with sb:
        class_room.roster_box(open_library(runs_root(), recover=False))
    if problem:
        sb.error(f"{problem}. Until then the passcode unlocks nothing: only this machine is the teacher.")
    with sb.expander("Teacher passcode"):
        if presenter_mode.requested():  # a projector shows the sidebar to the room: never draw it here
            st.caption("Hidden in presenter mode. Leave presenter mode to see it, or run `python -m core class "
                       "show` on the server.")
        elif passcode is not None and st.toggle("Show passcode", value=False, key="passcode_reveal",
                                                help="Not while the screen is shared with the class."):
            st.markdown(f"Teacher passcode: `{passcode.code}`  \nFrom {passcode.where}. Anyone who enters it "
                        f"becomes a teacher.")
        else:
            st.caption("Anyone who enters the passcode becomes a teacher: reveal it only when the room cannot "
                       "see this screen.")
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
    budget_box(sb, settings.actor)
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


def budget_box(sb, actor: Actor) -> None:
    """The class time budget: everyone reads it; the teacher sets it (saved at once, for every session)."""
    try:
        lib = open_library(runs_root(), recover=False)
        minutes = class_settings.minutes_per_run(lib)
    except LabError:
        return
    if not actor.is_teacher:
        if minutes:
            sb.caption(f"Time budget: runs are cut to fit {minutes:g} min each")
        return

    def save() -> None:
        try:
            class_settings.set_minutes_per_run(lib, float(st.session_state["class_minutes"]), actor=actor)
        except LabError as e:
            st.session_state["_class_minutes_error"] = str(e)

    sb.number_input("Minutes per run (class budget, 0 = none)", 0.0, 600.0, float(minutes or 0), step=1.0,
                    key="class_minutes", on_change=save, help="Runs started in the app are cut (epochs first, then "
                    "training images) to finish within this many minutes on this device; you may still start a full run.")
    if problem := st.session_state.pop("_class_minutes_error", None):
        sb.error(problem)


def _n(v: int | None) -> str:
    return "all" if v is None else f"{v:,}"
