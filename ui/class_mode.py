"""Class mode on the page: the follow-the-teacher banner (app.py draws it above every page) and predict-then-reveal
questions (`question_gate("mlp_vs_cnn")`, one call per comparison page, right after its header).

Streamlit cannot push to other sessions, so students' pages poll: a fragment drawn into a place kept at the top of
the page, started after the page ran (`banner`, then `poll`), every 1.4-2 s (each student's own period). A
student who follows (the default) is taken, without a click, to the teacher's page and to what it shows: the
teacher's query string, where every page keeps its choices (core/classroom/follow.py); "Explore on my own" stops
that, "Follow the teacher" resumes it. The banner shows the teacher's live run, and reruns the page when a
question opens or is revealed on it. While a
question is open, everything below the gate is not drawn at all (and ui.layout.page_header hides the report), so
nothing on the page gives the answer away; the reveal shows the tally beside the lab's actual result.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.classroom import bank, follow, questions
from core.errors import LabError
from core.runs.records import RunRecord
from ui import charts_class, class_room, runlib, urlstate
from ui.class_roles import voter_id
from ui.layout import friendly_errors, pct, show_chart
from ui.sidebar import LabSettings, current

POLL_S = 2.0  # a teacher's page change or a new question reaches students within about this (+ one rerun)
# Each student polls at their own period, drawn once between POLL_MIN_S and POLL_S. With one period for all, the
# class fell into step: a change reran every page at once, each page's next poll was set as its rerun began, so
# the next change again found all thirty polling together, and the last page waited for the other 29.
POLL_MIN_S = 1.4
POLL_KEY = "_class_poll_s"
_PAGE = "_class_page"  # (script path, title) of the page this run shows
_SIG = "_class_question_sig"
_FOLLOWING = "class_following"  # this student's page moves with the teacher's (default True)
_SEEN = "_class_seen_at"  # the teacher's last change this student's page took (follow.Presenting.at)


def page_path(page) -> str:
    """The script of a st.navigation page (the menu's pages are pages/<url path>.py; home is the default)."""
    return f"pages/{page.url_path or 'home'}.py"


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".py")


def _signature(lib, path: str) -> tuple | None:
    q = questions.current_question(lib, _stem(path))
    return (q.id, q.status) if q else None


def banner(page) -> BannerSlot | None:
    """Above every page: the teacher records the page they show (when leading) and may show the join code; a
    student sees where the teacher is, with the teacher's live run and a one-click jump, and sends a heartbeat
    (the teacher's roster). For a student it keeps the banner's place at the top and returns it: app.py hands it
    to poll() once the page ran. The teacher gets None."""
    settings = current()
    path = page_path(page)
    st.session_state[_PAGE] = (path, page.title)
    lib = runlib.library(settings)
    sig = _signature(lib, path)
    st.session_state[_SIG] = sig
    if settings.actor.is_teacher:
        if st.session_state.get("class_lead", True):
            publish(page)  # now, so followers move while this page still runs; app.py publishes its choices after

        elif follow.presenting(lib) is not None:  # "Students follow me" switched off: take the banner down
            follow.stop_presenting(lib, actor=settings.actor)
        if st.session_state.get(class_room.JOIN_TOGGLE):
            class_room.join_panel()
        return None
    class_room.beat(lib, settings.actor, path, following())
    where = follow.presenting(lib)
    if following() and follow.shows(where, page=path, query=urlstate.query()):
        st.session_state[_SEEN] = where.at  # this run shows the teacher's change: taken
    return BannerSlot(st.container(), path)


@dataclass(frozen=True)
class BannerSlot:
    """Where a student's banner goes (a container at the top of the page) and the page it is on."""

    where: Any
    path: str


def poll(slot: BannerSlot | None) -> None:
    """app.py, after the page ran: start the banner's poll (a fragment drawn into the banner's place at the top).
    Started last, so its first poll comes a period after the page was drawn, never while the page still runs.
    Started at the top, under a class's load Chromium sometimes showed a followed page with only its banner (the
    page had run to its end on the server) until the teacher's next change; started last, that was not seen again
    (docs/PERFORMANCE.md, "Following the teacher")."""
    if slot is not None:
        with slot.where:
            st.fragment(_banner_body, run_every=poll_s())(slot.path)


def poll_s() -> float:
    """This student's poll period (seconds), drawn once per browser session: see POLL_MIN_S."""
    if POLL_KEY not in st.session_state:
        st.session_state[POLL_KEY] = round(random.uniform(POLL_MIN_S, POLL_S), 2)
    return st.session_state[POLL_KEY]


def publish(page=None) -> None:
    """The teacher, leading: record the page and what it shows now (its query string) for the followers. app.py
    calls it after the page ran (its widgets have written their choices); a page may call it mid-run too, e.g.
    while the LR finder steps, so the class sees the curve grow."""
    settings = current()
    if not settings.actor.is_teacher or not st.session_state.get("class_lead", True):
        return
    path, title = (page_path(page), page.title) if page is not None else st.session_state.get(_PAGE, (None, None))
    if path is None:
        return
    follow.present(runlib.library(settings), path, title, urlstate.query(), actor=settings.actor)


def following() -> bool:
    """Whether this student's page moves with the teacher's (the default; "Explore on my own" ends it)."""
    return bool(st.session_state.get(_FOLLOWING, True))


def _take(move: follow.FollowMove) -> None:
    """Show what the teacher shows: their page and query string (a rerun of the whole app, no click). The move
    counts as taken when a run shows it (banner, follow.shows), not here: a switch can be undone before it lands."""
    urlstate.take(move.query)
    # switch_page also on the same page: st.rerun would rerun with the query string this run started with,
    # undoing the teacher's one (Streamlit 1.67), while switch_page carries its query_params into the rerun.
    st.switch_page(move.page, query_params=move.query)


def teachers_live_run(lib) -> RunRecord | None:
    """The teacher's running run (else their next queued one): what the class watches."""
    runs = [r for r in lib.list_runs(status=("running", "queued"), limit=50) if not r.by_student]
    running = [r for r in runs if r.status == "running"]
    return (running or runs[::-1] or [None])[0]


def _banner_body(path: str) -> None:
    lib = runlib.library()
    class_room.beat(lib, current().actor, path, following())
    sig = _signature(lib, path)
    if sig != st.session_state.get(_SIG):  # a question opened, was revealed or closed here: redraw the page
        st.session_state[_SIG] = sig
        st.rerun(scope="app")
    where = follow.presenting(lib)
    if following():
        move = follow.follow_move(where, page=path, query=urlstate.query(), seen_at=st.session_state.get(_SEEN))
        if move is not None:
            _take(move)
    run = teachers_live_run(lib)
    if where is None and run is None:
        return
    text = f"📽 The teacher is on **{where.title}**" if where else "📽 The teacher"
    if run is not None:
        p = run.progress
        if run.status == "running" and p is not None:
            live = f"epoch {p.epoch}/{run.epochs}, {p.fraction:.0%}"
        else:
            live = run.status
        text += f" · live run: **{run.name}** ({live})"
    with st.container(border=True, key="class_banner"):
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.markdown(text)
        if where is None:
            return
        if following():
            c1.caption("Your screen follows the teacher's.")
            if c2.button("Explore on my own", key="follow_leave", width="stretch"):
                st.session_state[_FOLLOWING] = False
                st.rerun(scope="fragment")
        elif c2.button("Follow the teacher", key="follow_jump", type="primary", width="stretch"):
            st.session_state[_FOLLOWING] = True
            st.session_state.pop(_SEEN, None)  # take the teacher's page and what it shows now
            st.rerun(scope="fragment")


# ---- predict, then reveal ------------------------------------------------------------------------------------

def question_gate(page: str) -> None:
    """The page's question: the teacher's "Ask the class" box, a student's answer, or after the reveal the tally
    beside the result. While the question is open, the rest of the page is not drawn (st.stop)."""
    settings = current()
    lib = runlib.library(settings)
    q = questions.current_question(lib, page)
    if q is None:
        if settings.actor.is_teacher and bank.questions_for(page):
            _ask_box(lib, page, settings)
        return
    if q.is_open:
        with st.container(border=True, key="class_question"):
            st.subheader(f"❓ Predict: {q.prompt}")
            if settings.actor.is_teacher:
                st.fragment(_teacher_open, run_every=POLL_S)(q.id, page)
            else:
                _student_answer(lib, q, settings)
        st.info("The results on this page are hidden for everyone until you reveal the answers."
                if settings.actor.is_teacher else
                "The results on this page are hidden until the teacher reveals the answers: predict first.",
                icon=":material/visibility_off:")
        st.stop()
    _revealed_box(lib, q, page, settings)


def _ask_box(lib, page: str, settings: LabSettings) -> None:
    specs = bank.questions_for(page)
    with st.expander("❓ Ask the class: predict, then reveal"):
        pick = st.selectbox("Question", range(len(specs)), format_func=lambda i: specs[i].prompt, key="q_pick")
        st.caption("Students answer from their devices; this page's results are hidden for everyone until you "
                   "reveal the tally beside the lab's result.")
        if st.button("Open the question", key="q_open", type="primary"):
            with friendly_errors("Opening the question"):
                s = specs[pick]
                questions.open_question(lib, page, s.prompt, s.choices, key=s.key, actor=settings.actor)
                st.rerun()


def _student_answer(lib, q: questions.Question, settings: LabSettings) -> None:
    voter = voter_id(settings.actor)
    mine = questions.my_answer(lib, q.id, voter)
    choice = st.radio("Your prediction", q.choices, index=q.choices.index(mine) if mine in q.choices else None,
                      key=f"q_choice:{q.id}")
    # Never disabled: a disabled button waits for the radio's rerun to come back, and on a busy server a student
    # tapping "Submit" first got nothing at all. The click carries the radio's value with it.
    if st.button("Submit my answer", key="q_submit", type="primary"):
        if choice is None:
            st.warning("Pick one of the answers first, then submit.")
        else:
            with friendly_errors("Answering"):
                questions.answer(lib, q.id, voter, choice)
                mine = choice
    if mine:
        st.success(f"Your answer: **{mine}**. You can change it until the teacher reveals.")


def _teacher_open(question_id: int, page: str) -> None:
    lib = runlib.library()
    settings = current()
    n = questions.answer_count(lib, question_id)
    st.markdown(f"**{n}** answer{'s' if n != 1 else ''} so far.")
    c1, c2, _ = st.columns([1, 1, 3])
    if c1.button("Reveal the answers", key="q_reveal", type="primary"):
        with friendly_errors("Revealing"):
            q = questions.get_question(lib, question_id)
            spec = _spec(q, page)
            actual = bank.actual_answer(spec, _best(spec, settings)[0]) if spec else None
            questions.reveal(lib, question_id, actor=settings.actor, actual=actual)
            st.rerun(scope="app")
    if c2.button("Close the question", key="q_close"):
        with friendly_errors("Closing"):
            questions.close(lib, question_id, actor=settings.actor)
            st.rerun(scope="app")


def _spec(q: questions.Question, page: str) -> bank.QuestionSpec | None:
    try:
        return bank.spec(page, q.key) if q.key else None
    except LabError:
        return None


def _best(spec: bank.QuestionSpec, settings: LabSettings) -> tuple[dict[str, float | None], str]:
    """Each compared preset's best completed test accuracy on the class dataset, and a line that says them."""
    from core.lessons.presets import get_preset

    runs = runlib.best_runs(list(spec.presets), settings.dataset)
    accs = {p: (r.best_test_acc if r.status == "completed" else None) for p, r in runs.items()}
    line = " · ".join(f"{get_preset(p).title}: {pct(accs.get(p))}" for p in spec.presets)
    return accs, line


def _revealed_box(lib, q: questions.Question, page: str, settings: LabSettings) -> None:
    tally = questions.tally(lib, q.id)
    with st.container(border=True, key="class_reveal"):
        st.subheader(f"❓ {q.prompt}")
        left, right = st.columns([3, 2])
        show_chart(left, charts_class.tally_chart(tally.to_rows(), q.actual), width="stretch")
        spec = _spec(q, page)
        if q.actual:
            right.metric("The lab's result", q.actual)
        else:
            right.markdown("**The lab's result:** on this page below (not enough finished runs to call it when "
                           "the answers were revealed)." if spec and spec.kind != "open" else
                           "**The lab's result:** in the chart below - compare it with your prediction.")
        if spec and spec.kind != "open":
            right.caption(_best(spec, settings)[1] + f" (best finished runs on {settings.dataset_label})")
        right.caption(f"{tally.total} answer{'s' if tally.total != 1 else ''}.")
        mine = None if settings.actor.is_teacher else questions.my_answer(lib, q.id, voter_id(settings.actor))
        if mine:
            right.markdown(f"You predicted **{mine}**" + ((" ✅" if mine == q.actual else " ❌") if q.actual else ""))
        if settings.actor.is_teacher and right.button("Close the question", key="q_close_revealed"):
            with friendly_errors("Closing"):
                questions.close(lib, q.id, actor=settings.actor)
                st.rerun()
