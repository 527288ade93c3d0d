"""Fixtures the run-library tests share."""

import pytest

from core.runs.library import RunLibrary, open_library


@pytest.fixture
def lib(tmp_path, monkeypatch) -> RunLibrary:
    """A library whose kick() claims runs but starts no process (spawned ids are collected in lib.spawned)."""
    library = open_library(tmp_path / "runs")
    library.spawned = []
    monkeypatch.setattr(library.supervisor, "spawn", lambda run_id: library.spawned.append(run_id))
    return library
