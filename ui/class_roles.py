"""Who this browser is, in class mode: the teacher (on the server's machine, or after the passcode) or a student
with a nickname; the class settings every session starts from; and the sidebar's "Class" box.

The rules themselves live in core.classroom (access: loopback + passcode; roles: what each may do, enforced by
the run library); this module only reads the connection's address, the session and the URL.
"""

from __future__ import annotations

import contextlib
import os
import sys

import streamlit as st

from core.classroom import access, roles
from core.classroom import settings as class_settings
from core.classroom.roles import Actor
from core.errors import LabError
from core.runs.library import open_library, runs_root
from ui import urlstate

UNLOCKED = "_teacher"  # session flag: this tab entered the passcode


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
    return access.is_teacher(loopback=on_server_machine(), unlocked=bool(st.session_state.get(UNLOCKED)),
                             local_rule=access.local_teacher_enabled())


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
                            help="Only the teacher needs it: it unlocks every control for this browser tab.")
    if entered:
        if access.passcode_matches(entered, server_passcode()):
            st.session_state[UNLOCKED] = True
            st.rerun()
        sb.error("Wrong passcode.")
    sb.caption(f"You are a student{' (' + actor.name + ')' if actor.name else ''}: you can start one run of "
               f"your own, answer questions and follow the teacher.")
    return actor


def _teacher_box(sb) -> None:
    where = "this machine" if not st.session_state.get(UNLOCKED) else "the passcode"
    sb.caption(f"You are the teacher (by {where}).")
    with sb.expander("Class: passcode and sharing"):
        passcode = server_passcode()
        st.markdown(f"Teacher passcode: `{passcode.code}`  \nKept in {passcode.where}. Students open the plain "
                    f"address of this server; anyone who enters the passcode becomes a teacher.")
        st.toggle("Students follow me", value=True, key="class_lead",
                  help="Students' pages show a banner with the page you are on and your live run.")
    if st.session_state.get(UNLOCKED) and sb.button("Lock teacher controls", key="teacher_lock"):
        st.session_state[UNLOCKED] = False
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
