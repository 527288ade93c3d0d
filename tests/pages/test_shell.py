"""Every page renders on a fresh clone - no dataset on disk - and with a dataset present; the lab settings
live in the URL; the teacher passcode reserves Start."""

import pytest

from tests.fakes import write_fake_cifar
from tests.pages.conftest import PAGES, problems

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_synthetic_data(open_page, page):
    at = open_page(page, dataset_kind="synthetic", subset="500", test_subset="500")
    assert problems(at) == [], page
    assert at.title, f"{page} has no title"


def test_missing_dataset_shows_the_download_panel_not_an_error(open_page):
    at = open_page("home")  # default dataset: CIFAR-100, not on disk
    assert problems(at) == []
    assert any(b.label.startswith("Download CIFAR-100") for b in at.button)
    texts = " ".join(m.value for m in at.markdown)
    assert "cifar-100-python.tar.gz" in texts and "Synthetic" in texts


def test_pages_render_with_a_dataset_on_disk(open_page, lab_dirs):
    data, _ = lab_dirs
    write_fake_cifar(data, "cifar10", n_train_per_class=4, n_test_per_class=2, seed=0)
    for page in ("home", "regularization", "runs"):
        at = open_page(page, dataset_kind="cifar10", subset="500", test_subset="500")
        assert problems(at) == [], page
        assert not any(b.label.startswith("Download") for b in at.button)


def test_settings_are_read_from_and_written_to_the_url(open_page):
    at = open_page("home", dataset_kind="cifar10", subset="2000")
    assert at.selectbox(key="dataset_kind").value == "cifar10"
    assert at.select_slider(key="subset").value == 2000
    assert at.query_params["dataset_kind"] == "cifar10"
    # a value chosen in the session is published to the URL; defaults are left out of it
    at = open_page("home", state={"dataset_kind": "synthetic", "device": "auto"})
    assert at.query_params["dataset_kind"] == "synthetic" and "device" not in at.query_params


def test_a_bad_url_value_falls_back_to_the_default(open_page):
    at = open_page("home", dataset_kind="imagenet", subset="banana")
    assert problems(at) == []
    assert at.selectbox(key="dataset_kind").value == "cifar100"


def test_passcode_reserves_starting_runs(open_page, monkeypatch):
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "owl-7731-kite")
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")  # AppTest is on loopback: the teacher, unless this
    at = open_page("home", dataset_kind="synthetic")
    assert all(b.disabled for b in at.button if b.label.startswith("▶"))
    at = open_page("home", state={"teacher_code": "wrong"}, dataset_kind="synthetic")
    assert any("Wrong passcode" in e.value for e in at.error)
    at = open_page("mlp_vs_cnn", state={"teacher_code": "owl-7731-kite"}, dataset_kind="synthetic")
    assert not [b for b in at.button if b.label.startswith("▶ Start")][0].disabled


def test_presenter_mode_keeps_the_budget_and_the_tweaks(open_page):
    """A teacher sizes runs while projecting: the epochs stay in view and Tweak (folded) stays too, since the
    pages' "Try this" points there."""
    for state in ({}, {"presenter": True}):
        at = open_page("mlp_vs_cnn", state=state, dataset_kind="synthetic")
        assert any(e.label == "Tweak this experiment" for e in at.expander)
        assert any(n.label == "Epochs" for n in at.number_input)


def test_the_passcode_is_remembered_by_the_browser_until_the_teacher_locks(open_page, monkeypatch):
    import time

    from core.classroom import access
    from ui import class_roles

    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "owl-7731-kite")
    monkeypatch.setenv("CIFAR_LAB_LOCAL_TEACHER", "0")
    at = open_page("home", state={"teacher_code": "owl-7731-kite"}, dataset_kind="synthetic")
    token = at.session_state[class_roles.COOKIE]  # what the sidebar's script writes into the browser's cookie
    assert access.token_is_valid(token, access.Passcode("owl-7731-kite", "env", None), time.time())
    assert any(access.TOKEN_COOKIE in str(h.proto) and token in str(h.proto) for h in at.sidebar.get("html"))

    monkeypatch.setattr(class_roles, "teacher_cookie", lambda: token)  # a reload: a new session, the cookie sent
    at = open_page("mlp_vs_cnn", dataset_kind="synthetic")
    assert not [b for b in at.button if b.label.startswith("▶ Start")][0].disabled
    at = open_page("home", dataset_kind="synthetic")
    assert any("remembered in this browser" in c.value for c in at.sidebar.caption)

    # this tab looked at its token at its start, then pressed Lock: the token is not looked at again
    at = open_page("home", state={class_roles.TOKEN_SEEN: True}, dataset_kind="synthetic")
    assert any(c.value.startswith("You are a student") for c in at.sidebar.caption)
    monkeypatch.setenv("CIFAR_LAB_PASSCODE", "cat-4410-moth")  # a new passcode voids the token
    at = open_page("home", dataset_kind="synthetic")
    assert any(c.value.startswith("You are a student") for c in at.sidebar.caption)
