"""How long a run will take here, and the class time budget, for the buttons that start runs.

`plan(config)` is what a Start button needs: the run's estimate from the rate kept in the run library (no timing
in a script run: a model never timed on this device says "time: measured on its first run here", and the teacher
may time it once with `time_it_button`), the config cut to the class budget (core.train.budget.fit_to_budget) and
the words. Reading a rate is one settings-table lookup, so every rerun may ask.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.classroom import settings as class_settings
from core.config import TrainConfig
from core.errors import LabError
from core.train.budget import (
    Cut,
    estimator,
    fit_to_budget,
    report_text,
    run_estimate,
    run_images,
    start_label,
)
from core.train.estimate import Estimate, duration_text
from ui import runlib
from ui.data_panel import dataset_facts


@dataclass(frozen=True)
class Plan:
    config: TrainConfig  # what the Start button runs: cut to the class budget when there is one and a rate
    cut: Cut | None  # what was cut (None: nothing)
    estimate: Estimate | None  # of `config`; None: never timed here
    full: Estimate | None  # of the config as asked for
    where: str  # "this CPU" or the GPU's name
    minutes: float | None  # the class time budget

    def label(self, action: str) -> str:
        return start_label(action, self.estimate, self.where, self.minutes)

    def full_label(self) -> str:
        """The teacher's second button: 'Start the full run (≈ 18 min)'."""
        return f"Start the full run (≈ {duration_text(self.full.seconds)})" if self.full else "Start the full run"


def class_minutes() -> float | None:
    try:
        return class_settings.minutes_per_run(runlib.library())
    except LabError:
        return None


def where_of(config: TrainConfig) -> str:
    from core.train.calibrate import where_text
    from core.train.setup import resolve_device

    try:
        return where_text(resolve_device(config.device))
    except LabError:
        return config.device


def plan(config: TrainConfig, *, minutes: float | None = None, budget: bool = True) -> Plan:
    """The estimate of `config` here and, with `budget`, the config cut to the class's minutes per run."""
    from core.train.calibrate import stored_rate

    minutes = class_minutes() if minutes is None and budget else minutes
    try:
        facts = dataset_facts(config.data.dataset)
    except LabError:  # an image folder that is not a dataset: Start is off anyway
        return Plan(config, None, None, None, where_of(config), minutes)
    rate = stored_rate(runlib.library().get_setting, config)
    full = run_estimate(config, rate, facts.train_images, facts.test_images)
    sized, cut = config, None
    if budget:
        train_images = run_images(config, facts.train_images, facts.test_images)[0]
        sized, cut = fit_to_budget(config, estimator(rate, facts.train_images, facts.test_images), minutes,
                                   train_images=train_images)
    est = run_estimate(sized, rate, facts.train_images, facts.test_images) if cut else full
    return Plan(sized, cut, est, full, where_of(config), minutes)


def cut_caption(p: Plan, report_epochs: int | None) -> str:
    """'Cut to 3 epochs and 2,000 images to fit 2 minutes; the report trained 20 epochs on 50,000.'"""
    if p.cut is None:
        return ""
    tail = f"; {report_text(report_epochs, dataset_facts('cifar100').train_images)}" if report_epochs else ""
    return p.cut.text() + tail + "."


def time_it_button(where, config: TrainConfig, key: str) -> bool:
    """The teacher's "⏱ Time it here": a few timed steps on random images (core.train.calibrate, ~5 s on the
    CPU), kept in the run library for every session. Only on a click, never on a rerun. True when it timed."""
    if not where.button("⏱ Time it here", key=f"{key}:time_it",
                        help="A few training steps on random images (seconds), so every Start here shows its time"):
        return False
    from core.train.calibrate import calibrate, run_rate_key
    from core.train.estimate import save_rate
    from core.train.setup import resolve_device

    with st.spinner("Timing a few training steps…"):
        device = resolve_device(config.device)
        rate = calibrate(config, device, dataset_facts(config.data.dataset).num_classes)
        lib = runlib.library()
        save_rate(lib.set_setting, run_rate_key(config, device), rate)
    return True
