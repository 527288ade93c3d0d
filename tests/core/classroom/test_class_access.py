"""Class mode's doors: which passcode the server uses (and `class show` says), the strength rule, the limiter on
wrong passcodes (an injected clock, no sleeps), the join address and the roster of who is in class."""

import json

import pytest

from core.classroom import access, attempts, join, questions, roster
from core.classroom.roles import TEACHER, PermissionDenied, student
from core.cli.main import main as cli_main
from core.errors import LabError
from core.runs.library import open_library

STRONG = "owl-7731-kite"


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def lib(tmp_path):
    return open_library(tmp_path / "runs", recover=False)


# ---- which passcode, and is it strong enough -------------------------------------------------------------

def test_env_then_secrets_then_the_stored_file(tmp_path):
    runs = tmp_path / "runs"
    home, local = tmp_path / "home.toml", tmp_path / "local.toml"
    files = (home, local)
    assert access.resolve_passcode(runs, environ={}, secrets_files=files, create=False) is None
    made = access.resolve_passcode(runs, environ={}, secrets_files=files)
    assert made.source == "new" and not made.problem and len(made.code) == 10
    stored = access.resolve_passcode(runs, environ={}, secrets_files=files, create=False)
    assert (stored.code, stored.source, stored.path) == (made.code, "file", runs / "teacher-passcode")
    home.write_text('teacher_passcode = "home-Secret-1"\n')
    local.write_text('other = 1\n')
    got = access.resolve_passcode(runs, environ={}, secrets_files=files)
    assert (got.code, got.source, got.path) == ("home-Secret-1", "secrets", home.resolve())
    local.write_text('teacher_passcode = "local-Secret-2"\n')  # the later file wins, as in Streamlit
    assert access.resolve_passcode(runs, environ={}, secrets_files=files).code == "local-Secret-2"
    assert access.resolve_passcode(runs, environ={"CIFAR_LAB_PASSCODE": STRONG}, secrets_files=files).where == \
        "$CIFAR_LAB_PASSCODE"
    local.write_text("teacher_passcode = \n")
    with pytest.raises(LabError, match="cannot read the secrets file"):
        access.resolve_passcode(runs, environ={}, secrets_files=files)


@pytest.mark.parametrize("code, refused", [
    ("owl", "3 characters"), ("owl-7731", ""), ("aaaaaaaaaaaa", "different characters"),
    ("password1", "well-known"), ("12345678", "well-known"), ("83920174", "too easy"), ("k3j9x2p7", ""),
    ("correcthorse", ""), (STRONG, ""), ("0123456789", "well-known")])
def test_the_strength_rule(code, refused):
    problem = access.passcode_problem(code)
    assert (refused in problem and problem) if refused else problem == ""


def test_a_refused_passcode_unlocks_nothing():
    weak = access.Passcode("owl", "env", None)
    assert not access.passcode_matches("owl", weak)
    assert not access.token_is_valid(access.teacher_token(weak, 1_000_000), weak, now_s=1_000_000)
    strong = access.Passcode(STRONG, "env", None)
    assert access.passcode_matches(f" {STRONG} ", strong)


def test_class_show_says_the_servers_passcode_and_where_it_comes_from(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(access.PASSCODE_ENV, raising=False)
    monkeypatch.setattr(access, "SECRETS_FILES", (".streamlit/secrets.toml",))

    def show() -> dict:
        capsys.readouterr()
        rc = cli_main(["class", "show", "--runs-dir", str(runs), "--json"])
        state = json.loads(capsys.readouterr().out)
        state["rc"] = rc
        return state

    state = show()
    assert state["passcode"]["code"] is None and "first start" in state["passcode"]["where"]
    server = access.resolve_passcode(runs)  # what the server does at its first page
    state = show()
    assert (state["passcode"]["code"], state["passcode"]["source"]) == (server.code, "file")
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(f'teacher_passcode = "{STRONG}"\n')
    state = show()
    assert (state["passcode"]["code"], state["passcode"]["source"]) == (STRONG, "secrets")
    assert state["passcode"]["where"].endswith(".streamlit/secrets.toml") and state["rc"] == 0
    assert access.resolve_passcode(runs).code == STRONG  # the server agrees
    monkeypatch.setenv(access.PASSCODE_ENV, "owl")
    state = show()
    assert state["passcode"]["where"] == "$CIFAR_LAB_PASSCODE" and state["rc"] == 1
    assert "3 characters, fewer than 8" in state["passcode"]["problem"]
    cli_main(["class", "show", "--runs-dir", str(runs)])
    assert "REFUSED" in capsys.readouterr().out


# ---- the limiter -----------------------------------------------------------------------------------------

def test_the_wait_doubles_after_a_few_free_typos():
    assert [attempts.wait_after(n) for n in range(1, 8)] == [0, 0, 5, 10, 20, 40, 80]
    assert attempts.wait_after(50) == attempts.MAX_WAIT_S


def test_a_scripted_student_trying_200_passcodes_gets_a_handful_per_minute(lib):
    clock = Clock()
    passcode = access.Passcode(STRONG, "env", None)
    judged: list[float] = []
    for i in range(200):
        guess = f"guess-{i:04d}"
        a = attempts.try_passcode(lib, session="s-eve", address="10.0.0.66", clock=clock,
                                  check=lambda g=guess: access.passcode_matches(g, passcode))
        assert not a.ok
        if a.allowed:
            judged.append(clock.t)
        clock.t += 1.0  # one try a second, as fast as the page reruns
    assert len(judged) <= 10  # 200 seconds: 3 free typos, then 5, 10, 20, 40, 80 s waits
    per_minute = max(sum(1 for t in judged if start <= t < start + 60) for start in judged)
    assert per_minute <= attempts.MAX_PER_MINUTE
    # a new tab (new session) on the same address still waits; another address is judged at once
    blocked = attempts.try_passcode(lib, session="s-eve-2", address="10.0.0.66", clock=clock, check=lambda: True)
    assert not blocked.allowed and blocked.wait_s > 0
    teacher = attempts.try_passcode(lib, session="s-teach", address="10.0.0.2", clock=clock,
                                    check=lambda: access.passcode_matches(STRONG, passcode))
    assert teacher.allowed and teacher.ok
    s = attempts.summary(lib, clock=clock)
    assert (s.failures, s.addresses, s.sessions) == (len(judged), 1, 1) and s.waiting >= 2


def test_a_refused_try_never_looks_at_the_passcode_and_waits_run_out(lib):
    clock = Clock()
    for _ in range(3):
        assert attempts.try_passcode(lib, session="a", address="x", check=lambda: False, clock=clock).allowed
    looked = []
    a = attempts.try_passcode(lib, session="a", address="x", check=lambda: looked.append(1) or True, clock=clock)
    assert not a.allowed and a.wait_s == 5.0 and looked == []
    clock.t += 5.0
    a = attempts.try_passcode(lib, session="a", address="x", check=lambda: True, clock=clock)
    assert a.allowed and a.ok  # the right passcode after the wait, and the slate is clean
    assert attempts.try_passcode(lib, session="a", address="x", check=lambda: False, clock=clock).wait_s == 0


def test_the_teacher_lifts_the_waits_and_an_hour_forgets(lib):
    clock = Clock()
    for step in (0, 0, 0, 5):  # three free typos, then one after the 5 s wait: 10 s to wait now
        clock.t += step
        assert attempts.try_passcode(lib, session="a", address="nat", check=lambda: False, clock=clock).allowed
    assert not attempts.try_passcode(lib, session="b", address="nat", check=lambda: True, clock=clock).allowed
    with pytest.raises(PermissionDenied):
        attempts.forgive(lib, actor=student("Eve"), clock=clock)
    attempts.forgive(lib, actor=TEACHER, clock=clock)
    assert attempts.summary(lib, clock=clock).failures == 4 and attempts.summary(lib, clock=clock).waiting == 0
    assert attempts.try_passcode(lib, session="b", address="nat", check=lambda: True, clock=clock).ok
    for _ in range(6):
        attempts.try_passcode(lib, session="c", address="y", check=lambda: False, clock=clock)
    clock.t += attempts.FORGET_S + 1
    assert attempts.try_passcode(lib, session="c", address="y", check=lambda: True, clock=clock).ok


# ---- the join address ------------------------------------------------------------------------------------

def _no_route() -> str:
    raise OSError("network is unreachable")


def test_the_join_address():
    lan = (lambda: "192.168.1.23", lambda: "127.0.1.1")
    assert join.lan_ip(lan) == "192.168.1.23"
    assert join.lan_ip((_no_route, lambda: "10.1.2.3")) == "10.1.2.3"
    assert join.lan_ip((_no_route, lambda: "127.0.1.1")) == "127.0.0.1"
    got = join.join_address(port=8501, environ={}, lan=lambda: "192.168.1.23")
    assert (got.url, got.source, got.warning) == ("http://192.168.1.23:8501", "lan", "")
    got = join.join_address(port=8502, server_address="lab.school.org", base_path="/cifar/", environ={},
                            lan=lambda: "192.168.1.23")
    assert (got.url, got.source) == ("http://lab.school.org:8502/cifar", "browser.serverAddress")
    got = join.join_address(port=8501, bind_address="fe80::1", environ={}, lan=lambda: "x")
    assert got.url == "http://[fe80::1]:8501"
    got = join.join_address(port=8501, bind_address="127.0.0.1", environ={}, lan=lambda: "x")
    assert "--server.address 0.0.0.0" in got.warning
    got = join.join_address(port=8501, environ={}, lan=lambda: "127.0.0.1")
    assert "CIFAR_LAB_JOIN_URL" in got.warning
    env = {"CIFAR_LAB_JOIN_URL": "https://lab.example.org/x"}
    assert join.join_address(port=1, server_address="a", environ=env).url == "https://lab.example.org/x"


def test_lan_ip_needs_no_network():
    ip = join.lan_ip()  # whatever this machine has; a UDP connect() sends nothing
    assert ip and ip.count(".") == 3


# ---- the roster ------------------------------------------------------------------------------------------

def test_the_roster_counts_who_is_online_follows_and_answered(lib):
    clock = Clock()
    roster.heartbeat(lib, "s1", "Ana", "pages/mlp_vs_cnn.py", clock=clock)
    roster.heartbeat(lib, "s2", "Ben", "pages/home.py", clock=clock)
    roster.heartbeat(lib, "s3", "", "pages/mlp_vs_cnn.py", follows=False, clock=clock)
    roster.heartbeat(lib, "s4", "Old", "pages/mlp_vs_cnn.py", clock=Clock(clock.t - roster.ONLINE_S - 1))
    q = questions.open_question(lib, "mlp_vs_cnn", "Which wins?", ["MLP", "CNN"], actor=TEACHER)
    questions.answer(lib, q.id, "Ana", "CNN")
    questions.answer(lib, q.id, "Old", "CNN")
    r = roster.roster(lib, presenting_page="pages/mlp_vs_cnn.py", question_id=q.id, clock=clock)
    assert r.online == (roster.NO_NICK, "Ana", "Ben")
    assert r.on_page == (roster.NO_NICK, "Ana") and r.elsewhere == ("Ben",)  # where they are
    assert r.following == ("Ana", "Ben") and r.not_following == (roster.NO_NICK,)  # what they chose
    assert r.answered == ("Ana",) and r.question_open
    roster.leave(lib, "s1")
    r = roster.roster(lib, presenting_page=None, question_id=None, clock=clock)
    assert r.online == (roster.NO_NICK, "Ben") and r.on_page == () and not r.question_open


def test_a_heartbeat_is_written_only_when_due():
    last = roster.Beat("Ana", "pages/home.py", 100.0)
    assert roster.needs_beat(None, "Ana", "pages/home.py", 100.0)
    assert not roster.needs_beat(last, "Ana", "pages/home.py", 105.0)
    assert roster.needs_beat(last, "Ana", "pages/transfer.py", 101.0)
    assert roster.needs_beat(last, "Ana", "pages/home.py", 100.0 + roster.BEAT_EVERY_S)
    assert roster.needs_beat(last, "Ana", "pages/home.py", 101.0, follows=False)  # "Explore on my own" shows now


def test_a_presence_table_from_before_the_follow_choice_gains_it(lib):
    with lib.transaction() as conn:
        conn.execute("CREATE TABLE class_presence (session TEXT PRIMARY KEY, nick TEXT NOT NULL, "
                     "page TEXT NOT NULL, seen REAL NOT NULL)")
        conn.execute("INSERT INTO class_presence VALUES ('s0', 'Eve', 'pages/home.py', ?)", (Clock().t,))
    r = roster.roster(lib, presenting_page="pages/home.py", question_id=None, clock=Clock())
    assert r.following == ("Eve",) and r.on_page == ("Eve",)
