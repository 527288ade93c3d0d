"""LR range test, stepped through in class: the loss against a rising learning rate, a few steps at a time or to
the end, the suggested learning rates drawn on the curve, and one click to train a preset with one of them."""

import hashlib
import time

import streamlit as st

from core.lessons.presets import PRESETS, get_preset
from core.train.finder_pool import Curve
from core.train.lr_finder import LRFinder, schedule_for_suggestion
from core.train.lr_recommend import RECOMMENDED, Recommendation, all_suggestions, recommend
from core.train.lr_suggest import FASTAI, SUGGESTIONS, Suggestion
from core.train.schedule import run_steps_per_epoch, schedule_curve
from core.train.setup import cpu_has_native_bf16, resolve_device
from ui import charts, charts_lr, finders, runlib, urlstate
from ui.class_mode import publish as publish_view
from ui.data_panel import dataset_or_none
from ui.layout import (
    chart_height,
    friendly_errors,
    metric_columns,
    page_header,
    show_chart,
    takeaway,
    try_this,
)
from ui.run_panel import describe, fmt_seconds, live_run
from ui.sidebar import current

STATE = "lr_finder"  # session_state key: {"key": the test's settings, "cursor": points this tab has stepped to}
REPORT_LR = 1e-4  # the report trained every network with Adam at 1e-4
REDRAW_S = 0.5  # while stepping, the live curve is redrawn at most this often (seconds)
BATCHES = [16, 32, 64, 128, 256, 512]
START_LRS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3]
END_LRS = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]
SCHEDULES = {"onecycle": "one-cycle: rises to the LR, then anneals", "cosine": "cosine decay from the LR",
             "constant": "constant at the LR"}
SCHEDULE_TITLES = {"onecycle": "one-cycle peaking at {lr:g}", "cosine": "cosine decay from {lr:g}",
                   "constant": "constant at {lr:g}"}


PAGE = "lr_finder"  # this page's key: its script's name, for the header and the class question
page_header(
    "LR range test",
    "Which learning rate? Instead of guessing, train for a few dozen steps while the learning rate grows from "
    "tiny to huge, and watch the loss (Leslie Smith's *range test*). At first nothing happens - the steps are too "
    "small; then the loss falls, faster and faster; then the steps overshoot and it shoots up. A good learning "
    "rate sits on the steep part, well before the bottom.",
    report="every network was trained with Adam at a learning rate of 1e-4, for 20 epochs - never tuned.", page=PAGE)
settings = current()
ds = dataset_or_none(settings)
if ds is None:
    st.stop()

# --- settings: changing any of them rebuilds the test --------------------------------------------------------
with st.container(border=True):
    c1, c2, c3 = st.columns([3, 2, 2])
    names = list(PRESETS)
    preset = urlstate.selectbox(c1, "Experiment", names, key="lrf_preset", default="cnn",
                                format_func=lambda n: f"{get_preset(n).title} ({get_preset(n).config.optim.name})")
    batch = c2.select_slider("Batch size", BATCHES, 128, key="lrf_batch")
    num_iter = int(c3.number_input("Steps", 5, 1000, 100, step=10, key="lrf_steps",
                                   help="How many steps the test takes from the start LR to the end LR"))
    d1, d2, d3 = st.columns([3, 2, 2])
    start_lr, end_lr = d1.select_slider("From … to learning rate", sorted(set(START_LRS + END_LRS)),
                                        (1e-7, 10.0), key="lrf_range", format_func=lambda v: f"{v:g}")
    beta = d2.slider("Smoothing β", 0.0, 0.99, 0.98, 0.01, key="lrf_beta",
                     help="The smoothed curve averages about 1/(1-β) steps: 0.98 ≈ the last 50")
    mode = d3.radio("LR grows", ["exp", "linear"], key="lrf_mode", horizontal=True,
                    format_func={"exp": "exponentially", "linear": "linearly"}.get)
    toggles = st.container(horizontal=True, vertical_alignment="center")
    val_mode = toggles.toggle("Validation loss", False, key="lrf_val",
                              help="Measure the loss on a fixed set of test images after each step (slower, less "
                                   "noisy) instead of on the training batch")
    val_batches = int(toggles.number_input("Test batches", 1, 10, 2, key="lrf_val_batches", width=160)) \
        if val_mode else 2
    device = resolve_device(settings.device)
    bf16 = True  # what training does on this device (TrainConfig.cpu_amp: bf16 where the CPU has it natively)
    if device.type == "cpu" and cpu_has_native_bf16():
        bf16 = toggles.toggle("bf16 on this CPU", True, key="lrf_bf16",
                              help="Training uses bf16 here too (the lab's default on CPUs that do bf16 natively). "
                                   "Off: fp32, about half as fast; the curve differs only in its digits.")
    p = get_preset(preset)
    st.caption(p.lesson + f"  \nThe run it would train: {describe(runlib.config_for(preset, {'batch_size': batch, 'cpu_amp': bf16}))}"
               f" · on **{settings.dataset_label}**")


def build_key() -> tuple:
    return (preset, batch, num_iter, mode, start_lr, end_lr, beta, val_mode, val_batches, bf16, settings.dataset,
            settings.subset, settings.test_subset, settings.device, settings.data_dir)


def build() -> LRFinder:
    """The test for these settings (called by the shared pool, under its lock, on the first step)."""
    config = runlib.config_for(preset, {"batch_size": batch, "cpu_amp": bf16})
    return LRFinder.from_config(config, ds, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, mode=mode,
                                beta=beta, val_mode=val_mode, val_batches=val_batches, data_root=settings.data_dir)


# The test is shared by every session with the same settings (ui/finders.py): this tab keeps only its cursor.
# Nothing is built until the first step, so opening the page costs no model.
# The cursor is in the URL (`lrf_at`), as every choice a page offers: a link, and a student following the
# teacher, shows the same points of the same curve.
key = build_key()
held = st.session_state.get(STATE)
if held is None or held["key"] != key:
    held = st.session_state[STATE] = {"key": key, "cursor": 0}
pool = finders.pool()


def advance(n: int) -> Curve:
    """Step this tab's cursor n points along the shared curve (computing only what nobody computed yet)."""
    building = not pool.is_live(key) and len(pool.curve(key).points) < held["cursor"] + n
    with friendly_errors("Stepping the range test"), st.spinner(
            "Building the model and the batches…" if building else "Stepping…", show_time=True):
        held["cursor"] = len(pool.advance(key, build, held["cursor"] + n).points)
    put_cursor(held["cursor"])
    return pool.curve(key, held["cursor"])


def put_cursor(n: int) -> None:
    """The cursor in the URL, tied to the test's settings (`n-<fingerprint>`): changed settings start at 0."""
    urlstate.put("lrf_at", f"{n}-{fingerprint}" if n else None)


def url_cursor() -> int:
    """The cursor the URL asks for on these settings (0 for other settings or a hand-edited URL)."""
    n, _, mark = (urlstate.get("lrf_at") or "").partition("-")
    return max(0, min(num_iter, int(n))) if n.isdigit() and mark == fingerprint else 0


fingerprint = hashlib.sha1(repr(key).encode()).hexdigest()[:6]
wanted = url_cursor()
if wanted < held["cursor"]:
    held["cursor"] = wanted
elif wanted > held["cursor"]:  # a link or the teacher's page: the points nobody computed yet are computed once
    advance(wanted - held["cursor"])


def advice(curve: Curve) -> tuple[Recommendation, dict[str, Suggestion]]:
    """The lab's recommendation and every named suggestion (the lab's and fastai's) for the curve so far."""
    return (recommend(curve.lrs, curve.smoothed, losses=curve.losses, beta=beta, num_iter=num_iter,
                      stop_reason=curve.stop_reason),
            all_suggestions(curve.lrs, curve.smoothed, num_iter))


def chart(curve: Curve, rules: tuple[Recommendation, dict[str, Suggestion]] | None = None):
    """The curve, with `rules` (advice(curve)) drawn on it when given."""
    sugg: list[Suggestion] = []
    if rules is not None:
        rec, named = rules
        sugg = [rec.as_suggestion(), *named.values()]  # the recommendation first: its label on top
    return charts_lr.lr_finder_chart(curve.lrs, curve.losses, curve.smoothed, lr_range=(start_lr, end_lr),
                                     suggestions=sugg, report_lr=REPORT_LR, height=chart_height(340),
                                     title="loss against the learning rate")


def stepped(n: int, stop_label: str | None) -> None:
    """Advance this tab n steps a few at a time, redrawing the progress bar and the curve after each chunk, with
    a Stop button on screen meanwhile (stop_label; None: none). A click on any widget ends this script run at
    the next redraw (Streamlit's rerun): the steps done so far stay, the test can go on from there."""
    curve = pool.curve(key, held["cursor"])
    first, target = len(curve.points), min(num_iter, len(curve.points) + n)
    if stop_label is not None:
        controls.button(stop_label, key="lrf_stop", icon=":material/stop:")
    bar = progress_slot.progress(0.0, text=f"step {first} of {num_iter}…")
    chunk = max(1, min(n // 10, num_iter // 25))  # ~10-25 chunks: the curve grows on screen
    drawn = time.monotonic()
    while not curve.done and len(curve.points) < target:
        before = len(curve.points)
        curve = advance(min(chunk, target - before))
        bar.progress(min(1.0, (len(curve.points) - first) / max(1, target - first)),
                     text=f"step {len(curve.points)} of {num_iter} · {fmt_seconds(curve.seconds)}")
        # Redraw the curve at most every REDRAW_S: where the class has already computed these points the
        # steps are instant, and eleven redraws of the same chart per click were most of a busy server's work.
        if time.monotonic() - drawn >= REDRAW_S:
            show_chart(live, chart(curve), width="stretch")
            publish_view()  # the class sees the curve grow, not only its end
            drawn = time.monotonic()
        if len(curve.points) == before and not curve.done:  # a failure ended nothing: do not spin
            break
    # the bar stays (at its last count) until the next click: what the steps did stays readable


# --- step through it -------------------------------------------------------------------------------------
st.subheader("Step through it")
controls, progress_slot, live = st.empty(), st.empty(), st.empty()
# A button's click is in session_state from the start of the run it triggers: act on it first, then draw the
# buttons below with the curve's new state (done: the stepping buttons are off). "Stop" needs no handler: its
# click alone ends the run that was stepping.
clicked = {k: bool(st.session_state.get(k)) for k in ("lrf_one", "lrf_ten", "lrf_end", "lrf_reset", "lrf_stop")}
if clicked["lrf_reset"]:
    held["cursor"] = 0  # back to the start of the shared curve: the points are kept, nothing is recomputed
    put_cursor(0)
elif clicked["lrf_one"]:
    advance(1)
elif clicked["lrf_ten"]:
    stepped(10, None)
elif clicked["lrf_end"]:
    stepped(num_iter, "Stop")
curve = pool.curve(key, held["cursor"])
buttons = controls.container(horizontal=True)
buttons.button("+1 step", key="lrf_one", disabled=curve.done)
buttons.button("+10 steps", key="lrf_ten", disabled=curve.done)
buttons.button("▶ Run to the end", key="lrf_end", type="primary", disabled=curve.done)
buttons.button("↺ Reset", key="lrf_reset", disabled=not curve.points)
if clicked["lrf_stop"] and not curve.done:
    st.info(f"Stopped at step {len(curve.points)} of {num_iter}: go on with +1 / +10 steps or run to the end.",
            icon=":material/pause:")

rec, named = advice(curve)  # once per run: the chart's rules and the suggestions below
show_chart(live, chart(curve, (rec, named) if curve.done or len(curve.points) >= 10 else None), width="stretch")
m1, m2, m3, m4, m5 = metric_columns(5)
last = curve.points[-1] if curve.points else None
m1.metric("Step", f"{len(curve.points)} of {num_iter}")
m2.metric("Learning rate now", f"{last.lr if last else start_lr:.2e}")
m3.metric("Loss of this step", f"{last.loss:.3f}" if last else "—")
m4.metric("Smoothed loss", f"{last.smoothed:.3f}" if last else "—")
per_step = curve.seconds / len(curve.points) if curve.points else None
to_go = "" if curve.done or per_step is None else \
    f" · ~{fmt_seconds(per_step * (num_iter - len(curve.points)))} to the end"
m5.metric("Time stepping", fmt_seconds(curve.seconds) if curve.seconds >= 1 else f"{curve.seconds:.2f} s",
          f"{per_step * 1000:.0f} ms per step{to_go}" if per_step else None, delta_color="off", delta_arrow="off")
if curve.done:
    st.markdown(f"**The test has ended:** {curve.stop_reason}.")
elif not curve.points:
    st.caption(f"Nothing measured yet: each step trains one batch of {batch} pictures at the next learning rate, "
               f"on {resolve_device(settings.device)}.")
st.caption("Everyone on this server who picks these settings steps along this same curve: it is computed once "
           f"and shared (at most {pool.max_live} range tests hold a model at a time).")

# --- suggestions -----------------------------------------------------------------------------------------
st.subheader("Suggested learning rates")
with st.container(border=True):
    r1, r2 = st.columns([1, 3])
    r1.metric("recommended", "none yet" if rec.lr is None else f"{rec.lr:.1e}",
              None if rec.lr is None else rec.name, delta_color="off", delta_arrow="off")
    r2.markdown(f"**The lab's pick.** {rec.reason}")
    if rec.advice:
        r2.markdown(f"**To do better:** {rec.advice}")


def suggestion_row(names: tuple[str, ...], title: str) -> None:
    st.markdown(title)
    group = [named[n] for n in names]
    reasons = {s.reason for s in group}
    one_reason = len(reasons) == 1 and all(s.lr is None for s in group)  # one "why not", once
    for col, s in zip(metric_columns(len(group)), group, strict=True):
        col.metric(s.name, "no suggestion" if s.lr is None else f"{s.lr:.1e}")
        if not one_reason:
            col.caption(s.reason)
    if one_reason and curve.points:
        st.caption(f"No suggestion: {reasons.pop()}.")


suggestion_row(SUGGESTIONS, "**The lab's rules** - each named for what it does:")
suggestion_row(FASTAI, "**fastai 2.8's rules**, computed as fastai's `lr_find` computes them, on this curve:")
on_chart = " (the grey dotted line)" if start_lr <= REPORT_LR <= end_lr else ""
st.caption(f"The report used Adam at {REPORT_LR:g} for every network{on_chart}: a safe default, never tuned. "
           f"{p.title} is set to {p.config.optim.name} {p.config.optim.lr:g}.")
if curve.points and not curve.done:
    st.caption("Suggestions firm up once the loss has turned up again: run the test to the end before trusting them.")

# --- use one -------------------------------------------------------------------------------------------------
st.subheader("Train with it")
usable = {RECOMMENDED: rec.as_suggestion()} if rec.lr is not None else {}
usable |= {name: s for name, s in named.items() if s.lr is not None}
if not usable:
    st.caption("Once the test suggests a learning rate, you can train the experiment with it here.")
else:
    u1, u2, u3 = st.columns([2, 2, 1])
    # The recommendation, when there is one, is the default: a pick made while there was none (another widget
    # key) does not carry over when it appears.
    pick = u1.radio("Suggestion", list(usable), index=0, key="lrf_pick" if RECOMMENDED in usable else "lrf_pick_any",
                    format_func=lambda n: f"{n}: {usable[n].lr:.1e}")
    schedule = u2.selectbox("Schedule", list(SCHEDULES), key="lrf_schedule", format_func=SCHEDULES.get)
    epochs = int(u3.number_input("Epochs", 1, 500, p.config.epochs, key="lrf_epochs"))
    lr = float(f"{usable[pick].lr:.2g}")  # 3.2e-4, not 3.1622776e-4: the run's name and config read well
    with friendly_errors("Preparing the run"):
        config = schedule_for_suggestion(runlib.config_for(preset, {"batch_size": batch, "epochs": epochs}), lr,
                                         schedule)
        spe = run_steps_per_epoch(config, ds)  # as the engine will count them on this dataset and subset
        show_chart(st, charts.lr_schedule_chart(schedule_curve(config.optim, spe, epochs), spe,
                                                 height=chart_height(180),
                                                 title="the run's learning rate: " + SCHEDULE_TITLES[schedule].format(lr=lr)),
                        width="stretch")
        st.markdown(describe(config) + f" · on **{settings.dataset_label}**")
        if st.button(f"▶ Apply {lr:g} to {p.title} and queue it", key="lrf_apply", type="primary",
                     disabled=not settings.can_control,
                     help=None if settings.can_control else "Reserved to the teacher (passcode in the sidebar)"):
            run_id = runlib.start(config, preset=preset, name=f"{preset} · lr {lr:g} ({schedule}, LR finder)")
            st.session_state["lr_finder_suggestion"] = {"preset": preset, "lr": float(lr)}
            st.session_state["lrf_run"] = run_id
            st.toast(f"Queued {p.title} at {lr:g}. The Sweeps page's learning-rate scenarios now centre on it.")
if st.session_state.get("lrf_run") and runlib.library().find(st.session_state["lrf_run"]) is not None:
    live_run(st.session_state["lrf_run"], "lrf")

takeaway("The range test costs a few dozen steps and replaces guessing. The lab recommends the learning rate where "
         "the smoothed loss has made half of its fall: on real CIFAR-10 images it trained better than the report's "
         "fixed 1e-4 and than fastai's valley, with Adam and with SGD, while the steepest point sits too close to "
         "where the loss blows up (measurements: docs/LR_FINDER.md).")
try_this([f"Run the test for *{get_preset('cnn-sgd').title}*, which trains with SGD: how far is its suggestion "
          "from Adam's?",
          "Add batch norm (+ batch norm preset): how much further to the right does the curve stay low?",
          "Turn smoothing down to β = 0.5: why do the suggestions jump around?",
          "Double the batch size: does the suggested learning rate move?"])
