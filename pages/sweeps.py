"""Sweeps: one preset, a grid of up to two settings, every combination queued as runs sharing a sweep id; then
final accuracy against the swept value, the runs' curves overlaid, the best marked - live while runs train.
Ready-made lessons: the learning-rate scenarios (too low / good / too high) and batch size × epochs."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from core.config import TrainConfig
from core.lessons.presets import PRESETS, get_preset
from core.lessons.takeaways import compare
from core.lessons.verdicts import (
    LESSON_PREFIX,
    lesson_of,
    mark_best,
    scenario_labels,
    too_high_verdict,
)
from core.runs.records import RunRecord
from core.runs.sweeps import (
    accuracy_vs,
    batch_epochs_lesson,
    curve_rows,
    describe,
    expand,
    format_value,
    lr_scenario_values,
    new_sweep_id,
    parse_values,
    record_from_run,
    swept_keys,
)
from core.train.budget import total_text
from ui import charts_lessons, estimates, runlib, urlstate
from ui.class_mode import question_gate
from ui.layout import chart_height, friendly_errors, page_header, pct, plain, show_chart, try_this
from ui.run_panel import STATUS_ICON, fmt_seconds
from ui.runs_takeaway import facts_of
from ui.sidebar import LabSettings, current
from ui.sweep_picker import pick_sweep, sweeps_on

PAGE = "sweeps"  # this page's key: its script's name, for the header and the class question

# Settings a student may sweep: (label, example values). The values are read by core.runs.sweeps.parse_values
# (the CLI's --param parser too).
SWEEPABLE = {
    "lr": ("learning rate", "1e-4, 1e-3, 1e-2"),
    "batch_size": ("batch size", "64, 256, 1024"),
    "epochs": ("epochs", "2, 5, 10"),
    "subset": ("training images", "500, 1000, 2000"),
    "seed": ("seed", "0, 1, 2"),
    "weight_decay": ("weight decay", "0, 5e-4"),
    "label_smoothing": ("label smoothing", "0, 0.1"),
    "flip_p": ("flip probability", "0, 0.5"),
    "crop_padding": ("crop padding", "0, 4"),
    "optimizer": ("optimizer", "adam, sgd"),
}

Record = dict[str, Any]  # a run as the sweep charts read it (core.runs.sweeps.record_from_run)


def sweep_time(configs: list) -> str:
    """' · ≈ 25 min on this CPU': the grid's runs one after another (not cut to the class budget: a sweep
    compares settings, epochs among them)."""
    if not configs:
        return ""
    plans = [estimates.plan(c, budget=False) for c in configs]
    return " · " + total_text([w.estimate for w in plans], plans[0].where)


def queue(config, grid, preset: str, kind: str | None = None) -> None:
    """Queue a grid as one sweep and show it below."""
    with friendly_errors("Queueing the sweep"):
        sweep_id = new_sweep_id([kind]) if kind else None
        sweep_id, ids = runlib.start_sweep(config, grid, preset=preset, sweep_id=sweep_id,
                                           name_prefix=LESSON_PREFIX.get(kind or "", preset))
        urlstate.put("sweep", sweep_id)
        st.toast(f"Queued {len(ids)} runs as sweep {sweep_id}.")


def sweep_label(sweep_id: str, runs: list) -> str:
    """A sweep as the picker lists it: its name, its runs (how many done), how long ago, its id."""
    prefix = runs[0].name.split(" · ")[0]
    done = sum(not r.active for r in runs)
    ago = time.time() - runs[0].created
    when = f"{ago / 60:.0f} min ago" if ago < 3600 else f"{ago / 3600:.0f} h ago" if ago < 86400 else \
        f"{ago / 86400:.0f} days ago"
    return f"{prefix} · {len(runs)} runs ({done} done) · {when} · {sweep_id}"


def pick_network() -> tuple[str, int, TrainConfig | None]:
    """The network and its epochs per run; the preset, the epochs and its config (None when it cannot be made)."""
    names = list(PRESETS)
    c1, c2 = st.columns([3, 1])
    preset = urlstate.selectbox(c1, "Network", names, key="sweep_preset", default="cnn",
                                format_func=lambda n: f"{get_preset(n).title}  (report: {get_preset(n).report_label})")
    base_epochs = int(c2.number_input("Epochs per run", 1, 500, min(get_preset(preset).config.epochs, 5),
                                      key=f"sweep_epochs:{preset}",
                                      help="The preset's epochs unless swept; fewer keeps a sweep short on a CPU."))
    base = None
    with friendly_errors("Preparing the network"):
        base = runlib.config_for(preset, {"epochs": base_epochs})
    return preset, base_epochs, base


def pick_grid(presenter: bool) -> dict[str, str]:
    """The setting to vary and, unless presenting, a second one; each one's values as typed, in that order."""
    keys = list(SWEEPABLE)
    g1, g2, g3, g4 = st.columns([1, 2, 1, 2])
    key1 = g1.selectbox("Vary", keys, key="sweep_key1", format_func=lambda k: SWEEPABLE[k][0])
    text1 = g2.text_input("Values (comma-separated)", SWEEPABLE[key1][1], key=f"sweep_values1:{key1}")
    key2 = None
    if not presenter:
        key2 = g3.selectbox("and", ["(nothing)"] + [k for k in keys if k != key1], key="sweep_key2",
                            format_func=lambda k: SWEEPABLE[k][0] if k in SWEEPABLE else k)
        key2 = None if key2 == "(nothing)" else key2
    text2 = g4.text_input("Values", SWEEPABLE[key2][1], key=f"sweep_values2:{key2}") if key2 else ""
    return {key1: text1, **({key2: text2} if key2 else {})}


def grid_runs(base: TrainConfig | None, texts: dict[str, str]) -> tuple[dict[str, list], list]:
    """The grid the typed values make and the runs it expands to (none while a value cannot be read)."""
    pairs, grid = [], {}
    if base is not None:
        with friendly_errors("Checking the grid"):
            grid = {key: parse_values(key, text) for key, text in texts.items()}
            pairs = expand(base, grid)
    return grid, pairs


def design(settings: LabSettings) -> tuple[str, TrainConfig | None]:
    """Section 1: a network and a grid, the runs it makes, the button that queues them; the preset and its config."""
    st.subheader("1 · Design a sweep")
    preset, base_epochs, base = pick_network()
    grid, pairs = grid_runs(base, pick_grid(settings.presenter))
    if pairs:
        st.markdown(f"This sweep makes **{len(pairs)} run{'s' if len(pairs) != 1 else ''}** of "
                    f"{get_preset(preset).title}, {base_epochs} epoch(s) each, on {settings.dataset_label}: "
                    + ", ".join(f"`{describe(o)}`" for o, _ in pairs[:12]) + (" …" if len(pairs) > 12 else ""))
    if st.button(f"▶ Queue {len(pairs)} runs{sweep_time([c for _, c in pairs])}" if pairs else "▶ Queue",
                 key="sweep_queue", type="primary",
                 disabled=not pairs or not settings.can_control,
                 help=None if settings.can_control else "Reserved to the teacher (passcode in the sidebar)"):
        queue(base, grid, preset)
    return preset, base


def lr_scenarios_box(box, preset: str, base: TrainConfig, can_start: bool) -> None:
    """The learning-rate scenarios, around the LR finder's suggestion for this network (else the preset's LR)."""
    found = st.session_state.get("lr_finder_suggestion") or {}
    suggestion = found.get("lr") if found.get("preset") == preset else None  # an LR is only good for its network
    lrs = lr_scenario_values(float(suggestion) if suggestion else base.optim.lr, base.optim.name)
    with box.container(border=True):
        st.markdown("**Learning rate: too low, good, too high** (report Fig. 3)")
        st.caption(f"{get_preset(preset).title}, {base.optim.name}: {format_value(lrs.low)} "
                   f"(÷{lrs.low_factor:g}) · **{format_value(lrs.good)}** "
                   f"({'the LR finder suggestion' if suggestion else 'the preset'}) · "
                   f"{format_value(lrs.high)} (×{lrs.high_factor:g}). Loss curves overlaid: slow, good, failing.")
        if st.button("▶ Queue the LR scenarios" + sweep_time([c for _, c in expand(base, lrs.grid, check_models=False)]),
                     key="sweep_lesson_lr", disabled=not can_start):
            queue(base, lrs.grid, preset, "lr-scenarios")


def batch_epochs_box(box, preset: str, base: TrainConfig, can_start: bool) -> None:
    """The batch size × epochs lesson (report section X)."""
    be = batch_epochs_lesson(base)
    with box.container(border=True):
        st.markdown("**Batch size and epochs** (report section X)")
        st.caption(f"batch {', '.join(map(str, be.grid['batch_size']))} × epochs "
                   f"{', '.join(map(str, be.grid['epochs']))} = {len(be.grid['batch_size']) * len(be.grid['epochs'])}"
                   " runs. Accuracy and wall time against each.")
        if st.button("▶ Queue batch size × epochs" + sweep_time([c for _, c in expand(base, be.grid, check_models=False)]),
                     key="sweep_lesson_be", disabled=not can_start):
            queue(base, be.grid, preset, "batch-epochs")


def ready_made(preset: str, base: TrainConfig | None, settings: LabSettings) -> None:
    """Section 2: the ready-made lessons, one click each."""
    st.subheader("2 · Ready-made lessons")
    l1, l2 = st.columns(2)
    if base is not None:
        lr_scenarios_box(l1, preset, base, settings.can_start)
        batch_epochs_box(l2, preset, base, settings.can_start)


def sweep_progress(runs: list[RunRecord]) -> int:
    """The bar of finished, running and queued runs; how many have finished."""
    done = sum(not r.active for r in runs)
    running = sum(r.status == "running" for r in runs)
    st.progress(done / max(1, len(runs)), text=f"{done} of {len(runs)} runs finished"
                + (f" · {running} running" if running else "")
                + (f" · {len(runs) - done - running} queued" if len(runs) - done - running else ""))
    return done


def x_axis(keys: list[str], sweep_id: str) -> str | None:
    """The swept setting along the x axis: the only one, or the one picked when two were swept."""
    if len(keys) > 1:
        return st.radio("Along the x axis", keys, horizontal=True, key=f"sweep_x:{sweep_id}",
                        format_func=lambda k: SWEEPABLE.get(k, (k,))[0])
    return keys[0] if keys else None


def run_table(runs: list[RunRecord], records: list[Record]) -> list[dict[str, str]]:
    """One row per run: its status, epochs, accuracies and time."""
    return [{"": STATUS_ICON.get(r.status, ""), "run": r.name, "status": r.status + (f": {r.reason}" if r.reason
                                                                                     else ""),
             "epochs": f"{r.epochs_done}/{r.epochs}", "test acc": pct(r.test_acc),
             "train acc": pct(rec["train_acc"]), "time": fmt_seconds(r.seconds)}
            for r, rec in zip(runs, records)]


def accuracy_charts(runs: list[RunRecord], records: list[Record], x: str | None, keys: list[str],
                    labels: dict[float, str], done: int) -> None:
    """Final accuracy and wall time against the x axis, the best run so far, and whether the comparison is fair."""
    rows = accuracy_vs(records, x, labels=labels) if x else []
    finished, best = mark_best(rows)
    if x and finished:
        title = SWEEPABLE.get(x, (x,))[0]
        c1, c2 = st.columns(2)
        show_chart(c1, charts_lessons.accuracy_vs_chart(finished, x_title=title, height=chart_height(),
                                                         annotate=bool(labels),
                                                         title=f"final accuracy against the {title}"),
                   width="stretch")
        show_chart(c2, charts_lessons.time_vs_chart(finished, x_title=title, height=chart_height()),
                   width="stretch")
        if best:
            st.markdown(f"🏆 Best so far: **{plain(best['name'])}** - test accuracy {pct(best['test_acc'])}.")
        said = compare(facts_of({r.id: r for r in runs}), by_design=tuple(keys))
        if said.winner is not None and done > 1:
            (st.warning if not said.fair else st.info)(plain(said.text), icon=":material/fact_check:")
    elif x:
        st.caption("The accuracy chart fills in as runs finish.")


def curves_chart(records: list[Record], keys: list[str], labels: dict[float, str], sweep_id: str) -> None:
    """Every run's loss or accuracy per epoch, overlaid (the LR scenarios named and coloured by scenario)."""
    curves = curve_rows(records, keys or None)
    colors = None
    if labels:
        names = {describe({"lr": v}): f"{labels[v]} · lr={format_value(v)}" for v in labels}
        curves = [{**c, "label": names.get(c["label"], c["label"])} for c in curves]
        colors = {n: charts_lessons.SCENARIO_COLORS[n.split(" · ")[0]] for n in names.values()}
    if curves:
        metric = st.radio("Curves", ["loss", "accuracy"] if labels else ["accuracy", "loss"], horizontal=True,
                          key=f"sweep_metric:{sweep_id}")
        show_chart(st, charts_lessons.sweep_curves_chart(
            curves, metric, colors=colors, order=list(colors) if colors else None, log_y=metric == "loss",
            height=chart_height(300), title=f"every run's {metric} per epoch (train dashed, test solid)"),
            width="stretch")


def lesson_notes(runs: list[RunRecord], records: list[Record], labels: dict[float, str], lesson: str | None) -> None:
    """Under the table: what a diverged run means, and what the too-high learning rate did in the LR scenarios."""
    if labels and any(r.status == "diverged" for r in runs):
        st.caption("💥 A diverged run's loss blew up - to NaN, or far above where it started, and stayed up: "
                       "training stopped there. If it happened in the first epoch it has no curve - the table says "
                       "at which step.")
    verdict = too_high_verdict(records) if lesson == "lr-scenarios" else None
    if verdict is not None and verdict.outcome == "diverged":
        st.markdown("The too-high learning rate **diverged**: its loss blew up (to NaN, or far above where it "
                        "started) and stayed up.")
    elif verdict is not None and verdict.outcome == "collapsed":
        st.markdown(f"The too-high learning rate did not blow up, but the network **collapsed to "
                    f"about chance** ({pct(verdict.test_acc)}): the steps overshoot, and it ends up predicting "
                    f"much the same class for everything.")
    elif verdict is not None:
        st.markdown(f"Honestly: here the too-high learning rate only **stalled or slowed** "
                    f"({pct(verdict.test_acc)}) rather than diverging"
                    + (" - Adam rescales its steps, so it is harder to blow up than plain SGD"
                       if verdict.adaptive else "")
                    + ". Try an even higher value in the grid above, or more epochs.")


def stop_polling(sweep_id: str, runs: list[RunRecord]) -> None:
    """Once every run has finished, rerun the whole page once: the results stop polling."""
    if st.session_state.get(f"_sweep_active:{sweep_id}") and not any(r.active for r in runs):
        st.session_state[f"_sweep_active:{sweep_id}"] = False
        st.rerun(scope="app")  # stop polling once everything has finished
    st.session_state[f"_sweep_active:{sweep_id}"] = any(r.active for r in runs)


def results(sweep_id: str) -> None:
    """One sweep's results (a fragment, polled while runs are active): progress, charts, curves, table, verdict."""
    lib = runlib.library()
    runs = list(reversed(lib.list_runs(sweep_id=sweep_id)))
    records = [record_from_run(r, lib.curves(r.id)) for r in runs]
    done = sweep_progress(runs)
    keys = swept_keys(records) if len(records) > 1 else []
    lesson = lesson_of(sweep_id)
    labels = scenario_labels(lesson, keys, [r["config"].optim.lr for r in records])
    x = x_axis(keys, sweep_id)
    accuracy_charts(runs, records, x, keys, labels, done)
    curves_chart(records, keys, labels, sweep_id)
    st.dataframe(run_table(runs, records), hide_index=True, width="stretch")
    lesson_notes(runs, records, labels, lesson)
    stop_polling(sweep_id, runs)


def results_section(settings: LabSettings) -> None:
    """Section 3: pick a sweep on this dataset and follow its results, live while any of its runs is active."""
    st.subheader("3 · Results")
    sweeps = sweeps_on(settings.dataset)
    if not sweeps:
        st.info(f"No sweeps on {settings.dataset_label} yet: queue one above.")
        return
    picked = pick_sweep(sweeps, label="Sweep", url_key="sweep", key="sweep_pick", describe=sweep_label)
    active = any(r.active for r in sweeps[picked])
    st.fragment(results, run_every=1.0 if active else None)(picked)


page_header(
    "Sweeps & learning-rate scenarios",
    "A **sweep** trains the same network several times, changing one or two settings - the learning rate, the "
    "batch size, the epochs... - and nothing else, so any difference in the results comes from that setting. "
    "Choose a grid, see how many runs it makes, queue them, and watch accuracy against the setting fill in.",
    report="section IX trains one network at a too-low, a good and a too-high learning rate (Fig. 3: slow, good, "
           "diverging); section X compares batch sizes and numbers of epochs.", page=PAGE)
question_gate(PAGE)  # class mode: predict, then reveal (hides the results while open)
settings = current()
preset, base = design(settings)
ready_made(preset, base, settings)
results_section(settings)
st.markdown("**The general lesson:** change one thing at a time. A learning rate that is too low is slow but "
            "safe; one that is too high wastes the whole run. Bigger batches make each epoch faster but take fewer "
            "steps, so at the same learning rate they need more epochs. *What your sweep says is above.*")
try_this(["Run the LR finder first: its suggestion becomes the 'good' learning rate of the scenarios.",
          "Sweep the seed (0, 1, 2) at a fixed setting: how far apart are identical runs? Smaller differences "
          "than that mean nothing.",
          "Sweep batch size 64, 256, 1024 and set the x axis to time: which one is fastest on this machine?"])
