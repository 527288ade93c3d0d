"""Batch norm, a wider FC layer and dropout: what each does to training, to activations, and to overfitting."""

import streamlit as st
import torch

from core.data.augment import normalize
from core.explain.activations import pre_activations, summary
from core.explain.features import fresh_model
from core.lessons.presets import get_preset
from ui import charts, runlib
from ui.class_mode import question_gate
from ui.data_panel import dataset_or_none
from ui.layout import chart_height, friendly_errors, page_header, show_chart, try_this
from ui.lesson_budgets import measured_box
from ui.run_panel import compare_presets, run_panel
from ui.runs_takeaway import runs_takeaway
from ui.sidebar import current
from ui.trained import trained_model

FAMILY = ["cnn-128", "cnn-bn", "cnn-bn-fc8192", "cnn-bn-dropout"]
PAGE = "regularization"  # this page's key: its script's name, for the header and the class question
page_header(
    "Batch norm, a wider FC, dropout",
    "**Batch norm** rescales what every conv layer hands to the next, batch by batch, so each layer sees inputs "
    "of a steady size and the optimizer can take bigger steps. A **wider FC** layer adds capacity. **Dropout** "
    "switches off half of the FC units at random while training, so no unit can rely on another - a brake on "
    "memorizing the training set.",
    report="+ batch norm 42%, + FC 8192 43%, + dropout 0.5 ~43% (from 31% for the same width without them).", page=PAGE)
question_gate(PAGE)  # class mode: predict, then reveal (hides the results while open)

run_panel(FAMILY, key="reg")
st.subheader("The runs compared")
runs = compare_presets(FAMILY, key="reg-cmp")

st.subheader("Overfitting: the gap between train and test")
if runs:
    show_chart(st, charts.gap_chart(runlib.curves_of(runs), height=chart_height(240)), width="stretch")
    st.caption("A gap that keeps growing means the network memorizes training images (report Fig. 2). "
               "Dropout should keep its line lower; batch norm alone usually widens the gap because it learns faster.")
else:
    st.caption("Run two of these experiments to see their gaps.")

st.subheader("Inside: activations with and without batch norm")
st.markdown("The values each layer hands to its ReLU for one batch of 64 test images, as training sees them "
            "(batch norm uses the batch's own statistics). Without batch norm their spread drifts from layer to "
            "layer; with it, every layer is centred and scaled.")
settings = current()
ds = dataset_or_none(settings)
if ds is not None:
    with friendly_errors("Computing activations"):
        x = normalize(ds.test_x[torch.randperm(len(ds.test_x), generator=torch.Generator().manual_seed(0))[:64]],
                      ds.mean, ds.std)
        cols = st.columns(2)
        for col, name in zip(cols, ["cnn-128", "cnn-bn"]):
            preset = get_preset(name)
            run = runlib.best_runs([name], settings.dataset).get(name)
            loaded = trained_model(run) if run else None
            if loaded is not None:
                model, _, meta = loaded
                source = f"trained run {run.name}"
            else:
                model = fresh_model(runlib.config_for(name), ds.num_classes)  # the run's own seed
                source = "untrained (no run of it yet)"
            values = pre_activations(model, x, batch_stats=True)
            conv_layers = {k.removeprefix("features."): v for k, v in values.items() if k.startswith("features")}
            col.markdown(f"**{preset.title}** — {source}")
            show_chart(col, charts.histogram_chart(conv_layers, x_title="value entering the ReLU", columns=2,
                                                    height=80, width=170), width="content")
            col.dataframe([{k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in r.items()}
                           for r in summary(conv_layers)], hide_index=True)

measured_box(["batch-norm", "fc8192", "dropout"], panel="reg")  # the report's order at a class budget, measured (docs/LESSONS.md)
runs_takeaway(runs, "batch norm is the biggest single gain on the report card: it makes training easier, not the "
              "network bigger. Dropout and a wider FC change little in 20 epochs - their effect is on the gap, "
              "not the peak.")
try_this(["Compare the gap lines of + FC 8192 and + dropout: which one memorizes less?",
          "Train the batch-norm preset with learning rate 1e-3 under *Tweak*: batch norm tolerates it; "
          "try the same without batch norm."])
