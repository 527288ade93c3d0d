"""The pickers the "Inside the network" pages share: which model (a library run with a checkpoint, or a
freshly initialized network for contrast), which picture (a test image by class, at random, a mistake, or an
upload), the model's top-5 for it, and the test split's predictions (computed once per checkpoint).

The choices live in the URL (`run`, `img`) so a link reopens the same view, and in this tab's session state
so they follow the student from one of these pages to the next. Models, test splits and predictions are cached
for the whole server: they are read-only and the same for every user.
"""

from __future__ import annotations

import hashlib
import random
import threading
from dataclasses import dataclass, field

import streamlit as st
import torch
from torch import nn

from core.config import TrainConfig, from_json, to_json
from core.data.dataset import stratified_subset
from core.data.loading import dataset_status
from core.errors import LabError
from core.explain.attribution import internal_size
from core.explain.confusion import misclassified, predict_split
from core.explain.features import CoarseMap, coarse_map, fresh_model, predict
from core.lessons.presets import get_preset
from core.runs.records import RunRecord, default_run
from core.train.setup import input_stats
from ui import runlib, urlstate
from ui.charts_inside import top_k_chart
from ui.data_panel import dataset_or_none, load_full
from ui.layout import chart_height, error, friendly_errors, pct, presenter, show_chart
from ui.pictures import read_upload, to_hwc_uint8
from ui.sidebar import current
from ui.trained import checkpoint_of, trained_model

FRESH = "fresh"  # the model picker's "untrained network" option (and the URL's run=fresh)
FRESH_PRESETS = ["cnn", "cnn-bn", "best-scratch", "resnet18-scratch", "resnet18-pretrained",
                 "mobilenet-pretrained", "mlp"]
# Widget keys (shared by the three pages) and the session keys that carry a choice from page to page:
# Streamlit forgets a widget's value when another page is shown, the shadow keeps it.
RUN_KEY, FRESH_KEY, SRC_KEY, CLASS_KEY, IMG_KEY, UPLOAD_KEY = (
    "inside_run", "inside_fresh", "inside_src", "inside_class", "inside_img", "inside_upload")
_SHADOW = "_inside_shadow"
_MISSING = object()


@dataclass(frozen=True, eq=False)
class Source:
    """The model the page looks inside, with what explaining it needs."""

    model: nn.Module  # eval mode, shared (never modified)
    config: TrainConfig
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    run: RunRecord | None  # None: a fresh (untrained) network
    key: str  # identifies the weights for caches: checkpoint path + mtime, or the fresh config
    label: str  # for captions

    @property
    def trained(self) -> bool:
        return self.run is not None

    @property
    def side(self) -> int:
        """The image side the network really runs at (pretrained models: 224)."""
        return internal_size(self.model, 32)


@dataclass(frozen=True, eq=False)
class TestSplit:
    """The test images a model is judged on: a run's own test split (its dataset, test subset and seed)."""

    x: torch.Tensor  # (N, 3, 32, 32) uint8
    y: torch.Tensor  # (N,) int64
    classes: tuple[str, ...]
    coarse: CoarseMap | None  # CIFAR-100's superclasses
    key: str


@dataclass(frozen=True, eq=False)
class Picked:
    image: torch.Tensor  # (3, 32, 32) uint8
    caption: str
    index: int | None  # test-split index, None for an upload
    label: int | None  # the true class, None for an upload
    key: str  # identifies the picture for caches


# --- session shadows ----------------------------------------------------------------------------------------

def _shadow() -> dict:
    return st.session_state.setdefault(_SHADOW, {})


def _keep(key: str, fallback, valid=lambda v: True) -> None:
    """Before a widget is drawn: keep its value (re-set as the page's own, or Streamlit drops a widget value
    set on another page), or give it `fallback` when it has none or an invalid one."""
    value = st.session_state.get(key, _MISSING)
    st.session_state[key] = value if value is not _MISSING and valid(value) else fallback


def _from_link(key: str, shadow_key: str) -> str | None:
    """The URL's value when it differs from what these pages last wrote there: a link was followed (a deep
    link, or a gallery's Explain), so it wins over this tab's remembered choice."""
    value = urlstate.get(key)
    last = _shadow().get(shadow_key)
    return value if value is not None and value != (None if last is None else str(last)) else None


def explain_link(where, source: Source, index: int, label: str = "Explain") -> None:
    """A link to the saliency page on this model and test picture (a link, not a button: the browser navigates
    like the menu does, so the sidebar's settings stay in the URL)."""
    query = {**st.query_params.to_dict(), "run": source.run.id if source.run else FRESH, "img": str(index)}
    where.page_link("pages/saliency.py", label=label, icon=":material/visibility:", query_params=query,
                    width="stretch")


# --- the model ------------------------------------------------------------------------------------------------

def runs_with_checkpoints() -> list[RunRecord]:
    """Library runs that have a checkpoint to load (newest first)."""
    return [r for r in runlib.library().list_runs() if checkpoint_of(r) is not None]


@st.cache_resource(show_spinner="Building the untrained network…", max_entries=4)
def _fresh(config_json: str, num_classes: int) -> nn.Module:
    return fresh_model(from_json(config_json), num_classes)


def before_training(source: Source) -> nn.Module:
    """The same network with the weights it started from (the run's seed): what training changed."""
    if not source.trained:
        return source.model
    return _fresh(to_json(source.config), len(source.classes))


def _run_label(run: RunRecord) -> str:
    acc = f", best {pct(run.best_test_acc, 0)}" if run.best_test_acc is not None else ""
    state = "" if run.status == "completed" else f" ({run.status})"
    return f"{run.name} · {run.model} on {run.dataset}{acc}{state}"


def choose_model(where=st) -> Source | None:
    """Draw the model picker; None when nothing can be shown (the dataset panel or an error says why)."""
    settings = current()
    runs = {r.id: r for r in runs_with_checkpoints()}
    shadow = _shadow()
    linked = _from_link("run", "run")
    wanted = linked or shadow.get("run")
    if wanted not in runs and wanted != FRESH:
        if linked:
            where.warning(f"Run {linked} from the link has no checkpoint in this lab's runs folder; showing "
                          "another model.", icon=":material/link_off:")
        best = default_run(list(runs.values()), settings.dataset)  # the best completed run, not the newest
        wanted = best.id if best is not None else FRESH
    elif linked:
        st.session_state[RUN_KEY] = linked  # the link's run, not the one this tab had picked before
    _keep(RUN_KEY, wanted, lambda v: v in runs or v == FRESH)  # a deleted run falls back
    if not runs:
        where.info("No run in the library has a checkpoint yet, so this page shows an **untrained network** "
                   "(random weights): its filters are noise and its answers are guesses. Train one on "
                   "**MLP vs CNN** (or any experiment page), or in a terminal with `python -m core train "
                   "--preset cnn`; it appears here after its first epoch.", icon=":material/info:")
        where.page_link("pages/mlp_vs_cnn.py", label="Train a CNN on the MLP vs CNN page", icon=":material/hub:")
    options = list(runs) + [FRESH]
    c1, c2 = where.columns([3, 1]) if not presenter() else (where.container(), None)
    choice = c1.selectbox("Model", options, key=RUN_KEY,
                          format_func=lambda k: "Untrained network (random weights)" if k == FRESH else
                          _run_label(runs[k]),
                          help="Any run of the library with a checkpoint, or a fresh network for contrast.")
    shadow["run"] = choice
    urlstate.put("run", choice if runs or choice != FRESH else None)
    with friendly_errors("Loading the model"):
        if choice != FRESH:
            return _trained_source(runs[choice])
        preset = "cnn"
        if c2 is not None:
            _keep(FRESH_KEY, shadow.get("fresh", "cnn"), lambda v: v in FRESH_PRESETS)
            preset = c2.selectbox("Architecture", FRESH_PRESETS, key=FRESH_KEY,
                                  format_func=lambda p: get_preset(p).title)
            shadow["fresh"] = preset
        return _fresh_source(preset, settings)
    return None


def _trained_source(run: RunRecord) -> Source:
    path = checkpoint_of(run)
    loaded = trained_model(run)
    if loaded is None or path is None:
        raise LabError(f"run {run.name} has no checkpoint any more; choose another run")
    model, config, meta = loaded
    if not meta.get("classes") or not meta.get("mean") or not meta.get("std"):
        raise LabError(f"the checkpoint of {run.name} lacks its class names or normalization (an older CIFAR "
                       "Lab wrote it); train the run again")
    epoch = meta.get("epoch")
    label = f"{run.name} ({path.name}" + (f", epoch {epoch}" if epoch else "") + ")"
    return Source(model, config, tuple(meta["classes"]), tuple(meta["mean"]), tuple(meta["std"]), run,
                  f"{path}:{path.stat().st_mtime}", label)


def _fresh_source(preset: str, settings) -> Source | None:
    ds = dataset_or_none(settings)
    if ds is None:
        return None
    config = runlib.config_for(preset)
    mean, std = input_stats(config, ds)
    model = _fresh(to_json(config), ds.num_classes)
    return Source(model, config, tuple(ds.classes), mean, std, None, f"fresh:{to_json(config)}",
                  f"untrained {get_preset(preset).title}")


# --- the test split and its predictions -----------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading the test images…", max_entries=4)
def _split(dataset: str, data_dir: str, test_subset: int | None, seed: int) -> TestSplit:
    full = load_full(dataset, data_dir)
    # Only the test split is cut: the same generator stream core.data.load uses for it, so these are the
    # very images the run was evaluated on (the train split is not copied).
    test = stratified_subset(full, None, test_subset, seed=seed)
    return TestSplit(test.test_x, test.test_y, tuple(full.classes), coarse_map(full),
                     f"{dataset}:{data_dir}:{test_subset}:{seed}")


def test_split(source: Source, where=st) -> TestSplit | None:
    """The source's own test split, or None with a message when its dataset is not on this machine."""
    settings = current()
    name = source.config.data.dataset
    if not (name == "synthetic" or name.startswith("folder:")) and \
            not dataset_status(name, settings.data_dir).ready:
        where.warning(f"This model was trained on **{name}**, which is not on this machine, so its test pictures "
                      "cannot be shown: pick it in the sidebar to download it, or upload a picture of your own.",
                      icon=":material/cloud_off:")
        return None
    try:
        split = _split(name, settings.data_dir, source.config.data.test_subset, source.config.seed)
    except LabError as e:
        error(str(e), where=where)
        return None
    if len(split.classes) != len(source.classes):
        where.warning(f"The model knows {len(source.classes)} classes but {name} has {len(split.classes)} here: "
                      "its test pictures cannot be used (upload a picture instead).", icon=":material/warning:")
        return None
    return split


@dataclass(eq=False)
class PredictionSlot:
    """The test-split predictions of one (weights, split), filled once for the whole server (read-only values)."""

    lock: threading.Lock = field(default_factory=threading.Lock)  # two sessions asking at once compute once
    value: tuple[torch.Tensor, torch.Tensor] | None = None


@st.cache_resource(show_spinner=False, max_entries=8)
def prediction_slot(source_key: str, split_key: str) -> PredictionSlot:
    """The server's slot for these weights (checkpoint path + modification time) and test split: Streamlit's
    cache keeps the 8 most recently used. It is filled outside this function, so the progress bar is drawn in
    the session that computes and never replayed in another."""
    return PredictionSlot()


def test_predictions(source: Source, split: TestSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions (N,), probabilities (N, C)) of the model on the whole split, computed once per checkpoint
    (path + modification time) and split, with a progress bar the first time."""
    slot = prediction_slot(source.key, split.key)
    with slot.lock:
        if slot.value is None:
            slot.value = _predict_split(source, split)
        return slot.value


def _predict_split(source: Source, split: TestSplit) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(split.y)
    chunk = 512 if source.side <= 64 else 32  # pretrained models run at 224: small chunks, a moving bar
    bar = st.progress(0.0, text=f"The model looks at the {n:,} test pictures…")
    preds, probs = [], []
    for start in range(0, n, chunk):
        p, pr = predict_split(source.model, split.x[start:start + chunk], source.mean, source.std,
                                batch_size=chunk)
        preds.append(p)
        probs.append(pr)
        done = min(n, start + chunk)
        bar.progress(done / n, text=f"The model looks at the test pictures… {done:,} of {n:,}")
    bar.empty()
    return (torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long),
            torch.cat(probs) if probs else torch.zeros(0, len(source.classes)))


# --- the picture ----------------------------------------------------------------------------------------------

def read_picture(uploaded) -> Picked:
    """An uploaded file -> Picked, or LabError with what is wrong (core/data/images.py's rules)."""
    data = uploaded.getvalue()
    image = read_upload(uploaded)
    digest = hashlib.sha1(data).hexdigest()[:12]
    return Picked(image, f"your picture: {uploaded.name}", None, None, f"upload:{digest}")


def _pick_random(pool: torch.Tensor) -> int | None:
    return int(pool[random.randrange(len(pool))]) if len(pool) else None


def choose_image(source: Source, split: TestSplit | None, where=st) -> Picked | None:
    """Draw the picture picker: a test picture (by class, at random, a mistake, or by number) or an upload.
    None until there is a picture to show (a bad upload shows its message)."""
    shadow = _shadow()
    url_img = _from_link("img", "img")
    modes = {"test": "From the test set", "upload": "My own picture"}
    if split is None:
        modes.pop("test")
    src = "test" if url_img is not None and "test" in modes else shadow.get("src", next(iter(modes)))
    if url_img is not None and "test" in modes:
        st.session_state[SRC_KEY] = "test"
    _keep(SRC_KEY, src if src in modes else next(iter(modes)), lambda v: v in modes)
    mode = where.radio("Picture", list(modes), format_func=modes.get, key=SRC_KEY, horizontal=True)
    shadow["src"] = mode
    if mode == "upload":
        urlstate.put("img", None)
        uploaded = where.file_uploader("A photo (JPEG, PNG, WebP, BMP or GIF); it is shrunk to 32×32 like CIFAR",
                                       key=UPLOAD_KEY)
        if uploaded is None:
            where.caption("Upload a picture to see what the model makes of it.")
            return None
        with friendly_errors("Reading the picture"):
            return read_picture(uploaded)
        return None

    n, classes = len(split.y), split.classes
    start = url_img if url_img is not None else shadow.get("img", 0)
    try:
        start = min(max(0, int(start)), n - 1)
    except (TypeError, ValueError):
        start = 0
    if url_img is not None:
        st.session_state[IMG_KEY] = start  # the link's picture
    _keep(IMG_KEY, start, lambda v: isinstance(v, int) and 0 <= v < n)  # another model's split may be smaller
    c_class, c_rand, c_wrong, c_index = where.columns([3, 2, 2, 2], vertical_alignment="bottom")
    _keep(CLASS_KEY, -1, lambda v: isinstance(v, int) and -1 <= v < len(classes))
    cls = c_class.selectbox("Class", [-1] + list(range(len(classes))), key=CLASS_KEY,
                            format_func=lambda i: "any class" if i < 0 else classes[i],
                            on_change=_first_of_class, args=(split,))
    pool = torch.arange(n) if cls < 0 else torch.nonzero(split.y == cls).flatten()
    if c_rand.button("🎲 Random picture", key="inside_random", width="stretch"):
        picked = _pick_random(pool)
        if picked is not None:
            st.session_state[IMG_KEY] = picked
    if c_wrong.button("🎲 A mistake", key="inside_mistake", width="stretch",
                      help="A test picture this model gets wrong (of the chosen class)"):
        pred, _ = test_predictions(source, split)
        wrong = misclassified(pred, split.y, limit=None, true_class=None if cls < 0 else cls)
        picked = _pick_random(wrong)
        if picked is None:
            where.info("The model gets every one of these test pictures right.")
        else:
            st.session_state[IMG_KEY] = picked
    index = int(c_index.number_input("Test picture #", min_value=0, max_value=n - 1, step=1, key=IMG_KEY))
    shadow["img"] = index
    urlstate.put("img", index)
    true = int(split.y[index])
    return Picked(split.x[index], f"test picture #{index} · true class: {classes[true]}", index, true,
                  f"test:{split.key}:{index}")


def _first_of_class(split: TestSplit) -> None:
    cls = st.session_state.get(CLASS_KEY, -1)
    if cls is not None and cls >= 0:
        hits = torch.nonzero(split.y == cls).flatten()
        if len(hits):
            st.session_state[IMG_KEY] = int(hits[0])


# --- showing it -----------------------------------------------------------------------------------------------

def show_picture(picked: Picked, where=st, scale: int = 6) -> None:
    where.image(to_hwc_uint8(picked.image, scale), caption=picked.caption, width="content")


def show_prediction(source: Source, picked: Picked, split: TestSplit | None, where=st, k: int = 5) -> list:
    """The model's top-k for the picture as bars (green = the true class, red = a wrong top answer), with the
    superclass when the dataset has them. Returns the Guesses."""
    coarse = split.coarse if split is not None else None
    guesses = predict(source.model, picked.image, source.mean, source.std, source.classes, coarse, k=k)
    true = source.classes[picked.label] if picked.label is not None else None
    show_chart(where, top_k_chart(guesses, true, height=chart_height(34 * len(guesses) + 20)), width="stretch")
    top = guesses[0]
    said = f"**{top.name}** ({top.prob:.0%}" + (f", superclass *{top.superclass}*)" if top.superclass else ")")
    verdict = ""
    if true is not None:
        verdict = " - right." if top.name == true else f" - wrong: the true class is *{true}*"
        if top.name != true and coarse is not None:
            same = coarse.names[coarse.fine_to_coarse[picked.label]] == top.superclass
            verdict += ", at least of the same superclass." if same else "."
        elif top.name != true:
            verdict += "."
    where.markdown(f"The model says {said}{verdict}")
    return guesses
