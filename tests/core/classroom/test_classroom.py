"""Class mode in core: roles enforced by the run library, the quota and queue order, class settings, the passcode
and loopback rule, follow-the-teacher state and predict-then-reveal questions (no trainer processes)."""

import json
import os
import sqlite3
import stat
import time

import pytest

from core.classroom import access, bank, follow, questions
from core.classroom import settings as class_settings
from core.classroom.roles import TEACHER, PermissionDenied, QuotaExceeded, student
from core.cli.main import main as cli_main
from core.config import DataConfig, ModelConfig, TrainConfig
from core.errors import ConfigError, DataError, LabError
from core.runs import lifecycle
from core.runs import store as runs_store
from core.runs.library import open_library
from tests.fakes import write_image_folder

ANA, BEN = student("Ana"), student("Ben")


def tiny(**kw) -> TrainConfig:
    return TrainConfig(data=DataConfig(dataset="synthetic", subset=200, test_subset=100),
                       model=ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 32}), batch_size=50, epochs=2,
                       device="cpu", **kw)


@pytest.fixture
def lib(tmp_path, monkeypatch):
    """A library whose kick() claims runs but starts no process."""
    library = open_library(tmp_path / "runs")
    library.spawned = []
    monkeypatch.setattr(library.supervisor, "spawn", lambda run_id: library.spawned.append(run_id))
    return library


# ---- roles -------------------------------------------------------------------------------------------

def test_a_student_cannot_touch_the_teachers_run(lib):
    run_id = lib.submit(tiny(), name="teacher's cnn")
    assert lib.get(run_id).by_role == "teacher" and lib.get(run_id).status == "running"
    for what, act in (("stop", lambda: lib.request_stop(run_id, actor=ANA)),
                      ("delete", lambda: lib.delete(run_id, actor=ANA)),
                      ("rename", lambda: lib.rename(run_id, "mine now", actor=ANA)),
                      ("annotate", lambda: lib.annotate(run_id, notes="x", actor=ANA))):
        with pytest.raises(PermissionDenied, match=f"the teacher's: only its owner or the teacher may {what}"):
            act()
    run = lib.get(run_id)
    assert (run.status, run.name, run.stop_requested, run.notes) == ("running", "teacher's cnn", False, None)
    lib.request_stop(run_id, actor=ANA.__class__("teacher", "teacher"))  # the teacher may
    assert lib.get(run_id).stop_requested


def test_a_student_may_stop_rename_resume_and_delete_only_their_own_run(lib):
    lib.submit(tiny(), name="teacher")  # occupies the cpu slot
    mine = lib.submit(tiny(), name="ana's", actor=ANA)
    run = lib.get(mine)
    assert (run.by_role, run.by_name, run.status) == ("student", "Ana", "queued")
    with pytest.raises(PermissionDenied, match="Ana's"):
        lib.request_stop(mine, actor=BEN)
    lib.rename(mine, "ana v2", actor=ANA)
    assert lib.request_stop(mine, actor=ANA) == "stopped"
    with pytest.raises(PermissionDenied):
        lib.resume(mine, actor=BEN)
    lib.resume(mine, actor=ANA)  # never trained: starts over, queued again
    assert lib.get(mine).status == "queued"
    lib.request_stop(mine, actor=ANA)
    with pytest.raises(PermissionDenied):
        lib.delete(mine, actor=BEN)
    lib.delete(mine, actor=ANA)
    assert lib.find(mine) is None


def test_the_quota_counts_queued_and_running_runs_per_student(lib):
    first = lib.submit(tiny(), actor=ANA)
    with pytest.raises(QuotaExceeded, match="Ana already has 1 run.*allows 1 per student"):
        lib.submit(tiny(), actor=ANA)
    lib.submit(tiny(), actor=BEN)  # another student has their own quota
    assert lib.active_runs_of(ANA) == 1 and lib.active_runs_of(BEN) == 1
    lib.request_stop(first, actor=ANA)
    second = lib.submit(tiny(), actor=ANA)  # a run asked to stop does not count: Stop then Start works
    with lib.connect() as conn:  # ... and its trainer stops it
        conn.execute("UPDATE runs SET status = 'stopped' WHERE id = ?", (first,))
    with pytest.raises(QuotaExceeded):
        lib.resume(first, actor=ANA)  # resuming queues it again: counts too
    lib.request_stop(second, actor=ANA)
    class_settings.set_student_quota(lib, 2)
    lib.submit(tiny(), actor=ANA)
    lib.resume(first, actor=ANA)
    assert lib.active_runs_of(ANA) == 2
    for _ in range(3):
        lib.submit(tiny())  # the teacher has no quota
    class_settings.set_student_quota(lib, 0)
    with pytest.raises(QuotaExceeded, match="allows 0"):
        lib.submit(tiny(), actor=BEN)


def test_batches_and_sweeps_are_the_teachers(lib):
    jobs = [(tiny(), f"r{i}", None) for i in range(3)]
    with pytest.raises(PermissionDenied, match="only the teacher may queue the whole report"):
        lib.submit_many(jobs, actor=ANA, what="queue the whole report")
    with pytest.raises(PermissionDenied, match="queue a sweep"):
        lib.submit(tiny(), sweep_id="s1", actor=ANA)
    assert lib.list_runs() == []  # nothing half-queued
    assert len(lib.submit_many(jobs)) == 3
    with pytest.raises(PermissionDenied):
        class_settings.save(lib, "synthetic", 100, 100, actor=ANA)
    with pytest.raises(PermissionDenied):
        class_settings.set_student_quota(lib, 5, actor=ANA)


def test_students_runs_queue_behind_the_teachers(lib):
    running = lib.submit(tiny(), name="t0")
    a = lib.submit(tiny(), name="ana", actor=ANA)
    t1 = lib.submit(tiny(), name="t1")
    b = lib.submit(tiny(), name="ben", actor=BEN)
    t2 = lib.submit(tiny(), name="t2")
    assert lib.get(running).status == "running"
    order = [t1, t2, a, b]
    assert [lib.queue_position(r) for r in order] == [0, 1, 2, 3]
    lib.request_stop(running)
    with lib.connect() as conn:
        lifecycle.finish(conn, running, "failed", "test: freed the slot", now=time.time())
    assert lib.kick("cpu") == [t1]  # the teacher's next run, although Ana queued first


def test_cli_runs_are_the_teachers_and_old_libraries_migrate(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    conn = sqlite3.connect(root / runs_store.DB_NAME)
    for sql in runs_store.MIGRATIONS[:2]:
        conn.executescript(sql)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO settings VALUES ('max_per_device', '1'), ('stale_after_s', '20')")
    from core.config import to_json
    conn.execute("INSERT INTO runs (id, name, config, dataset, model, device, status, created) VALUES "
                 "('abc', 'old run', ?, 'synthetic', 'cnn', 'cpu', 'completed', 1.0)", (to_json(tiny()),))
    conn.commit()
    conn.close()
    lib = open_library(root, recover=False)
    old = lib.get("abc")
    assert (old.by_role, old.by_name) == ("teacher", "teacher")
    with pytest.raises(PermissionDenied):
        lib.delete("abc", actor=ANA)
    assert lib.get_setting("max_per_device") == "1"


# ---- class settings and the CLI ----------------------------------------------------------------------

def test_class_settings_survive_a_restart_and_bad_values_save_nothing(tmp_path):
    lib = open_library(tmp_path / "runs", recover=False)
    assert class_settings.load(lib) is None
    saved = class_settings.save(lib, "cifar10", 2000, 0, "cpu")
    assert (saved.subset, saved.test_subset, saved.check) == (2000, None, "")
    fresh = runs_store.RunStore(tmp_path / "runs")  # another process, after a restart
    again = class_settings.load(fresh)
    assert (again.dataset, again.subset, again.test_subset, again.device) == ("cifar10", 2000, None, "cpu")
    for bad in (dict(dataset="imagenet"), dict(subset=-1), dict(device="tpu"), dict(test_subset=1.5)):
        args = {"dataset": "cifar10", "subset": 10, "test_subset": 10, "device": "auto", **bad}
        with pytest.raises(ConfigError):
            class_settings.save(lib, **args)
    with pytest.raises(DataError, match="does not exist"):
        class_settings.save(lib, f"folder:{tmp_path / 'nope'}", 10, 10)
    assert class_settings.load(lib).dataset == "cifar10"


def test_a_folder_dataset_is_checked_when_set(tmp_path):
    folder = tmp_path / "pics"
    write_image_folder(folder, {"cat": (3, 2), "dog": (4, 1), "emu": (2, 2)}, size=8)
    lib = open_library(tmp_path / "runs", recover=False)
    saved = class_settings.save(lib, f"folder:{folder}", 6, 3)
    assert saved.check == f"3 classes, 9 training and 5 test images in {folder.resolve()}"
    (folder / "test" / "emu" / "0000.png").unlink()
    (folder / "test" / "emu" / "0001.png").unlink()
    with pytest.raises(DataError, match="class 'emu' has no test images"):
        class_settings.save(lib, f"folder:{folder}", 6, 3)


def test_class_cli_set_then_show(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(access.PASSCODE_ENV, raising=False)
    runs = str(tmp_path / "runs")
    assert cli_main(["class", "set", "--runs-dir", runs, "--dataset", "synthetic", "--subset", "500",
                     "--test-subset", "200", "--quota", "2"]) == 0
    capsys.readouterr()
    assert cli_main(["class", "show", "--runs-dir", runs, "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["class"]["dataset"] == "synthetic" and state["class"]["subset"] == 500
    assert state["class"]["test_subset"] == 200 and state["class"]["device"] == "auto"
    assert state["student_quota"] == 2 and state["passcode"]["code"] is None
    assert cli_main(["class", "set", "--runs-dir", runs, "--subset", "1000"]) == 0  # keeps the rest
    assert "1,000 training, 200 test" in capsys.readouterr().out
    assert cli_main(["class", "set", "--runs-dir", runs, "--dataset", f"folder:{tmp_path}/x"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["class", "set", "--runs-dir", runs, "--device", "tpu"]) == 2


def test_class_cli_minutes_per_run(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(access.PASSCODE_ENV, raising=False)
    runs = str(tmp_path / "runs")
    assert cli_main(["class", "show", "--runs-dir", runs]) == 0
    assert "budget       none" in capsys.readouterr().out
    assert cli_main(["class", "set", "--runs-dir", runs, "--minutes-per-run", "2"]) == 0
    assert "budget       2 minute(s) per run" in capsys.readouterr().out
    assert cli_main(["class", "show", "--runs-dir", runs, "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["minutes_per_run"] == 2.0 and state["class"]["dataset"] == "cifar100"  # the rest: defaults
    assert cli_main(["class", "set", "--runs-dir", runs, "--quota", "3"]) == 0  # keeps the budget
    assert "budget       2 minute(s)" in capsys.readouterr().out
    assert cli_main(["class", "set", "--runs-dir", runs, "--minutes-per-run", "-1"]) == 2
    assert cli_main(["class", "set", "--runs-dir", runs, "--minutes-per-run", "0"]) == 0
    assert "budget       none" in capsys.readouterr().out
    lib = open_library(runs, recover=False)
    with pytest.raises(LabError):
        class_settings.set_minutes_per_run(lib, 5, actor=student("ana"))


# ---- passcode and loopback ---------------------------------------------------------------------------

def test_a_teacher_token_holds_for_a_school_day_and_only_under_its_passcode():
    owl = access.Passcode("owl-7731-kite", "env", None)
    token = access.teacher_token(owl, issued_s=1_000_000)
    assert access.token_is_valid(token, owl, now_s=1_000_000)
    assert access.token_is_valid(token, access.Passcode(" owl-7731-kite ", "env", None), now_s=1_000_000 + 3600)
    assert not access.token_is_valid(token, owl, now_s=1_000_000 + access.TOKEN_MAX_AGE_S)  # expired
    assert not access.token_is_valid(token, access.Passcode("cat-4410-moth", "env", None), now_s=1_000_000)  # new one
    assert not access.token_is_valid(token, owl, now_s=1_000_000 - 3600)  # issued in the future
    forged = token.replace("v1.1000000.", "v1.1000100.")  # a later issue time needs a new signature
    for bad in (forged, None, "", "v1.x.y", "v2." + token[3:], token + "0", "v1.1000000"):
        assert not access.token_is_valid(bad, owl, now_s=1_000_050)


def test_the_passcode_is_made_once_kept_private_and_overridable(tmp_path):
    made = access.ensure_passcode(tmp_path / "runs")
    assert made.source == "new" and len(made.code) == 10 and made.path == tmp_path / "runs" / "teacher-passcode"
    assert stat.S_IMODE(os.stat(made.path).st_mode) == 0o600
    again = access.ensure_passcode(tmp_path / "runs")
    assert (again.code, again.source) == (made.code, "file")
    assert access.ensure_passcode(tmp_path / "runs", configured="s3cret").code == "s3cret"
    assert access.passcode_matches(f"  {made.code} ", made) and not access.passcode_matches("nope", made)


@pytest.mark.parametrize("ip, loopback", [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                          ("::ffff:127.0.0.1", True), ("10.0.0.7", False), ("192.168.1.5", False),
                                          ("2001:db8::1", False), ("", False), (None, False), ("localhost", False)])
def test_loopback_addresses(ip, loopback):
    assert access.is_loopback(ip) is loopback


def test_who_is_the_teacher():
    assert access.local_teacher_enabled({}) and not access.local_teacher_enabled({"CIFAR_LAB_LOCAL_TEACHER": "0"})
    assert access.is_teacher(loopback=True, unlocked=False, local_rule=True)
    assert not access.is_teacher(loopback=True, unlocked=False, local_rule=False)
    assert access.is_teacher(loopback=False, unlocked=True, local_rule=False)
    assert not access.is_teacher(loopback=False, unlocked=False, local_rule=True)


def test_nicknames():
    assert student("  Ana   María ").name == "Ana María"
    for bad in ("", "   ", "x" * 25, "<script>", "Teacher"):
        with pytest.raises(ConfigError):
            student(bad)


# ---- follow the teacher ------------------------------------------------------------------------------

def test_follow_keeps_the_teachers_page(lib):
    assert follow.presenting(lib) is None
    assert follow.present(lib, "pages/mlp_vs_cnn.py", "MLP vs CNN", actor=TEACHER, clock=lambda: 10.0)
    assert not follow.present(lib, "pages/mlp_vs_cnn.py", "MLP vs CNN", actor=TEACHER, clock=lambda: 11.0)
    assert follow.presenting(lib) == follow.Presenting("pages/mlp_vs_cnn.py", "MLP vs CNN", 10.0)
    with pytest.raises(PermissionDenied):
        follow.present(lib, "pages/runs.py", "Run library", actor=ANA)
    follow.present(lib, "pages/transfer.py", "Transfer learning", actor=TEACHER, clock=lambda: 12.0)
    assert follow.presenting(runs_store.RunStore(lib.root)).page == "pages/transfer.py"  # any process sees it
    follow.stop_presenting(lib, actor=TEACHER)
    assert follow.presenting(lib) is None


# ---- questions ---------------------------------------------------------------------------------------

def test_a_question_from_open_to_reveal(lib):
    q = questions.open_question(lib, "mlp_vs_cnn", "Which is higher?", ["MLP", "CNN", "Same"], actor=TEACHER,
                                key="higher")
    assert questions.current_question(lib, "mlp_vs_cnn") == q and q.is_open
    assert questions.current_question(lib, "transfer") is None
    with pytest.raises(PermissionDenied):
        questions.open_question(lib, "mlp_vs_cnn", "?", ["a", "b"], actor=ANA)
    questions.answer(lib, q.id, "Ana", "MLP")
    questions.answer(lib, q.id, "Ana", "CNN")  # changed her mind: still one answer
    questions.answer(lib, q.id, "Ben", "CNN")
    questions.answer(lib, q.id, "Cy", "Same")
    with pytest.raises(ConfigError, match="not a choice"):
        questions.answer(lib, q.id, "Dee", "RNN")
    assert questions.answer_count(lib, q.id) == 3 and questions.my_answer(lib, q.id, "Ana") == "CNN"
    with pytest.raises(PermissionDenied):
        questions.reveal(lib, q.id, actor=ANA)
    shown = questions.reveal(lib, q.id, actor=TEACHER, actual="CNN", clock=lambda: 5.0)
    assert (shown.status, shown.actual, shown.revealed) == ("revealed", "CNN", 5.0)
    t = questions.tally(lib, q.id)
    assert t.counts == (("MLP", 0), ("CNN", 2), ("Same", 1)) and t.total == 3
    assert t.share("CNN") == pytest.approx(2 / 3)
    with pytest.raises(LabError, match="answers are closed"):
        questions.answer(lib, q.id, "Eve", "MLP")
    with pytest.raises(LabError, match="nothing to reveal"):
        questions.reveal(lib, q.id, actor=TEACHER)
    questions.close(lib, q.id, actor=TEACHER)
    assert questions.current_question(lib, "mlp_vs_cnn") is None


def test_a_new_question_replaces_the_pages_previous_one(lib):
    first = questions.open_question(lib, "transfer", "One?", ["a", "b"], actor=TEACHER)
    second = questions.open_question(lib, "transfer", "Two?", ["c", "d"], actor=TEACHER)
    assert questions.current_question(lib, "transfer").id == second.id
    assert questions.get_question(lib, first.id).status == "closed"
    for bad in (["only one"], ["same", "same"], ["a", " "]):
        with pytest.raises(ConfigError):
            questions.open_question(lib, "transfer", "Bad?", bad, actor=TEACHER)


def test_the_bank_reads_the_actual_answer_from_the_runs():
    higher = bank.spec("mlp_vs_cnn", "higher")
    assert bank.actual_answer(higher, {"mlp": 0.26, "cnn": 0.30}) == "CNN"
    assert bank.actual_answer(higher, {"mlp": 0.31, "cnn": 0.30}) == "MLP"
    assert bank.actual_answer(higher, {"mlp": 0.300, "cnn": 0.305}).startswith("About the same")
    assert bank.actual_answer(higher, {"mlp": 0.26}) is None  # no CNN result yet
    crop = bank.spec("augmentation", "gain")
    assert crop.choices == ("It loses accuracy", "0 to 2 points", "2 to 5 points", "More than 5 points")
    assert [bank.actual_answer(crop, {"cnn-flip": 0.36, "cnn-flip-crop": b})
            for b in (0.35, 0.37, 0.39, 0.45)] == list(crop.choices)
    assert bank.actual_answer(bank.spec("sweeps", "lr"), {}) is None
    pages = {"mlp_vs_cnn", "filter_width", "regularization", "augmentation", "transfer", "sweeps", "more_data"}
    assert pages <= set(bank.BANK)
    from core.lessons.presets import PRESETS
    assert all(p in PRESETS for qs in bank.BANK.values() for q in qs for p in q.presets)
    with pytest.raises(LabError, match="no question 'x'"):
        bank.spec("mlp_vs_cnn", "x")


def test_the_teacher_publishes_what_the_page_shows_and_followers_take_it(lib):
    assert follow.present(lib, "pages/lr_finder.py", "LR finder", {"lrf_at": "10", "nick": "T", "presenter": "1"},
                          actor=TEACHER, clock=lambda: 20.0)
    shown = follow.presenting(lib)
    assert shown.state_dict() == {"lrf_at": "10"}  # a browser's own keys are never published
    assert not follow.present(lib, "pages/lr_finder.py", "LR finder", {"lrf_at": "10"}, actor=TEACHER)
    assert follow.present(lib, "pages/lr_finder.py", "LR finder", {"lrf_at": "20"}, actor=TEACHER,
                          clock=lambda: 21.0)
    shown = follow.presenting(lib)

    # elsewhere: switch to the teacher's page with the teacher's choices, keeping her nickname
    move = follow.follow_move(shown, page="pages/home.py", query={"nick": "ana"}, seen_at=None)
    assert move == follow.FollowMove("pages/lr_finder.py", {"lrf_at": "20", "nick": "ana"}, True, 21.0)
    # on the page with other choices: rerun it with the teacher's (no page switch)
    move = follow.follow_move(shown, page="pages/lr_finder.py", query={"lrf_at": "10", "nick": "ana"}, seen_at=20.0)
    assert move == follow.FollowMove("pages/lr_finder.py", {"lrf_at": "20", "nick": "ana"}, False, 21.0)
    # already showing it, or this change already taken (she may try a value until the teacher's next change)
    assert follow.follow_move(shown, page="pages/lr_finder.py", query={"lrf_at": "20"}, seen_at=None) is None
    assert follow.follow_move(shown, page="pages/lr_finder.py", query={"lrf_at": "50"}, seen_at=21.0) is None
    # a follower who wandered to another page is brought back even after taking the change
    assert follow.follow_move(shown, page="pages/runs.py", query={}, seen_at=21.0).switch_page
    assert follow.follow_move(None, page="pages/runs.py", query={}, seen_at=None) is None


def test_a_change_counts_as_taken_only_on_a_run_that_shows_it(lib):
    follow.present(lib, "pages/lr_finder.py", "LR finder", {"lrf_at": "20"}, actor=TEACHER, clock=lambda: 21.0)
    shown = follow.presenting(lib)
    assert follow.shows(shown, page="pages/lr_finder.py", query={"lrf_at": "20", "nick": "ana", "presenter": "1"})
    assert not follow.shows(shown, page="pages/lr_finder.py", query={"lrf_at": "10"})  # a switch undone
    assert not follow.shows(shown, page="pages/home.py", query={"lrf_at": "20"})
    assert not follow.shows(None, page="pages/home.py", query={})
    # the undone switch left her on the old choices and not marked as seen: the next poll moves her again
    move = follow.follow_move(shown, page="pages/lr_finder.py", query={"lrf_at": "10"}, seen_at=20.0)
    assert move is not None and move.query == {"lrf_at": "20"}


def test_a_damaged_presenting_record_reads_as_nobody_presenting(lib):
    for raw in ("{", '{"page": "p"}', '{"page": "p", "title": "t", "at": 1, "state": [1]}'):
        lib.set_setting(follow.SETTING_KEY, raw)
        assert follow.presenting(lib) is None
