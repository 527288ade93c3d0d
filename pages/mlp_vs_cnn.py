"""MLP vs CNN: the same data, a network that sees pixels as a list against one that sees them as an image."""

import streamlit as st

from core.lessons.budgets import MEASURED, crossover
from core.lessons.presets import get_preset
from core.models.catalog import model_size
from ui import charts, runlib
from ui.class_mode import question_gate
from ui.layout import chart_height, friendly_errors, page_header, pct, show_chart, try_this
from ui.lesson_budgets import measured_box
from ui.run_panel import compare_presets, num_classes, run_panel
from ui.runs_takeaway import runs_takeaway
from ui.sidebar import current

PAGE = "mlp_vs_cnn"  # this page's key: its script's name, for the header and the class question
page_header(
    "MLP vs CNN",
    "A plain neural network (**MLP**) flattens the 32×32×3 image into 3,072 numbers: it has no idea that "
    "neighbouring pixels belong together, and every one of its first-layer weights looks at one pixel position "
    "only. A **convolutional** network slides small 3×3 filters over the image, so the same edge detector works "
    "everywhere - far fewer weights per feature, and a built-in sense of *where*.",
    report="MLP (2 hidden layers) 26%, CNN 32/32/32/64 + FC 4096 30% - same batch 256, 20 epochs, Adam 1e-4.", page=PAGE)
question_gate(PAGE)  # class mode: predict, then reveal (hides the results while open)

mlp, cnn = get_preset("mlp"), get_preset("cnn")
n_classes = None
with friendly_errors("Counting the parameters"):  # an image folder that is not a dataset says so here
    n_classes = num_classes(current().dataset)
c1, c2 = st.columns(2)
for col, p in ((c1, mlp), (c2, cnn)):
    if n_classes is not None:
        params, _ = model_size(runlib.config_for(p.name), n_classes)  # as the run panel counts
        col.metric(p.title, f"{params / 1e6:.1f}M parameters")
    col.caption(f"report: {p.report_label} on CIFAR-100")
st.caption("Most of the CNN's parameters sit in its fully connected layer (4,096 × 4,096): the convolutions "
           "themselves hold under 40,000.")

run_panel(["mlp", "cnn"], key="nets")
st.subheader("Side by side")
runs = compare_presets(["mlp", "cnn"], key="nets-cmp", title="train (dashed) and test (solid) accuracy")
m = MEASURED[("mlp", "cnn")]
cross = crossover(m.first_test, m.second_test, m.test_images)
budget = cross.clear_epoch or cross.epoch or 20  # epochs at which the report's order shows, measured
# when the runs contradict the report, the cnn preset's caveat (the measured crossover) says why
measured_box(["mlp-cnn"], panel="nets")  # the report's order at a class budget, measured (docs/LESSONS.md)
runs_takeaway(runs, "the CNN wins with fewer parameters because it is built for images; the MLP's train accuracy "
              "races ahead of its test accuracy: it memorizes pixels instead of learning shapes.")

st.subheader("At what budget does the report's order appear? Measured")
rows = {f"{get_preset(k).title}": [{"epoch": i + 1, "train_acc": tr, "test_acc": te} for i, (tr, te) in
                                   enumerate(zip(train, test))]
        for k, train, test in (("mlp", m.first_train, m.first_test), ("cnn", m.second_train, m.second_test))}
show_chart(st, charts.curves_chart(rows, "accuracy", height=chart_height(260),
                                   title=f"{m.train_images:,} {m.dataset} images, Adam 1e-4, batch 256"),
           width="stretch")
if cross.epoch is None:
    st.markdown(f"In {cross.epochs} measured epochs the CNN never overtook the MLP.")
else:
    st.markdown(
        f"The MLP learns fastest: its best, **{pct(cross.first_best)} at epoch {cross.first_best_epoch}**, then its "
        f"train accuracy runs on to {pct(m.first_train[-1])} while its test accuracy stalls - memorizing. The CNN "
        f"climbs slowly but steadily and **overtakes it at {cross.epoch} epochs**"
        + (f", clearly (beyond the ±{cross.noise * 100:.1f}-point noise) from {cross.clear_epoch}"
           if cross.clear_epoch else "")
        + f"; after {cross.epochs} epochs it stands at {pct(cross.second_at_end)}. So on a laptop budget (a few "
        "epochs) the report's first lesson comes out inverted, and the report's 20 epochs on 50,000 images are "
        "well past the crossover.")
st.caption(f"Measured, not asserted: `{m.command}` on {m.machine}. With a constant learning rate, epoch k of "
           "this run is a k-epoch run; the crossover compares each curve's best test accuracy so far, as the lab's runs "
           "report it.")
settings = current()
if st.button(f"▶ Queue both at {budget} epochs", key="nets_budget", disabled=not settings.can_start,
             help=f"MLP and CNN with the sidebar's data, {budget} epochs each: expect the CNN ahead, as in the "
                  f"report, on about {m.train_images:,} or more images."):
    with friendly_errors("Queueing the runs"):
        for name in ("mlp", "cnn"):
            runlib.start(runlib.config_for(name, {"epochs": budget}), preset=name)
        st.toast(f"Queued MLP and CNN at {budget} epochs: the comparison above updates as they finish.")
try_this([f"Queue both at {budget} epochs (button above) on {m.train_images:,} images: the CNN should come out "
          "ahead, as in the report; at 5 epochs the MLP wins.",
          "Compare the loss panel too: which network's test loss turns back up first?",
          "Raise the MLP's learning rate to 1e-3 under *Tweak*: does it help or hurt?"])
