"""Transfer learning: an ImageNet-trained network fine-tuned on CIFAR, frozen or not, with and without augmentation."""

from pathlib import Path

import streamlit as st

from ui.class_mode import question_gate
from ui.layout import error, page_header, try_this
from ui.run_panel import compare_presets, run_panel
from ui.runs_takeaway import runs_takeaway
from ui.sidebar import current, detected_devices

FAMILY = ["resnet18-pretrained", "resnet18-pretrained-aug", "mobilenet-pretrained", "resnet18-scratch"]
PAGE = "transfer"  # this page's key: its script's name, for the header and the class question
page_header(
    "Transfer learning",
    "A network trained on ImageNet's 1.2 million photos has already learned edges, textures and object parts. "
    "**Fine-tuning** keeps those features and trains a new last layer (and, gently, the rest) for our classes. "
    "The CIFAR images are enlarged to 224×224 on the device, the size the network was trained at.",
    report="ImageNet ResNet18 fine-tuned at 224×224, batch 128, 10 epochs, Adam 1e-4: 76%, 83% with augmentation - "
           "\"very very slow\".", page=PAGE)
question_gate(PAGE)  # class mode: predict, then reveal (hides the results while open)

settings = current()
gpu = any(v.startswith("cuda") for v, _ in detected_devices())
if not gpu or settings.device == "cpu":
    st.warning("**Cost on this machine.** At 224×224 a ResNet18 forward and backward pass is ~50× the work of "
               "the base CNN: on a laptop CPU expect minutes per 1,000 images per epoch. Use a small training "
               "subset (sidebar), MobileNetV2, or freeze the backbone - or run these on the GPU box.",
               icon=":material/hourglass:")

c1, c2 = st.columns(2)
freeze = c1.toggle("Freeze the backbone (train only the new last layer)", False,
                   help="Much faster and needs less memory; usually a few points less accurate.")
weights = c2.text_input("Local ImageNet weights file (optional)", "",
                        help="For offline classrooms: a torchvision state dict (.pth) of the same architecture. "
                             "Empty = download ImageNet weights once through torchvision.")
extra = {"model.freeze_backbone": freeze}
if weights.strip():
    if not Path(weights.strip()).expanduser().is_file():
        error(f"No file at {weights.strip()}: give the full path of a .pth file on the server.")
    else:
        extra["model.weights"] = str(Path(weights.strip()).expanduser())
st.caption("Frozen: only the classifier's ~51k (ResNet18) or ~128k (MobileNetV2) weights train, so the "
           "backbone's features must already separate the classes.")

run_panel(FAMILY, key="transfer", extra=extra)
st.subheader("Compared")
runs = compare_presets(FAMILY, key="transfer-cmp")
runs_takeaway(runs, "pretrained features are the single biggest jump of the report: +33 points over the best CNN "
              "of the same epochs. Augmentation helps the big pretrained network, which otherwise overfits CIFAR "
              "quickly.")
try_this(["Compare ResNet18 from scratch with the pretrained one: same architecture, different start.",
          "Freeze the backbone and compare the time per epoch with fine-tuning everything."])
