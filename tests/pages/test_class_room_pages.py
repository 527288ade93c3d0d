"""The teacher's class box in the app: the passcode never drawn in presenter mode (and elsewhere only after
"Show passcode"), the join code, the roster naming a student, and wrong passcodes slowed per address.

AppTest connects from "loopback", so it is the teacher; CIFAR_LAB_LOCAL_TEACHER=0 makes it a student (every
AppTest session then comes from the same address, "loopback")."""

from core.classroom import attempts, follow, roster
from core.classroom.roles import TEACHER
from core.cli.main import main as cli_main
from core.runs.library import open_library
from tests.pages.conftest import problems

CODE = "owl-7731-kite"


def rendered(at) -> str:
    """Every element's protobuf of the whole tree (main and sidebar), as text: what the browser is sent."""
    out = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def test_presenter_mode_never_draws_the_passcode(open_page, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", CODE)
    at = open_page("home", state={"presenter": True, "passcode_reveal": True}, dataset_kind="synthetic")
    assert problems(at) == []
    text = rendered(at)
    assert "You are the teacher" in text and "Hidden in presenter mode" in text
    assert CODE not in text and "owl" not in text
    assert not [t for t in at.sidebar.toggle if t.key == "passcode_reveal"]
    assert [t.key for t in at.sidebar.toggle if t.key == "class_lead"] == ["class_lead"]  # apart from it
    assert "Students open **http://" in text  # the join code is there, the passcode is not


def test_the_passcode_shows_only_after_a_deliberate_reveal(open_page, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", CODE)
    at = open_page("home", dataset_kind="synthetic")
    assert CODE not in rendered(at)
    assert [t.value for t in at.sidebar.toggle if t.key == "passcode_reveal"] == [False]
    at = open_page("home", state={"passcode_reveal": True}, dataset_kind="synthetic")
    assert f"Teacher passcode: `{CODE}`" in rendered(at) and "$CIFAR_LAB_PASSCODE" in rendered(at)


def test_the_roster_names_a_student_and_the_join_code_shows_large(open_page, lab_dirs, monkeypatch):
    _, runs = lab_dirs
    lib = open_library(runs, recover=False)
    monkeypatch.setenv("CIFAR_LAB_JOIN_URL", "http://192.168.7.7:8501")
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    student = open_page("home", nick="Ana", dataset_kind="synthetic")  # her page sends its heartbeat
    assert problems(student) == []
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "1")
    roster.heartbeat(lib, "another-tab", "Ben", "pages/transfer.py")
    follow.present(lib, "pages/home.py", "Report card", actor=TEACHER)  # the teacher's previous page run
    at = open_page("home", state={"class_join_show": True}, dataset_kind="synthetic")
    text = rendered(at)
    assert "👥 **2** online · **2** follow you · **1** on your page" in text  # both follow; Ana is on the teacher's page (home), Ben is not
    assert "**Online:** Ana, Ben" in text and "**Not on your page:** Ben" in text
    assert "## http://192.168.7.7:8501" in text  # the join panel above the page
    assert text.count(".png\"") >= 2  # the QR codes, lossless: the sidebar's and the large one


def test_wrong_passcodes_are_slowed_per_address_and_the_teacher_sees_them(open_page, lab_dirs, monkeypatch):
    _, runs = lab_dirs
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", CODE)
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    said = []
    for i in range(8):  # each a fresh tab (a new session) on the same address
        at = open_page("home", state={"teacher_code": f"guess-{i}"}, dataset_kind="synthetic")
        said += [e.value for e in at.sidebar.error]
        assert any(c.value.startswith("You are a student") for c in at.sidebar.caption)
    assert said[:3] == ["Wrong passcode."] * 2 + ["Wrong passcode. Wait 5 s before the next try."]
    assert all(s.startswith("Too many wrong passcodes from this browser or network: wait ") for s in said[3:])
    at = open_page("home", state={"teacher_code": CODE}, dataset_kind="synthetic")  # the right one waits too
    assert any(c.value.startswith("You are a student") for c in at.sidebar.caption)
    lib = open_library(runs, recover=False)
    assert attempts.summary(lib).failures == 3

    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "1")  # the teacher on the server's machine sees the tries
    at = open_page("home", dataset_kind="synthetic")
    assert any(w.value.startswith("3 wrong passcode tries in the last hour from 1 address") for w in at.warning)
    assert at.button(key="passcode_forgive").label == "Lift the waits"
    assert cli_main(["class", "forgive", "--runs-dir", str(runs)]) == 0  # the same from the server's terminal
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    at = open_page("mlp_vs_cnn", state={"teacher_code": CODE}, dataset_kind="synthetic")
    assert not [b for b in at.button if b.label.startswith("▶ Start")][0].disabled


def test_a_weak_passcode_is_refused_with_the_reason(open_page, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "owl")
    at = open_page("home", dataset_kind="synthetic")  # the teacher on the server's machine is told why
    assert any("3 characters, fewer than 8" in e.value for e in at.sidebar.error)
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    at = open_page("home", state={"teacher_code": "owl"}, dataset_kind="synthetic")
    assert any(c.value.startswith("You are a student") for c in at.sidebar.caption)
    assert at.sidebar.text_input(key="teacher_code").disabled
    assert "3 characters" not in rendered(at)  # no hint for a guess
