"""The teacher's view of the room: the join code (the address students open and its QR code) and the roster (who
is connected, who follows, who answered, wrong passcode tries); and each student page's heartbeat.

The decisions are core.classroom's (join: the address; roster: who is online; attempts: the wrong tries); this
module reads Streamlit's config and session, and draws.
"""

from __future__ import annotations

import io

import streamlit as st

from core.classroom import attempts, follow, questions, roster
from core.classroom.join import JoinAddress, join_address
from core.classroom.roles import Actor

ROSTER_EVERY_S = 5.0
JOIN_TOGGLE = "class_join_show"  # the teacher's toggle: the join code large at the top of every page
_BEAT = "_class_beat"  # session: the last heartbeat written (core.classroom.roster.Beat)
QR_PIXELS = 480  # the large code: about 1.5 cm a module on a 2 m projected page, read from 10 m


def server_join_address() -> JoinAddress:
    """Where students open this server: core.classroom.join's choice from Streamlit's own settings."""
    from streamlit import config

    manual = config.get_option("browser.serverAddress") if config.is_manually_set("browser.serverAddress") else None
    return join_address(port=int(config.get_option("server.port")), server_address=manual,
                        bind_address=config.get_option("server.address"),
                        base_path=config.get_option("server.baseUrlPath") or "")


@st.cache_data(show_spinner=False, max_entries=8)
def qr_png(url: str, pixels: int = QR_PIXELS) -> bytes:
    """The QR code of `url` as a PNG of about `pixels` pixels, whole modules (segno, error correction M)."""
    import segno

    code = segno.make(url, error="m")
    width = code.symbol_size(scale=1, border=4)[0]
    buf = io.BytesIO()
    code.save(buf, kind="png", scale=max(4, pixels // width), border=4)
    return buf.getvalue()


def join_box(sb) -> None:
    """The sidebar's join code: the address, a small QR, and the toggle that shows both large on the page."""
    where = server_join_address()
    with sb.expander("Join: address and QR code"):
        st.markdown(f"Students open **{where.url}**")
        if where.warning:
            st.warning(where.warning)
        st.image(qr_png(where.url, 240), width=180, output_format="PNG")
        st.toggle("Show the join code on the page", key=JOIN_TOGGLE,
                  help="Large, above the page, for the room to scan; switch it off once everyone is in.")


def join_panel() -> None:
    """The join code large above the page (the teacher's toggle), sized for the back of the room."""
    where = server_join_address()
    with st.container(border=True, key="class_join"):
        left, right = st.columns([3, 2], vertical_alignment="center")
        left.markdown("### Join the class")
        left.markdown(f"## {where.url}")
        left.caption("Scan the code or type the address on your laptop or phone, then pick a nickname in the "
                     "sidebar.")
        if where.warning:
            left.warning(where.warning)
        right.image(qr_png(where.url), width=QR_PIXELS, output_format="PNG")


def roster_box(lib) -> None:
    """The teacher's roster, kept small: counts, the names in a collapsed list, and wrong passcode tries."""
    st.fragment(_roster_body, run_every=ROSTER_EVERY_S)(str(lib.root))


def _roster_body(root: str) -> None:
    from core.runs.library import open_library

    lib = open_library(root, recover=False)
    where = follow.presenting(lib)
    q = questions.current_question(lib, where.page.rsplit("/", 1)[-1].removesuffix(".py")) if where else None
    r = roster.roster(lib, presenting_page=where.page if where else None, question_id=q.id if q else None)
    line = f"👥 **{len(r.online)}** online · **{len(r.following)}** follow you · **{len(r.on_page)}** on your page"
    if r.question_open:
        line += f" · **{len(r.answered)}** answered"
    st.markdown(line, help="Students whose page was seen in the last "
                           f"{roster.ONLINE_S:.0f} s (their pages poll every 2 s).")
    if r.online:
        with st.expander("Who"):
            st.markdown(_names("Online", r.online) + "  \n" + _names("Exploring on their own", r.not_following)
                        + "  \n" + _names("Not on your page", r.elsewhere)
                        + ("  \n" + _names("Answered", r.answered) if r.question_open else ""))
    tries = attempts.summary(lib)
    if tries.failures:
        st.warning(f"{tries.failures} wrong passcode tr{'ies' if tries.failures != 1 else 'y'} in the last hour "
                   f"from {tries.addresses} address{'es' if tries.addresses != 1 else ''}"
                   + (f"; {tries.waiting} browser(s) or address(es) must wait" if tries.waiting else ""),
                   icon=":material/lock:")
        if tries.waiting and st.button("Lift the waits", key="passcode_forgive",
                                       help="Lets every browser try the passcode again now (e.g. a colleague "
                                            "locked out on a shared network)."):
            from core.classroom.roles import TEACHER

            attempts.forgive(lib, actor=TEACHER)
            st.rerun(scope="fragment")


def _names(what: str, names: tuple[str, ...]) -> str:
    from ui.text import plain

    return f"**{what}:** " + (plain(", ".join(names)) if names else "nobody")


def beat(lib, actor: Actor, page: str, follows: bool = True) -> None:
    """A student's heartbeat (each script run and banner poll; written at most every BEAT_EVERY_S unless the
    nickname, page or follow choice changed)."""
    import time

    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if actor.is_teacher:
        return
    ctx = get_script_run_ctx()
    last = st.session_state.get(_BEAT)
    if ctx is None or not roster.needs_beat(last, actor.name, page, time.time(), follows):
        return
    st.session_state[_BEAT] = roster.heartbeat(lib, ctx.session_id, actor.name, page, follows=follows)
