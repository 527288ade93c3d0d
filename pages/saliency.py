"""Saliency maps: which pixels made the model answer what it answered, by five methods (Captum), each with its
measured time - and the sanity check (Adebayo et al., 2018) that tells a map of the network from a map of
the picture."""

from collections import OrderedDict

import streamlit as st

from core.explain.attribution import BASELINES, METHODS, attribute
from core.explain.figures import colorize, overlay, upscale
from core.explain.sanity import SanityResult, randomization_units, sanity_check
from core.models.registry import conv_layers, last_conv
from ui import pickers
from ui.charts_inside import sanity_chart
from ui.layout import chart_height, friendly_errors, page_header, presenter, show_chart, takeaway, try_this
from ui.pickers import Picked, Source, TestSplit
from ui.pictures import to_hwc_uint8

PAGE = "saliency"  # this page's key: its script's name, for the header and the class question

DISPLAY = 192  # pixels: the side every map is shown at (32×32 maps: 6× nearest-neighbour)
CACHE = 40  # attributions kept per browser tab, so moving a slider does not recompute every map


def method_options(method: str, side: int) -> dict:
    """The options of one method from the (hidden in presenter mode) controls; defaults otherwise."""
    if presenter():
        return {}
    ss = st.session_state
    if method == "ig":
        ibs = ss.get("sal_ig_ibs", "auto")
        return {"baseline": ss.get("sal_ig_baseline", "black"), "n_steps": ss.get("sal_ig_steps", 32),
                "internal_batch_size": None if ibs == "auto" else ibs}
    if method == "smoothgrad":
        return {"nt_samples": ss.get("sal_sg_samples", 16), "noise": ss.get("sal_sg_noise", 0.15)}
    if method == "gradcam":
        layer = ss.get("sal_cam_layer", "default")
        return {} if layer == "default" else {"layer": layer}
    if method == "occlusion":
        return {"window": min(side, ss.get("sal_occ_window", 8)), "stride": ss.get("sal_occ_stride", 4)}
    return {}


def option_controls(model) -> None:
    """The expander of every method's options and of how the maps are drawn."""
    with st.expander("Method options"):
        c = st.columns(4)
        c[0].markdown("**Integrated Gradients**")
        c[0].selectbox("Baseline (the starting picture)", BASELINES, key="sal_ig_baseline",
                       help="black pixels, the mean colour, or this picture blurred")
        c[0].select_slider("Steps", [8, 16, 32, 64, 128], value=32, key="sal_ig_steps")
        c[0].selectbox("Internal batch size", ["auto", 8, 16, 32, 64, 128], key="sal_ig_ibs",
                       help="How many of the path's pictures go through the network at once (memory vs speed).")
        c[1].markdown("**SmoothGrad**")
        c[1].select_slider("Noisy copies", [4, 8, 16, 32, 64], value=16, key="sal_sg_samples")
        c[1].slider("Noise (fraction of the pixel range)", 0.05, 0.5, 0.15, 0.05, key="sal_sg_noise")
        c[2].markdown("**Grad-CAM**")
        if conv_layers(model):
            default = last_conv(model)[0]
            c[2].selectbox("Layer", ["default"] + [n for n, _ in conv_layers(model)], key="sal_cam_layer",
                           format_func=lambda n: f"last conv layer ({default})" if n == "default" else n)
        else:
            c[2].caption("This network has no convolution layers, so Grad-CAM has nothing to look at.")
        c[3].markdown("**Occlusion**")
        c[3].select_slider("Window (pixels)", [2, 4, 6, 8, 12, 16], value=8, key="sal_occ_window")
        c[3].select_slider("Stride (pixels)", [1, 2, 4, 8], value=4, key="sal_occ_stride")
        st.caption("Small occlusion windows with stride 1 take hundreds of forward passes: seconds on a CPU.")
        d = st.columns(4)
        d[0].slider("Saturate the top % of pixels", 0.0, 5.0, 0.0, 0.5, key="sal_clip",
                    help="One very bright pixel can leave the rest of a map dark; saturating it shows more.")
        d[1].slider("Overlay opacity", 0.2, 0.9, 0.55, 0.05, key="sal_alpha")
        d[2].selectbox("Colours", ["inferno", "viridis", "gray"], key="sal_cmap")


def cached_attribution(source, picked, method: str, target: int | None, opts: dict, status):
    """One attribution, from this tab's cache when nothing changed; a progress bar while it computes."""
    cache = st.session_state.setdefault("_sal_cache", OrderedDict())
    key = (source.key, picked.key, method, target, tuple(sorted(opts.items())))
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    title = METHODS[method].title
    bar = status.progress(0.0, text=f"{title}…")

    def progress(done: int, total: int) -> None:  # called in this script thread by attribute()
        bar.progress(min(1.0, done / max(1, total)), text=f"{title}: {done}/{total} pictures through the network")

    result = attribute(source.model, picked.image, source.mean, source.std, method, target, progress=progress,
                         **opts)
    bar.empty()
    cache[key] = result
    while len(cache) > CACHE:
        cache.popitem(last=False)
    return result


def show_map(map_col, overlay_col, note_col, picked, a, alpha: float, cmap: str) -> None:
    """One method's heat map, its overlay on the picture, and its time."""
    factor = max(1, DISPLAY // a.map.shape[-1])
    map_col.image(upscale(colorize(a.map, cmap), factor), width="content")
    overlay_col.image(upscale(overlay(picked.image, a.map, alpha, cmap), factor), width="content")
    extra = ""
    if a.method == "ig" and "delta" in a.notes:
        extra = f" · completeness error {float(a.notes['delta']):.2g}"
    note_col.caption(f"⏱ **{fmt_time(a.seconds)}**{extra}")


def fmt_time(seconds: float) -> str:
    """Milliseconds under a second, else seconds with one decimal."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def what_to_explain(source: Source, picked: Picked, split: TestSplit) -> tuple[int | None, int, list[str]]:
    """The picture and the model's top guesses, then which class to explain and by which methods: (the class
    asked, None for the prediction; the predicted class; the methods)."""
    left, right = st.columns([1, 2])
    pickers.show_picture(picked, left, scale=DISPLAY // 32)
    guesses = []
    with friendly_errors("Predicting"):
        guesses = pickers.show_prediction(source, picked, split, right)
    classes = source.classes
    predicted = classes.index(guesses[0].name) if guesses else 0
    target = right.selectbox("Explain which class", [-1] + list(range(len(classes))), key="sal_target",
                             format_func=lambda i: f"the prediction ({classes[predicted]})" if i < 0
                             else classes[i],
                             help="A map explains one class: why *this* answer. Pick another class to ask "
                                  "what in the picture speaks for it.")
    big = source.side > 64
    defaults = ["saliency", "gradcam"] if big else list(METHODS)
    if not conv_layers(source.model):  # an MLP: Grad-CAM needs feature maps
        defaults = [m for m in defaults if m != "gradcam"]
    methods = st.multiselect("Methods", list(METHODS), default=defaults, key="sal_methods",
                             format_func=lambda m: METHODS[m].title)
    if big:
        st.caption(f"This network looks at pictures at {source.side}×{source.side}: Integrated Gradients, "
                   "SmoothGrad and occlusion take several seconds each on a CPU (a progress bar shows how far "
                   "they are).")
    return (None if target < 0 else target), predicted, methods


def look() -> tuple[float, str, float]:
    """How the maps are drawn: overlay opacity, colour map and the top % saturated (none in presenter mode)."""
    alpha = st.session_state.get("sal_alpha", 0.55)
    cmap = st.session_state.get("sal_cmap", "inferno")
    clip = 0.0 if presenter() else st.session_state.get("sal_clip", 0.0)
    return alpha, cmap, clip


def side_by_side(source: Source, picked: Picked, methods: list[str], explained: int | None, predicted: int,
                 alpha: float, cmap: str, clip: float) -> None:
    """The picture, then each method's map, overlay and time in a column of its own."""
    # one row of columns per kind of content, so titles of different lengths keep the maps aligned
    heads, maps_row, overlays_row, notes_row = (st.columns(len(methods) + 1) for _ in range(4))
    heads[0].markdown("**The picture**")
    maps_row[0].image(to_hwc_uint8(picked.image, DISPLAY // 32), width="content")
    notes_row[0].caption("heat map: bright = important · overlay: the heat map over the picture")
    for i, method in enumerate(methods, start=1):
        heads[i].markdown(f"**{METHODS[method].title}**", help=METHODS[method].description)
        with maps_row[i], friendly_errors(METHODS[method].title):
            opts = {**method_options(method, 32), "clip_percent": clip}
            a = cached_attribution(source, picked, method, explained, opts, maps_row[i])
            show_map(maps_row[i], overlays_row[i], notes_row[i], picked, a, alpha, cmap)
    name = source.classes[predicted if explained is None else explained]
    st.caption(f"Every map explains **{name}**. Each is scaled to its own strongest pixel; the times are "
               "the attribution alone, measured on this machine.")


def sanity(source: Source, picked: Picked, explained: int | None, cmap: str, clip: float) -> None:
    """The sanity check of one method: run on a click, its result kept per picture, method and options."""
    st.subheader("Sanity check: does the map depend on what the network learned?")
    st.markdown(
        "Adebayo et al. (2018) asked a simple question: if we **scramble the network's weights**, layer by "
        "layer from the top, does the saliency map change? It should - the scrambled network has forgotten "
        "everything. A saliency method that still draws the same picture after the network's weights are "
        "scrambled is showing you the image, not the network: often just its edges. Below, the map is "
        "recomputed after each step and compared with the trained network's map by **rank correlation** "
        "(1 = same pixels in the same order of importance, 0 = unrelated).")
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    check = c1.selectbox("Method to check", list(METHODS), key="sal_sanity_method",
                         format_func=lambda m: METHODS[m].title)
    store = st.session_state.setdefault("_sal_sanity", {})
    opts = {**method_options(check, 32), "clip_percent": clip}
    skey = (source.key, picked.key, check, explained, tuple(sorted(opts.items())))
    if not source.trained:
        c2.button("Run the sanity check", disabled=True, key="sal_sanity_run")
        st.caption("This network is untrained: scrambling random weights teaches nothing. Pick a trained run.")
    elif c2.button("Run the sanity check", key="sal_sanity_run", type="primary"):
        units = randomization_units(source.model)
        bar = st.progress(0.0, text="The trained network's map…")

        def sanity_progress(step: int, steps: int) -> None:
            """Move the bar to this step of the check (called by sanity_check)."""
            label = "the trained network's map" if step == 0 else f"randomized {units[step - 1][0]}"
            bar.progress(step / max(1, steps), text=f"Step {step} of {steps}: {label}")

        with friendly_errors("The sanity check"):
            store[skey] = sanity_check(source.model, picked.image, source.mean, source.std, check, explained,
                                       progress=sanity_progress, **opts)
        bar.empty()
    result = store.get(skey)
    if result is not None:
        sanity_result(result, source.classes, cmap)
    elif source.trained:
        st.caption("Press the button: the check recomputes the map once per layer.")


def sanity_result(result: SanityResult, classes: tuple[str, ...], cmap: str) -> None:
    """The map after each randomization step with its rank correlation, the chart of them, and the verdict."""
    per_row = 8
    steps = list(result.steps)
    for start in range(0, len(steps), per_row):
        row = st.columns(per_row)
        for col, s in zip(row, steps[start:start + per_row]):
            factor = max(1, 128 // s.map.shape[-1])
            col.image(upscale(colorize(s.map, cmap), factor), width="stretch")
            col.caption("**trained**  \nthe reference" if s.step == 0 else
                        f"**+ {s.layer.rsplit('.', 1)[-1]}**  \nρ = {s.rank_corr:.2f}",
                        help=None if s.step == 0 else f"randomized so far: {', '.join(s.randomized)}")
    show_chart(st, sanity_chart(steps, height=chart_height(300)), width="stretch")
    if result.flag:
        st.error(f"**Fails the check.** {result.verdict}", icon=":material/gpp_bad:")
    elif steps[-1].rank_corr < 0.5:
        st.success(f"**Passes the check.** {result.verdict}", icon=":material/verified:")
    else:
        st.warning(f"**Only partly.** {result.verdict}", icon=":material/warning:")
    st.caption(f"{len(steps) - 1} randomization steps for {classes[result.target]} in "
               f"{fmt_time(result.seconds)}.")


page_header(
    "Saliency maps",
    "A **saliency map** colours each pixel by how much it mattered for one answer of the network. There is no "
    "single right way to measure that, so here are five, side by side: the plain **gradient** (which pixels "
    "would change the score fastest), **Integrated Gradients** (the gradient summed on the way from a blank "
    "picture to this one), **SmoothGrad** (the gradient averaged over noisy copies), **Grad-CAM** (which regions "
    "of the last feature maps the class relies on) and **occlusion** (hide a patch, watch the score drop). "
    "Bright = important. They often disagree - and some of them can fool you, as the sanity check below shows.", page=PAGE)

source = pickers.choose_model()
if source is not None:
    split = pickers.test_split(source)
    picked = pickers.choose_image(source, split)
    if picked is not None:
        explained, predicted, methods = what_to_explain(source, picked, split)
        if not presenter():
            option_controls(source.model)
        alpha, cmap, clip = look()
        if methods:
            side_by_side(source, picked, methods, explained, predicted, alpha, cmap, clip)
        st.divider()
        sanity(source, picked, explained, cmap, clip)

takeaway("A saliency map is an answer to *one* question about *one* class, and the methods answer it "
         "differently. Trust a map only when it changes with the network: the sanity check is how you know it "
         "shows the network's reasoning and not just the picture's edges.")
try_this(["Pick a test picture the model gets wrong (🎲 A mistake) and explain both the wrong answer and the "
          "true class: which parts of the picture speak for each?",
          "Run the sanity check on the vanilla gradient and on Grad-CAM: which one falls apart faster when the "
          "weights are scrambled?",
          "Integrated Gradients with a black, gray and blurred baseline: how much does the starting picture "
          "change the map?"])
