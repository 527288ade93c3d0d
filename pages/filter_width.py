"""Filter width: 32 → 512 filters per layer, what it buys in accuracy and what it costs in time."""

import streamlit as st

from core.lessons.presets import get_preset
from core.models.catalog import model_size
from ui import charts
from ui.class_mode import question_gate
from ui.layout import chart_height, page_header, show_chart, try_this
from ui.lesson_budgets import measured_box
from ui.run_panel import compare_presets, run_panel
from ui.runs_takeaway import runs_takeaway
from ui.sidebar import current

FAMILY = ["cnn", "cnn-128", "cnn-256", "cnn-512"]
PAGE = "filter_width"  # this page's key: its script's name, for the header and the class question
page_header(
    "Filter width",
    "Each conv layer learns a number of filters - its *width*. More filters can detect more patterns, but the "
    "cost grows with the square of the width, and the fully connected layer after the last conv grows with it.",
    report="32/32/32/64 → 30%, 128/…/256 → 31%, 256/…/512 → 34%, 512/…/1024 → 36%; the widest took 30–40 minutes "
           "per run on Colab.", page=PAGE)
question_gate(PAGE)  # class mode: predict, then reveal (hides the results while open)

rows = []
for name in FAMILY:
    p = get_preset(name)
    params, _ = model_size(p.config, 100)
    rows.append({"widths": "/".join(map(str, p.config.model.options.get("widths", (32, 32, 32, 64)))),
                 "parameters": f"{params / 1e6:.0f}M", "report": p.report_label})
st.dataframe(rows, hide_index=True)
run_panel(FAMILY, key="width")

st.subheader("Accuracy against cost")
runs = compare_presets(FAMILY, key="width-cmp")
points = [{"run": get_preset(k).title, "minutes": r.seconds / 60, "params (M)": (r.params or 0) / 1e6,
           "accuracy": r.best_test_acc} for k, r in runs.items() if r.best_test_acc is not None]
if points:
    c1, c2 = st.columns(2)
    show_chart(c1, charts.scatter_chart(points, "minutes", "accuracy", x_title="training time (minutes)",
                                         y_title="best test accuracy", height=chart_height()), width="stretch")
    show_chart(c2, charts.scatter_chart(points, "params (M)", "accuracy", x_title="parameters (millions)",
                                         y_title="best test accuracy", log_x=True, height=chart_height()),
                    width="stretch")
    st.caption(f"Runs on {current().dataset_label}; time is wall time on the run's own device.")
measured_box(["width"], panel="width")  # the report's order at a class budget, measured (docs/LESSONS.md)
runs_takeaway(runs, "width buys accuracy slowly and time quickly: 16× the parameters for a few points. The next "
              "pages get more from batch norm and augmentation than from width.")
try_this(["Queue all four widths on 5,000 CIFAR-10 images and read the time axis.",
          "Which width has the largest train/test gap? That is overfitting, the subject of the next page."])
