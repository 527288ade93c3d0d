"""The sidebar's Ray cluster box: where new runs train, the library's setting, the environment winning."""

from __future__ import annotations

from core.runs import cluster
from core.runs.library import open_library


def labels(at) -> list[str]:
    return [e.label for e in at.sidebar.expander if e.label.startswith("Training on")]


def test_without_a_cluster_runs_train_here(open_page, lab_dirs, monkeypatch):
    monkeypatch.delenv("CIFAR_LAB_RAY", raising=False)
    at = open_page("home")
    assert labels(at) == ["Training on: this machine"]
    (box,) = [t for t in at.sidebar.text_input if t.label == "Ray cluster address"]
    assert box.value == "" and not box.disabled


def test_the_librarys_setting_and_the_environment_are_shown(open_page, lab_dirs, monkeypatch):
    monkeypatch.delenv("CIFAR_LAB_RAY", raising=False)
    lib = open_library(lab_dirs[1])
    lib.set_setting(cluster.SETTING, "http://head:8265")  # as `runs settings --ray` stores it
    at = open_page("home")
    assert labels(at) == ["Training on: Ray cluster (http://head:8265)"]
    assert [t.value for t in at.sidebar.text_input if t.label == "Ray cluster address"] == ["http://head:8265"]

    monkeypatch.setenv("CIFAR_LAB_RAY", "other:8265")
    at = open_page("home")
    assert labels(at) == ["Training on: Ray cluster (http://other:8265)"]
    assert not [t for t in at.sidebar.text_input if t.label == "Ray cluster address"]
    assert any("Set by $CIFAR_LAB_RAY" in c.value for c in at.sidebar.caption)
