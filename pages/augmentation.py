"""Augmentation lab: pick pictures and augmentations, see what training would feed the network (drawn by the
training code itself, with each sample's random parameters), then train with and without and compare."""

import pandas as pd
import streamlit as st
import torch

from core.config import AugmentConfig
from core.data.dataset import Dataset
from core.errors import LabError
from core.lessons.findings import NOISE
from core.lessons.presets import FLIP, FLIP_CROP, get_preset
from core.lessons.takeaways import card_findings
from core.runs.library import RunLibrary
from core.runs.records import RunRecord
from ui import charts, runlib, urlstate
from ui.aug_preview import grid as aug_grid
from ui.aug_preview import row_html
from ui.class_mode import question_gate
from ui.data_panel import dataset_or_none
from ui.layout import chart_height, error, friendly_errors, page_header, pct, show_chart, try_this
from ui.lesson_budgets import measured_box
from ui.pictures import read_upload
from ui.run_panel import compare_presets, describe, live_run, run_panel
from ui.runs_takeaway import facts_of, runs_takeaway
from ui.sidebar import LabSettings, current

PAGE = "augmentation"  # this page's key: its script's name, for the header and the class question

BASE = "cnn-128"  # §VI: the flip and crop runs started from the 128/128/128/256 network
FAMILY = [BASE, "cnn-flip", "cnn-flip-crop"]
TAG = "augmentation-lab"  # marks the runs of "your pipeline" in the library
FIELDS = ("flip_p", "crop_padding", "crop_mode", "erase_p", "erase_size", "brightness", "contrast", "saturation")
PIPELINES = {"None": AugmentConfig(), "Report: flip": FLIP, "Report: flip + crop": FLIP_CROP,
             "Everything": AugmentConfig(flip_p=0.5, crop_padding=4, erase_p=0.5, erase_size=12, brightness=0.3,
                                         contrast=0.3, saturation=0.3)}
SOURCES = ["random", "by class", "by index", "upload"]
MAX_PICTURES = 8


def seed_widgets() -> None:
    """Widget state, seeded once per session with the report's best pipeline."""
    for field in FIELDS:
        st.session_state.setdefault(f"aug_{field}", getattr(FLIP_CROP, field))
    st.session_state.setdefault("aug_pick", 0)


def load_pipeline(cfg: AugmentConfig) -> None:
    """Set the sliders to one of the ready-made pipelines (a button's callback)."""
    for f in FIELDS:
        st.session_state[f"aug_{f}"] = getattr(cfg, f)


def next_seed() -> None:
    """Move to the next seed: new random draws (a button's callback)."""
    st.session_state["aug_seed"] = int(st.session_state.get("aug_seed", 0)) + 1


def other_pictures() -> None:
    """Draw other pictures from the training set (a button's callback)."""
    st.session_state["aug_pick"] += 1


def augmentations() -> AugmentConfig | None:
    """Section 1: a slider for every augmentation, and the pipeline they make (None, after a message, if invalid)."""
    st.subheader("1 · The augmentations")
    start_from = st.container(horizontal=True, vertical_alignment="center")
    start_from.markdown("**Start from:**", width="content")
    for label, cfg in PIPELINES.items():
        start_from.button(label, key=f"aug_load:{label}", on_click=load_pipeline, args=(cfg,))
    g, e, c = st.columns(3)
    with g.container(border=True):
        st.markdown("**Geometry**")
        st.slider("Flip probability", 0.0, 1.0, step=0.05, key="aug_flip_p",
                  help="Chance that a picture is mirrored left-right")
        st.slider("Crop padding (pixels)", 0, 12, key="aug_crop_padding",
                  help="Pad this many pixels on each side, then cut a random 32×32 window: a shift of up to ± this")
        st.radio("Padding filled with", ["zero", "reflect"], key="aug_crop_mode", horizontal=True,
                 format_func={"zero": "black (zeros)", "reflect": "mirrored edge"}.get)
    with e.container(border=True):
        st.markdown("**Cut-out (random erasing)**")
        st.slider("Erase probability", 0.0, 1.0, step=0.05, key="aug_erase_p",
                  help="Chance that a square patch is blanked out (with the dataset's mean colour)")
        st.slider("Erased square (pixels)", 1, 32, key="aug_erase_size")
    with c.container(border=True):
        st.markdown("**Colour jitter**: a factor drawn from [1 − s, 1 + s] per picture")
        st.slider("Brightness strength", 0.0, 1.0, step=0.05, key="aug_brightness")
        st.slider("Contrast strength", 0.0, 1.0, step=0.05, key="aug_contrast")
        st.slider("Saturation strength", 0.0, 1.0, step=0.05, key="aug_saturation")
    try:
        return AugmentConfig(**{f: st.session_state[f"aug_{f}"] for f in FIELDS})
    except LabError as err:
        error(str(err))
        return None


def uploaded() -> tuple[torch.Tensor | None, list[str]]:
    """The pictures the user uploads, as (N, 3, 32, 32) uint8 with their file names; None while there are none."""
    files = st.file_uploader("Your own pictures (JPEG, PNG, WebP, BMP or GIF): made RGB and resized to 32×32",
                             accept_multiple_files=True, key="aug_upload")
    good, labels = [], []
    for f in (files or [])[:MAX_PICTURES]:
        try:
            good.append(read_upload(f))
            labels.append(f.name[:24])
        except LabError as err:
            error(str(err), icon=":material/broken_image:")
    if files and len(files) > MAX_PICTURES:
        st.caption(f"Showing the first {MAX_PICTURES} of {len(files)} pictures.")
    if not good and not files:
        st.info("Upload a picture or two: a photo of your own cat goes through the same augmentations.")
    return (torch.stack(good) if good else None), labels


def from_training_set(ds: Dataset, source: str, n_pics: int, row) -> tuple[torch.Tensor, list[str]]:
    """n_pics training pictures picked at random, from one class or from an index on, with their captions."""
    n_train = len(ds.train_x)
    pick = torch.Generator().manual_seed(int(st.session_state["aug_pick"]))
    if source == "random":
        idx = torch.randperm(n_train, generator=pick)[:n_pics]
        row.button("🔀 Other pictures", key="aug_other", on_click=other_pictures)
    elif source == "by class":
        cls = st.selectbox("Class", range(ds.num_classes), key="aug_class", format_func=lambda i: ds.classes[i])
        members = (ds.train_y == cls).nonzero().flatten()
        idx = members[torch.randperm(len(members), generator=pick)[:n_pics]]
        row.button("🔀 Other pictures", key="aug_other", on_click=other_pictures)
    else:
        first = int(st.number_input(f"First index (0 … {n_train - 1:,})", 0, n_train - 1, 0, key="aug_index"))
        idx = torch.arange(first, min(first + n_pics, n_train))
    return ds.train_x.index_select(0, idx), [f"#{i} · {ds.classes[int(ds.train_y[i])]}" for i in idx.tolist()]


def grid(originals: torch.Tensor, labels: list[str], pipeline: AugmentConfig, seed: int, samples: int,
         ds: Dataset | None) -> None:
    """Each picture beside the samples training would draw for it with this seed, and every drawn parameter."""
    cells, scale, gap = samples + 1, 2, 4  # the browser enlarges the 2× pictures further, as squares
    fill = ds.mean if ds is not None else (0.5, 0.5, 0.5)  # erased pixels: the mean colour, as in training
    made = aug_grid(originals, pipeline, seed, samples, fill, scale, gap)  # once for the whole class
    st.markdown("".join(row_html(uri, labels[n], made.descriptions[n], None if cells >= 6 else cells * 160)
                        for n, uri in enumerate(made.uris)), unsafe_allow_html=True)
    st.caption(f"{len(originals)} pictures × {samples} samples, seed {seed}, pipeline: {pipeline.describe()}. "
               f"Drawn by `core.data.augment.augment`, the function every training batch goes through, with the "
               f"generator a run with seed {seed} starts with (tests/core/train/test_preview_equals_training.py checks "
               f"that they match). Grid made in {made.ms_total:.0f} ms, {made.ms_augment:.0f} ms of it augmenting.")
    with st.expander("Every sampled parameter, as a table"):
        st.dataframe(pd.DataFrame([{"picture": labels[i // samples], "sample": i % samples + 1, **row}
                                   for i, row in enumerate(made.table)]), hide_index=True, width="stretch")
    st.markdown("Training draws new parameters for **every batch of every epoch**: over 20 epochs the network "
                "sees each picture 20 times, never twice the same. The test pictures are never augmented.")


def what_the_network_sees(settings: LabSettings, pipeline: AugmentConfig | None) -> None:
    """Section 2: which pictures, how many samples and which seed, then the grid of what training would draw."""
    st.subheader("2 · What the network would see")
    ds = dataset_or_none(settings)
    sources = SOURCES if ds is not None else ["upload"]
    p1, p2, p3 = st.columns([2, 1, 1])
    source = p1.radio("Which pictures", sources, key="aug_source", horizontal=True)
    n_pics = p2.slider("How many", 1, MAX_PICTURES, 4, key="aug_n")
    samples = p3.slider("Samples per picture", 1, 8, 7, key="aug_k")
    row = st.container(horizontal=True, vertical_alignment="bottom")
    with row:
        seed = int(urlstate.number_input(st, "Seed", key="aug_seed", default=0, min_value=0, max_value=10**9,
                                         step=1, width=200,
                                         help="Seed s shows what a training run with seed s would draw for the "
                                              "first batch of its first epoch, if that batch held these pictures"))
        st.button("🎲 New sample", key="aug_new", on_click=next_seed, help="The next seed: new random draws")
    originals, labels = None, []
    if source == "upload":
        originals, labels = uploaded()
    elif ds is not None:
        originals, labels = from_training_set(ds, source, n_pics, row)
    if originals is not None and pipeline is not None:
        grid(originals, labels, pipeline, seed, samples, ds)


def train_with_and_without() -> None:
    """Section 3's opening: queue the report's three runs."""
    st.subheader("3 · Does it pay off? Train with and without")
    st.markdown("Queue the report's three runs - the plain CNN, + flip, + flip and crop - or the CNN with *your* "
                "pipeline from above, and compare their test accuracy.")
    run_panel(FAMILY, key="aug", default="cnn-flip-crop")


def your_pipeline(lib: RunLibrary, pipeline: AugmentConfig | None, settings: LabSettings) -> RunRecord | None:
    """The report's CNN with the page's pipeline: its config, the button that queues it, and its run, live."""
    with st.container(border=True):
        st.markdown(f"**Your pipeline**: the report's 128/128/128/256 CNN trained with "
                    f"*{pipeline.describe() if pipeline else '—'}*")
        mine_config = None
        if pipeline is not None:
            with friendly_errors("Preparing the run"):
                mine_config = runlib.config_for(BASE, {f: getattr(pipeline, f) for f in FIELDS})
                st.caption(describe(mine_config) + f" · on **{settings.dataset_label}**")
        why = ("Reserved to the teacher (passcode in the sidebar)" if not settings.can_control else
               "Fix the augmentation settings first" if mine_config is None else None)
        if st.button("▶ Train the CNN with this pipeline", key="aug_mine_start", type="primary",
                     disabled=mine_config is None or not settings.can_control, help=why):
            with friendly_errors("Starting the run"):
                run_id = runlib.start(mine_config, preset=None, name=f"CNN + {pipeline.describe()}")
                lib.annotate(run_id, tags=TAG)
                st.session_state["aug_mine_run"] = run_id
        mine_runs = [r for r in lib.list_runs(dataset=settings.dataset, limit=200) if r.tags == TAG]
        mine = lib.find(st.session_state["aug_mine_run"]) if st.session_state.get("aug_mine_run") else None
        mine = mine or next((r for r in mine_runs if r.active), mine_runs[0] if mine_runs else None)
        if mine is not None:
            live_run(mine.id, "aug-mine")
    return mine


def compared(lib: RunLibrary, mine: RunRecord | None) -> dict[str, RunRecord]:
    """The report's three runs overlaid, and your pipeline's curves against the plain CNN's; the runs shown."""
    st.subheader("The runs compared")
    runs = compare_presets(FAMILY, key="aug-cmp", title="train (dashed) and test (solid) accuracy")
    if mine is not None and runs.get(BASE) is not None and lib.curves(mine.id):
        curves = runlib.curves_of({BASE: runs[BASE]}) | runlib.curves_of({mine.id: mine}, label="run")
        show_chart(st, charts.curves_chart(curves, "accuracy", height=chart_height(260),
                                            title="your pipeline against the plain CNN"), width="stretch")
    return runs


def findings(runs: dict[str, RunRecord], mine: RunRecord | None, settings: LabSettings) -> None:
    """The finished runs' gains set beside the report's, your pipeline's against the plain CNN, and caveats."""
    done = {k: r for k, r in runs.items() if r.status == "completed" and r.best_test_acc is not None}
    found = card_findings(dict(zip(done, facts_of(done), strict=True)))
    for f in found:
        show = {"agrees": st.success, "disagrees": st.warning}.get(f.verdict, st.info)
        show(f.message, icon=":material/fact_check:")
    if mine is not None and mine.status == "completed" and mine.best_test_acc is not None and BASE in done:
        gain = mine.best_test_acc - done[BASE].best_test_acc
        text = (f"Your pipeline ({mine.name}) vs the plain CNN: {pct(mine.best_test_acc)} against "
                f"{pct(done[BASE].best_test_acc)}, "
                + ("no clear difference." if abs(gain) < NOISE else f"{gain * 100:+.1f} points."))
        if gain <= -NOISE:
            text += " " + get_preset("cnn-flip-crop").caveat
        (st.success if gain >= NOISE else st.warning if gain <= -NOISE else st.info)(text,
                                                                                      icon=":material/fact_check:")
    if not found:
        st.caption("Once the plain CNN and its flip (and flip + crop) versions have finished on this dataset, the "
                   "lab sets their gains beside the report's here - and says so when your runs disagree.")
    elif settings.dataset != "cifar100" or settings.subset:
        images = "all" if not settings.subset else f"{settings.subset:,}"
        st.caption(f"These runs used {settings.dataset_label} with {images} training images; the report's numbers "
                   f"are CIFAR-100 with 50,000 and 20 epochs. Compare the direction of each gain, not the digits.")


page_header(
    "Augmentation lab",
    "A network that sees the same 50,000 pictures twenty times starts to memorize them. **Augmentation** shows it "
    "a slightly different version every time - mirrored, shifted, with a patch cut out, a little brighter - so "
    "it has to learn what stays the same: the class. Every training batch gets its own random draw, on the "
    "device, with the batch.",
    report="CNN 128/128/128/256 31% → + random flip 36% → + random crop 39% (CIFAR-100, 20 epochs).", page=PAGE)
question_gate(PAGE)  # class mode: predict, then reveal (hides the results while open)
settings = current()
seed_widgets()
pipeline = augmentations()
what_the_network_sees(settings, pipeline)
train_with_and_without()
lib = runlib.library()
mine = your_pipeline(lib, pipeline, settings)
runs = compared(lib, mine)
findings(runs, mine, settings)
shown = {**runs, **({mine.id: mine} if mine is not None else {})}
measured_box(["flip", "crop"], panel="aug")  # the report's order at a class budget, measured (docs/LESSONS.md)
runs_takeaway(shown, "augmentation is free extra data: flips and shifts keep the class, so the network must "
              "learn shapes rather than memorize pixels (+5 points for flips, +3 more for crops, on the "
              "128/128/128/256 CNN).")
try_this(["Set the crop padding to 12 with black padding, then with mirrored edges: which looks more like a real "
          "photo?",
          "Erase a 16-pixel square with probability 1: can you still tell the class? Can the network?",
          "Upload a photo of something with writing on it and flip it: why is flipping fine for CIFAR's animals "
          "but not for digits or letters?"])
