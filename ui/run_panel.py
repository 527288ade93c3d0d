"""The run panel: choose a preset (or tweak it), Start, watch it live, Stop/Resume, and read the result beside
the report's number. Any page embeds it with its own preset list: `run_panel(["cnn", "mlp"], key="nets")`.

Training runs in a trainer process through the run library, so the panel only submits and polls: the live
part is an `st.fragment` that re-runs itself every second while the run is queued or running, and stops
polling (a full rerun) once it ends. Reruns, page switches, refreshes and other sessions all see the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from core.classroom.roles import TEACHER, owns
from core.config import TrainConfig
from core.errors import LabError
from core.lessons.findings import compare_with_report, compares_digits
from core.lessons.presets import Preset, get_preset
from core.models.catalog import model_size
from core.runs.records import MISSING, RunRecord, diverged_reason, or_missing, retry_lr
from core.runs.sizes import run_size
from core.train.schedule import run_steps_per_epoch, schedule_curve
from ui import charts, estimates, runlib, runs_takeaway, urlstate
from ui.data_panel import dataset_facts, dataset_if_here
from ui.layout import chart_height, error, friendly_errors, pct, plain, show_chart
from ui.sidebar import current

STATUS_ICON = {"queued": "⏳", "running": "🏃", "completed": "✅", "stopped": "⏹️", "diverged": "💥", "failed": "❌"}
LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.05, 0.1, 0.2, 0.4]


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "—"
    s = int(round(s))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def num_classes(dataset: str) -> int:
    """Classes of a dataset by name without loading it (core.data.loading.dataset_facts); DataError for an image
    folder that is not a dataset."""
    return dataset_facts(dataset).num_classes


def _tweaks(preset: str, key: str) -> dict[str, Any]:
    """The advanced controls, folded away: a few fields of the preset, as overrides."""
    cfg = get_preset(preset).config
    out: dict[str, Any] = {}
    with st.expander("Tweak this experiment", expanded=False):
        c1, c2, c3 = st.columns(3)
        batch = c1.select_slider("Batch size", [32, 64, 128, 256, 512, 1024], cfg.batch_size,
                                 key=f"{key}:{preset}:batch")
        opt = c2.selectbox("Optimizer", ["adam", "adamw", "sgd"], ["adam", "adamw", "sgd"].index(cfg.optim.name),
                           key=f"{key}:{preset}:opt")
        lrs = sorted(set(LRS + [cfg.optim.lr]))
        lr = c3.select_slider("Learning rate", lrs, cfg.optim.lr, format_func=lambda v: f"{v:g}",
                              key=f"{key}:{preset}:lr")
        d1, d2, d3, d4 = st.columns(4)
        flip = d1.toggle("Random flip", cfg.data.augment.flip_p > 0, key=f"{key}:{preset}:flip")
        crop = d2.toggle("Random crop", cfg.data.augment.crop_padding > 0, key=f"{key}:{preset}:crop")
        seed = d3.number_input("Seed", 0, 10_000, cfg.seed, key=f"{key}:{preset}:seed")
        name = d4.text_input("Run name", "", key=f"{key}:{preset}:name", placeholder="automatic")
    out.update(batch_size=int(batch), optimizer=opt, lr=float(lr), seed=int(seed),
               flip_p=0.5 if flip else 0.0, crop_padding=(cfg.data.augment.crop_padding or 4) if crop else 0)
    if name.strip():
        out["_name"] = name.strip()
    return out


def epochs_key(key: str, preset: str) -> str:
    """The URL key of a panel's epochs for a preset (ui.lesson_budgets' "use this budget" sets it)."""
    return f"{key}_{preset}_epochs"


def _budget(preset: str, key: str) -> int:
    """The run's epochs, shown in every mode (presenter mode too: a teacher sizes runs while projecting); the
    training images are the sidebar's. Kept in the URL, so followers see the teacher's budget."""
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    epochs = urlstate.number_input(c1, "Epochs", key=epochs_key(key, preset), default=get_preset(preset).config.epochs,
                                   min_value=1, max_value=500, step=1)
    c2.caption("Training images: the sidebar's *Training images per run*.")
    return int(epochs)


def _applicable(preset: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Model options in `extra` apply only to presets whose model takes them (freeze_backbone: pretrained)."""
    from core.models.catalog import get_entry

    defaults = get_entry(get_preset(preset).config.model.name).defaults
    return {k: v for k, v in extra.items() if not k.startswith("model.") or k[6:] in defaults}


def describe(config: TrainConfig) -> str:
    """One line a student can read: model, size, optimizer, data."""
    try:
        params, trainable = model_size(config, num_classes(config.data.dataset))
        size = f"{params / 1e6:.1f}M parameters" + (f" ({trainable / 1e6:.2f}M trained)" if trainable < params else "")
    except LabError as e:  # a model that cannot be built, or an image folder that is not a dataset
        size = f"size unknown: {e}"
    d = config.data
    images = "all" if d.subset is None else f"{d.subset:,}"
    return (f"**{config.model.name}** · {size} · {config.optim.name} {config.optim.lr:g} ({config.optim.schedule}) · "
            f"batch {config.batch_size} · {config.epochs} epochs · augmentation: {d.augment.describe()} · "
            f"{images} training images")


def run_panel(presets: Sequence[str], *, key: str, default: str | None = None, allow_tweaks: bool = True,
              show_schedule: bool = False, extra: dict[str, Any] | None = None) -> RunRecord | None:
    """Draw the panel; returns the run it shows (or None). `extra`: page-specific overrides applied last
    (e.g. the transfer page's frozen backbone), as config.apply_overrides keys."""
    settings = current()
    with st.container(border=True):
        names = list(presets)
        start_name = default if default in names else names[0]
        preset = urlstate.selectbox(st, "Experiment", names, key=f"{key}_preset", default=start_name,
                                    format_func=lambda n: f"{get_preset(n).title}  (report: {get_preset(n).report_label})")
        p = get_preset(preset)
        st.caption(p.lesson + (f"  \n*{p.note}*" if p.note else ""))
        epochs = _budget(preset, key)
        # Tweak stays in presenter mode too (one collapsed line): the pages' "Try this" points there
        tweaks = {"epochs": epochs, **(_tweaks(preset, key) if allow_tweaks else {})}
        name = tweaks.pop("_name", None)
        try:
            config = runlib.config_for(preset, {**tweaks, **_applicable(preset, extra or {})})
        except LabError as e:
            error(str(e))
            return None
        st.markdown(describe(config) + f" · on **{settings.dataset_label}**")
        if show_schedule:
            spe = run_steps_per_epoch(config, dataset_if_here(settings))
            # chart_height: at 170 px with projector-sized text the plot was squeezed to a flat line, no y axis
            show_chart(st, charts.lr_schedule_chart(schedule_curve(config.optim, spe, config.epochs), spe,
                                                     height=chart_height(170)), width="stretch")

        c1, c2 = st.columns([1, 3])
        actor = settings.actor
        may_start = actor.is_teacher or bool(actor.name)
        why_not = (f"The image folder is not a dataset: {settings.dataset_problem}" if settings.dataset_problem
                   else None if may_start else "Pick a nickname in the sidebar to start a run of your own")
        when = estimates.plan(config)  # students' runs are always cut to the class budget; the teacher may not
        started = c1.button(when.label("▶ Start"), key=f"{key}:start", type="primary", disabled=why_not is not None,
                            help=plain(why_not) if why_not else when.estimate and when.estimate.basis)
        full = actor.is_teacher and when.cut is not None and c1.button(
            when.full_label(), key=f"{key}:start_full", disabled=why_not is not None,
            help="The run as configured, past the class time budget")
        if settings.dataset_problem:
            c2.caption("Start is off until the sidebar's image folder is a dataset (see the error there).")
        elif when.cut is not None:
            c2.caption(estimates.cut_caption(when, p.config.epochs if p.report_acc is not None else None))
        elif when.estimate is None and actor.is_teacher and not why_not and estimates.time_it_button(c2, config, key):
            st.rerun()
        if started or full:
            with friendly_errors("Starting the run"):
                run_id = runlib.start(config if full else when.config, preset=preset, name=name)
                if actor.is_teacher:  # a student's own run is shown beside the teacher's, not instead of it
                    runlib.remember(key, run_id)
        run = _shown_run(key, preset, settings.dataset, c2)
        mine = runlib.latest_run(preset, settings.dataset, by=(actor.role, actor.name)) \
            if not actor.is_teacher and actor.name else None
        if mine is not None and (run is None or mine.id != run.id):
            # One above the other, each full width: side by side, two live charts in half a page are unreadable.
            if run is not None:
                st.markdown("**The teacher's run**" if not run.by_student else "**The class's run**")
                live_run(run.id, key)
            st.markdown(f"**Your run** ({actor.name})")
            live_run(mine.id, f"{key}:mine")
        elif run is not None:
            live_run(run.id, key)
        return run


def _shown_run(key: str, preset: str, dataset: str, where) -> RunRecord | None:
    """This tab's run for the panel; else the newest run of the preset (so students see the teacher's)."""
    lib = runlib.library()
    chosen = runlib.remembered(key)
    run = lib.find(chosen) if chosen else None
    if run is None or run.preset != preset:  # the teacher's run first: the one the class watches
        run = runlib.latest_run(preset, dataset, by=(TEACHER.role, TEACHER.name)) or runlib.latest_run(preset, dataset)
    others = lib.list_runs(preset=preset, dataset=dataset, limit=12)
    if len(others) > 1 and run is not None:
        ids = [r.id for r in others]
        labels = {r.id: f"{STATUS_ICON.get(r.status, '')} {r.name} · {pct(r.best_test_acc)}" for r in others}
        picked = where.selectbox("Showing run", ids, ids.index(run.id) if run.id in ids else 0,
                                 format_func=labels.get, key=f"{key}:{preset}:shown")
        if picked != run.id:
            run = lib.find(picked)
            runlib.remember(key, picked)
    return run


def live_run(run_id: str, key: str) -> None:
    """A run's live view (status, progress, curves, Stop/Resume, result vs report), polling every second
    while the run is queued or running. Pages that start runs their own way (builder, LR finder) use it too."""
    run = runlib.library().find(run_id)
    if run is None:
        return
    every = 1.0 if run.active else None
    st.fragment(_live_body, run_every=every)(run_id, key)


def _live_body(run_id: str, key: str) -> None:
    lib = runlib.library()
    run = lib.find(run_id)
    if run is None:
        st.info("This run was deleted.")
        return
    status_line(run, lib.queue_position(run.id) if run.status == "queued" else None)
    b1, b2, b3 = st.columns([1, 1, 4])
    actor = current().actor
    control = owns(actor, run.by_role, run.by_name)
    why = None if control else "Only the teacher or the student who started this run can stop or resume it"
    if run.active and b1.button("■ Stop", key=f"{key}:stop:{run.id}", disabled=not control, help=why):
        with friendly_errors("Stopping"):
            lib.request_stop(run.id, actor=actor)
            st.toast("Stop requested: the run saves a checkpoint and stops within a second or so.")
    blocker = lib.can_resume(run) if run.status in ("stopped", "failed") else "not stopped"
    if not blocker and b2.button("↻ Resume", key=f"{key}:resume:{run.id}", disabled=not control, help=why):
        with friendly_errors("Resuming"):
            lib.resume(run.id, actor=actor)
            st.rerun(scope="app")
    if run.status == "diverged":
        train_again_button(run, key, b3)
    curves = [e.to_dict() for e in lib.curves(run.id)]
    if curves:
        preset = get_preset(run.preset) if run.preset else None
        c1, c2 = st.columns(2)
        report = {run.name: preset.report_acc} if preset and preset.report_acc else None
        show_chart(c1, charts.curves_chart({run.name: curves}, "accuracy", height=chart_height(),
                                            title="accuracy per epoch", report=report), width="stretch")
        show_chart(c2, charts.curves_chart({run.name: curves}, "loss", height=chart_height(),
                                            title="loss per epoch"), width="stretch")
    elif run.active:
        st.caption("Curves appear after the first epoch.")
    if not run.active:
        result_vs_report(run)
    if st.session_state.get(f"_was_active:{run.id}") and not run.active:
        st.session_state[f"_was_active:{run.id}"] = False
        st.rerun(scope="app")  # stop polling: redraw the page once with the final state
    st.session_state[f"_was_active:{run.id}"] = run.active


def train_again_button(run: RunRecord, key: str, where) -> None:
    """A diverged run's way on: queue a copy of its config at a tenth of its learning rate (the run library
    checks who may: a student only for their own run, within the quota)."""
    actor = current().actor
    control = owns(actor, run.by_role, run.by_name)
    lr = retry_lr(run)
    if where.button(f"↻ Train again at a tenth of the LR ({lr:.3g})", key=f"{key}:again:{run.id}",
                    disabled=not control, help=None if control else
                    "Only the teacher or the student who started this run can train it again"):
        with friendly_errors("Training again"):
            new_id = runlib.library().train_again(run.id, actor=actor)
            if actor.is_teacher:  # the panel follows the new run, as after Start
                runlib.remember(key, new_id)
            st.toast(f"Queued again at lr {lr:.3g}.")
            st.rerun(scope="app")


def status_line(run: RunRecord, queue_position: int | None = None) -> None:
    icon = STATUS_ICON.get(run.status, "")
    head = f"{icon} **{plain(run.name)}** — {run.status}" + (f" · by {plain(run.by_name)}" if run.by_student else "")
    if run.status == "queued":
        ahead = queue_position or 0
        st.markdown(head + (f" · {ahead} run(s) ahead on {run.device}" if ahead else f" · next on {run.device}"))
        st.progress(0.0, text="waiting for the device")
        return
    if run.status == "running":
        p = run.progress
        frac = p.fraction if p else 0.0
        bits = [f"epoch {p.epoch}/{run.epochs}" if p else f"epoch {run.epochs_done + 1}/{run.epochs}"]
        if p and p.images_per_s:
            bits.append(f"{p.images_per_s:,.0f} images/s")
        if p and p.loss is not None:
            bits.append(f"loss {p.loss:.3f}")
        bits.append(f"ETA {fmt_seconds(run.eta_s)}")
        st.markdown(head + f" on {run.device}")
        st.progress(min(1.0, frac), text=" · ".join(bits))
        return
    st.markdown(head + f" · {run.epochs_done} epoch(s) · {fmt_seconds(run.seconds)} on {run.device}")
    if run.status == "diverged":  # red, with where and why: never read as a result
        error(diverged_reason(run), icon="💥")
    elif run.reason and run.status == "failed":  # often a path or a `*.jpg`: shown as written, never as markdown
        error(run.reason)
    elif run.reason:
        st.caption(plain(run.reason))


def result_vs_report(run: RunRecord) -> None:
    """The run's result beside the report's number for its preset, with an honest note when they differ."""
    if run.best_test_acc is None:
        return
    preset = get_preset(run.preset) if run.preset else None
    c1, c2, c3 = st.columns(3)
    c1.metric("Final test accuracy", pct(run.test_acc))
    c2.metric("Best test accuracy", pct(run.best_test_acc))
    if preset and preset.report_acc is not None and run.status != "diverged":
        label = "Report (CIFAR-100, 20 epochs)" if preset.config.epochs == 20 else "Report (CIFAR-100)"
        if not compares_digits(run.dataset):
            c3.metric(label, preset.report_label)
            trend_vs_baseline(run, preset)
            return
        delta = (run.best_test_acc - preset.report_acc) * 100
        c3.metric(label, preset.report_label, f"{delta:+.1f} points for this run", delta_color="off")
        if run.train_size and run.train_size < dataset_facts("cifar100").train_images:
            st.caption(f"This run trained on {run.train_size:,} of CIFAR-100's 50,000 images; fewer images "
                       f"usually means lower test accuracy than the report's.")


def trend_vs_baseline(run: RunRecord, preset: Preset) -> None:
    """For a run on another dataset than the report's: why its digits are not held against the report's, and
    the trend that does compare - its gain over the baseline experiment's best run on the same data."""
    images = or_missing(run_size(run)[1], ",")
    why = (f"This run used {run.dataset} ({images} training images) and the report CIFAR-100 with 50,000: the "
           f"digits measure different tasks, so they are not compared. ")
    base = runlib.best_runs([preset.baseline], run.dataset).get(preset.baseline) if preset.baseline else None
    if base is None or base.status != "completed" or base.best_test_acc is None:
        base_title = get_preset(preset.baseline).title if preset.baseline else None
        st.caption(why + (f"Compare the trend instead: train the baseline ({base_title}) on {run.dataset} too."
                          if base_title else "This experiment has no baseline to compare the trend with."))
        return
    findings = compare_with_report({run.preset: run.best_test_acc, preset.baseline: base.best_test_acc})
    st.caption(why + "The trend: " + (findings[0].message if findings else MISSING))


def compare_presets(presets: Sequence[str], *, metric: str = "accuracy", key: str = "cmp",
                    title: str | None = None) -> dict[str, RunRecord]:
    """Overlay the curves of each preset's best run (or newest, while none completed) on the current dataset,
    with a small table: parameters, report, lab, time. Returns the runs shown."""
    settings = current()
    runs = runlib.best_runs(list(presets), settings.dataset)
    if not runs:
        st.info(f"No runs of these experiments on {settings.dataset_label} yet: start one above, or queue them "
                f"from the report card.")
        return {}
    curves = runlib.curves_of(runs)
    # runs trained unlike each other (epochs, images, augmentation...) carry their odd settings in the legend
    flagged = runs_takeaway.flags(runs_takeaway.verdict_of(runs, curves))
    shown = {k + (f"  {flagged[k]}" if k in flagged else ""): v for k, v in curves.items()}
    report = {get_preset(k).title + (f"  {flagged[get_preset(k).title]}" if get_preset(k).title in flagged else ""):
              get_preset(k).report_acc for k in runs}
    if any(curves.values()):
        head = title or ""
        if flagged:
            head = (head + " - " if head else "") + "⚠ not trained alike (see the legend)"
        show_chart(st, charts.curves_chart(shown, metric, height=chart_height(300), title=head,
                                            report=report if metric == "accuracy" else None), width="stretch")
    rows = []
    for k, r in runs.items():
        p = get_preset(k)
        epochs = curves.get(p.title) or [{}]  # the curves read above: no second query per run
        params, images = run_size(r)  # a running run's from its config, as the panel above says
        rows.append({"experiment": p.title, "parameters": f"{params / 1e6:.1f}M" if params else MISSING, "report": p.report_label,
                     "lab (best)": pct(r.best_test_acc), "train acc (last)": pct(epochs[-1].get("train_acc")),
                     "epochs": f"{r.epochs_done}/{r.epochs}", "images": or_missing(images, ","),
                     "time": fmt_seconds(r.seconds), "status": r.status, "flag": flagged.get(p.title, "")})
    st.dataframe(rows, hide_index=True, width="stretch")
    return runs
