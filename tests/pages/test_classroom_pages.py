"""Class mode in the app: a student on the plain URL starts from the class settings and sees the teacher's run
without working controls; the follow-the-teacher banner; a question before and after the reveal.

AppTest connects from "loopback", so it is the teacher; CIFAR_LAB_LOCAL_TEACHER=0 makes it a student."""

import os

import pytest

from core.classroom import follow, questions
from core.classroom import settings as class_settings
from core.classroom.roles import TEACHER, student
from core.lessons.presets import preset_config
from core.runs.library import open_library
from core.runs.supervisor import HOST
from tests.pages.conftest import problems
from ui import class_mode


@pytest.fixture
def classroom(lab_dirs, monkeypatch):
    """A class on the synthetic set with the teacher's MLP running (a live heartbeat from this process)."""
    _, runs = lab_dirs
    lib = open_library(runs, recover=False)
    class_settings.save(lib, "synthetic", 500, 200)
    lib.set_stale_after_s(3600)  # no trainer process here: keep recover() from failing the run
    config = preset_config("mlp", dataset="synthetic", subset=500, test_subset=200, epochs=3, device="cpu")
    run_id = lib.insert_run(config, device="cpu", status="running", started_by="app", preset="mlp",
                            name="teacher's MLP", pid=os.getpid(), host=HOST)
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    return lib, run_id


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_a_student_on_the_plain_url_sees_the_class_dataset_and_the_teachers_run(open_page, classroom):
    lib, run_id = classroom
    config = lib.get(run_id).config  # a newer queued run of the teacher's: the panel still shows the running one
    lib.insert_run(config, device="cpu", status="queued", started_by="app", preset="mlp", name="teacher's next")
    at = open_page("mlp_vs_cnn")  # no query parameters: the plain URL
    assert problems(at) == []
    settings = at.session_state["_lab_settings"]  # AppTest keeps the sidebar only in the first run's tree
    assert (settings.dataset, settings.subset, settings.test_subset) == ("synthetic", 500, 200)
    assert settings.actor.role == "student" and not settings.can_control
    assert "500 training images · on **Synthetic**" in markdown(at)
    assert "teacher's MLP** — running" in markdown(at)
    stop = at.button(key=f"nets:stop:{run_id}")
    assert stop.disabled
    assert at.button(key="nets:start").disabled  # no nickname yet
    at = open_page("runs", run=run_id)
    assert at.button(key=f"delete:{run_id}").disabled
    assert at.checkbox(key=f"sure:{run_id}").disabled
    assert lib.get(run_id).status == "running" and not lib.get(run_id).stop_requested


def test_a_student_with_a_nickname_starts_a_run_beside_the_teachers(open_page, classroom, monkeypatch):
    lib, run_id = classroom
    started = []
    monkeypatch.setattr(type(lib.supervisor), "spawn", lambda self, rid: started.append(rid))
    at = open_page("mlp_vs_cnn", nick="Ana")
    at.button(key="nets:start").click().run()
    assert problems(at) == []
    mine = [r for r in lib.list_runs() if r.by_student]
    assert [(r.by_name, r.preset, r.status) for r in mine] == [("Ana", "mlp", "queued")]
    text = markdown(at)
    assert "**The teacher's run**" in text and "**Your run** (Ana)" in text
    assert not at.button(key=f"nets:mine:stop:{mine[0].id}").disabled  # her own run: she may stop it
    assert at.button(key=f"nets:stop:{run_id}").disabled
    at.button(key="nets:start").click().run()  # a second one: over the quota, a message, nothing queued
    assert any("already has 1 run" in e for e in problems(at))
    assert len([r for r in lib.list_runs() if r.by_student]) == 1


def test_the_banner_shows_the_teachers_page_and_live_run(open_page, classroom):
    lib, _ = classroom
    follow.present(lib, "pages/transfer.py", "Transfer learning", actor=TEACHER)
    at = open_page("home", state={"class_following": False})  # exploring on her own: the banner, no move
    assert "The teacher is on **Transfer learning** · live run: **teacher's MLP**" in markdown(at)
    jump = at.button(key="follow_jump")
    assert jump.label == "Follow the teacher" and not jump.disabled
    # (AppTest re-runs only the page script after the first run, so the move itself is checked in Chromium)
    # the poll is started after the page ran, but its banner is drawn in the place kept for it above the page
    texts = [m.value for m in at.markdown]
    banner_at = next(i for i, t in enumerate(texts) if "The teacher is on" in t)
    assert banner_at < next(i for i, t in enumerate(texts) if "report" in t.lower())
    assert class_mode.POLL_MIN_S <= at.session_state[class_mode.POLL_KEY] <= class_mode.POLL_S


def test_a_following_student_is_taken_to_the_teachers_page_and_choices(open_page, classroom):
    lib, _ = classroom
    follow.present(lib, "pages/mlp_vs_cnn.py", "MLP vs CNN", {"nets_preset": "cnn", "nick": "Teacher"},
                   actor=TEACHER)
    at = open_page("home", nick="Ana")  # following by default: no click
    assert at.query_params["nets_preset"] == "cnn"
    assert at.query_params["nick"] == "Ana"  # her own name stays hers
    assert at.selectbox(key="nets_preset").value == "cnn"


def test_the_teacher_leads_by_opening_pages(open_page, lab_dirs):
    _, runs = lab_dirs
    open_page("home")  # loopback: the teacher (AppTest runs app.py only for the first page it opens)
    assert follow.presenting(open_library(runs, recover=False)).page == "pages/home.py"


def test_a_question_hides_the_results_until_the_reveal(open_page, classroom, monkeypatch):
    lib, _ = classroom
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "1")
    at = open_page("mlp_vs_cnn")  # the teacher opens the first question of the page
    at.button(key="q_open").click().run()
    q = questions.current_question(lib, "mlp_vs_cnn")
    assert q is not None and q.is_open and q.key == "higher"

    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    at = open_page("mlp_vs_cnn", nick="Ana")
    text = markdown(at)
    assert f"Predict: {q.prompt}" in "\n".join(s.value for s in at.subheader)
    assert not at.success and "teacher's MLP" not in text  # no run panel, no result
    captions = " ".join(c.value for c in at.caption)
    assert "The report" not in captions and "report:" not in captions and "26%" not in captions
    assert not [s for s in at.subheader if s.value == "Side by side"] and not at.get("vega_lite_chart")
    at.radio(key=f"q_choice:{q.id}").set_value("CNN").run()
    at.button(key="q_submit").click().run()
    assert questions.my_answer(lib, q.id, "Ana") == "CNN"
    assert any("Your answer: **CNN**" in s.value for s in at.success)

    questions.answer(lib, q.id, "Ben", "MLP")
    questions.reveal(lib, q.id, actor=TEACHER, actual="CNN")
    at = open_page("mlp_vs_cnn", nick="Ana")
    assert problems(at) == []
    assert [m.value for m in at.metric if m.label == "The lab's result"] == ["CNN"]
    assert "You predicted **CNN** ✅" in markdown(at)
    assert [s for s in at.subheader if s.value == "Side by side"]  # the page's results are back
    assert any("The report" in c.value for c in at.caption)
    with pytest.raises(Exception, match="answers are closed"):
        questions.answer(lib, q.id, student("Cy").name, "MLP")
