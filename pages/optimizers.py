"""Optimizers and the best CNN from scratch: SGD with momentum vs Adam, schedules drawn before running."""

import streamlit as st

from core.config import OptimConfig
from core.train.schedule import schedule_curve
from ui import charts
from ui.layout import chart_height, page_header, show_chart, try_this
from ui.lesson_budgets import measured_box
from ui.run_panel import compare_presets, run_panel
from ui.runs_takeaway import runs_takeaway

PAGE = "optimizers"  # this page's key: its script's name, for the header and the class question
page_header(
    "Optimizers and the best CNN from scratch",
    "**Adam** adapts a step size for every weight and works out of the box at 1e-4 - the report's default. "
    "**SGD with momentum** takes one global step size but, with a learning rate that starts high and decays, "
    "often ends at a better solution. The schedule - how the learning rate changes over the run - matters as much "
    "as the optimizer.",
    report="best CNN from scratch: SGD, more epochs, tuned layers → 60%. The lab's own recipe aims at 70%+.", page=PAGE)

st.subheader("Learning-rate schedules")
c1, c2, c3 = st.columns(3)
peak = c1.select_slider("Peak learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.05, 0.1, 0.2, 0.4], 0.05,
                        format_func=lambda v: f"{v:g}")
epochs = c2.slider("Epochs", 5, 100, 30)
warmup = c3.slider("Warm-up (epochs)", 0, 10, 2)
spe = 100
curves = {name: schedule_curve(OptimConfig(lr=peak, schedule=name, warmup_epochs=float(warmup), step_epochs=max(1, epochs // 3)),
                               spe, epochs) for name in ("constant", "step", "cosine", "onecycle")}
show_chart(st, charts.lr_schedule_chart(curves, spe, height=chart_height(240), title=""), width="stretch")
st.caption("Drawn from the same function the trainer calls before every step (core/train/schedule.py).")

st.subheader("Run them")
run_panel(["cnn-sgd", "best-scratch", "cnn-bn", "cnn-flip-crop"], key="opt", show_schedule=True)
st.subheader("Compared")
runs = compare_presets(["cnn-flip-crop", "cnn-bn", "cnn-sgd", "best-scratch"], key="opt-cmp")

measured_box(["sgd"], panel="opt")  # the report's order at a class budget, measured (docs/LESSONS.md)
runs_takeaway(runs, "the best from-scratch CNN (60%) came from SGD, more epochs and a decaying learning rate, not "
              "from width. (The lab's `best-scratch` adds a residual network, one-cycle, label smoothing and "
              "augmentation; it is not in the report.)")
try_this(["Switch best-scratch to Adam 1e-3 under *Tweak* and compare.",
          "Find a good peak learning rate for SGD first on the LR finder page."])
