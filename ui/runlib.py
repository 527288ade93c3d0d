"""The thin Streamlit adapter over the run library: open it where the sidebar says, start runs with the lab
settings, and pick which run a panel shows. Training itself never happens in a script run.

The library object is per runs folder and per process (core.runs.library.open_library caches it); it holds no user
state, so every session may share it. What a user selected lives in st.session_state and the URL.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.config import TrainConfig, apply_overrides
from core.errors import LabError
from core.lessons.presets import get_preset
from core.runs.library import RunLibrary, open_library
from core.runs.records import RunRecord
from core.runs.sweeps import submit_sweep
from ui.sidebar import LabSettings, current


def library(settings: LabSettings | None = None) -> RunLibrary:
    """The run library of the sidebar's runs folder (recovering dead runs at most once a second)."""
    return open_library((settings or current()).runs_dir)


def config_for(preset: str, tweaks: dict[str, Any] | None = None, settings: LabSettings | None = None) -> TrainConfig:
    """A preset + the lab settings (dataset, subset, device) + the page's tweaks."""
    settings = settings or current()
    return apply_overrides(get_preset(preset).config, {**settings.overrides(), **(tweaks or {})})


def start(config: TrainConfig, *, preset: str | None, name: str | None = None, sweep_id: str | None = None,
          settings: LabSettings | None = None) -> str:
    """Queue a run as this browser's actor: the run library enforces the class rules (a student: own runs,
    within the quota, no sweeps), a LabError says what to do."""
    settings = settings or current()
    if settings.dataset_problem and config.data.dataset == settings.dataset:
        raise LabError(f"Runs cannot start on {settings.dataset_label}: {settings.dataset_problem}")
    actor = settings.actor
    if not actor.is_teacher and not actor.name:
        raise LabError("Pick a nickname in the sidebar first: your run carries it, so you can find and stop it.")
    return library(settings).submit(config, name=name, preset=preset, started_by="app", sweep_id=sweep_id,
                                    data_dir=settings.data_dir, download=True, actor=actor)


def start_sweep(config: TrainConfig, grid: dict[str, list[Any]], *, preset: str | None, sweep_id: str | None = None,
                name_prefix: str | None = None, settings: LabSettings | None = None) -> tuple[str, list[str]]:
    """Queue a grid as one sweep (core.runs.sweeps.submit_sweep: the whole grid checked first), each run through
    `start` as this browser's actor: (sweep id, run ids). The Sweeps, More data and Ensembles pages use it."""
    settings = settings or current()

    def submit(cfg: TrainConfig, name: str | None = None, preset: str | None = None,
               sweep_id: str | None = None) -> str:
        return start(cfg, preset=preset, name=name, sweep_id=sweep_id, settings=settings)

    return submit_sweep(config, grid, submit, preset=preset, sweep_id=sweep_id, name_prefix=name_prefix)


def start_many(jobs: list[tuple[TrainConfig, str | None, str | None]], *, what: str,
               settings: LabSettings | None = None) -> list[str]:
    """Queue (config, name, preset) jobs at once - the whole report: the teacher only (core enforces it)."""
    settings = settings or current()
    return library(settings).submit_many(jobs, actor=settings.actor, what=what, started_by="app",
                                         data_dir=settings.data_dir, download=True)


def latest_run(preset: str, dataset: str | None = None, *, by: tuple[str, str] | None = None) -> RunRecord | None:
    """The newest run of a preset on the dataset (a running one first): what a student opening the page sees.
    `by` = (role, name) keeps only runs someone started; ("teacher", "teacher") for the teacher's."""
    runs = library().list_runs(preset=preset, dataset=dataset, limit=40)
    if by is not None:
        runs = [r for r in runs if (r.by_role, r.by_name) == by]
    active = [r for r in runs if r.status == "running"] + [r for r in runs if r.status == "queued"]
    return (active or runs or [None])[0]


def best_runs(presets: list[str], dataset: str | None) -> dict[str, RunRecord]:
    """For each preset: its best completed run on the dataset, else its newest run of any status."""
    lib = library()
    best = lib.best_per_preset(dataset=dataset)
    out = {}
    for p in presets:
        run = best.get(p) or latest_run(p, dataset)
        if run is not None:
            out[p] = run
    return out


def curves_of(runs: dict[str, RunRecord], label: str = "preset") -> dict[str, list[dict]]:
    """{label: epoch rows} for ui.charts.curves_chart; label by preset title or by run name."""
    lib = library()
    out = {}
    for key, run in runs.items():
        name = get_preset(key).title if label == "preset" and run.preset else run.name
        out[name] = [e.to_dict() for e in lib.curves(run.id)]
    return out


def remember(key: str, run_id: str | None) -> None:
    """Which run a panel shows, for this browser tab."""
    st.session_state[f"_run:{key}"] = run_id


def remembered(key: str) -> str | None:
    return st.session_state.get(f"_run:{key}")
