"""MLP vs CNN: the same data, a network that sees pixels as a list against one that sees them as an image."""

import streamlit as st

from core.lessons.presets import get_preset
from core.models.registry import model_size
from ui import runlib
from ui.classroom import question_gate
from ui.layout import page_header, try_this
from ui.run_panel import compare_presets, num_classes, run_panel
from ui.settings import current
from ui.takeaways import runs_takeaway

page_header(
    "MLP vs CNN",
    "A plain neural network (**MLP**) flattens the 32×32×3 image into 3,072 numbers: it has no idea that "
    "neighbouring pixels belong together, and every one of its first-layer weights looks at one pixel position "
    "only. A **convolutional** network slides small 3×3 filters over the image, so the same edge detector works "
    "everywhere - far fewer weights per feature, and a built-in sense of *where*.",
    report="MLP (2 hidden layers) 26%, CNN 32/32/32/64 + FC 4096 30% - same batch 256, 20 epochs, Adam 1e-4.")
question_gate("mlp_vs_cnn")  # class mode: predict, then reveal (hides the results while open)

mlp, cnn = get_preset("mlp"), get_preset("cnn")
c1, c2 = st.columns(2)
for col, p in ((c1, mlp), (c2, cnn)):
    params, _ = model_size(runlib.config_for(p.name), num_classes(current().dataset))  # as the run panel counts
    col.metric(p.title, f"{params / 1e6:.1f}M parameters")
    col.caption(f"report: {p.report_label} on CIFAR-100")
st.caption("Most of the CNN's parameters sit in its fully connected layer (4,096 × 4,096): the convolutions "
           "themselves hold under 40,000.")

run_panel(["mlp", "cnn"], key="nets")
st.subheader("Side by side")
runs = compare_presets(["mlp", "cnn"], key="nets-cmp", title="train (dashed) and test (solid) accuracy")
runs_takeaway(runs, "the CNN wins with fewer parameters because it is built for images; the MLP's train accuracy "
              "races ahead of its test accuracy: it memorizes pixels instead of learning shapes.")
try_this(["Compare the loss panel too: which network's test loss turns back up first?",
          "Raise the MLP's learning rate to 1e-3 under *Tweak*: does it help or hurt?"])
