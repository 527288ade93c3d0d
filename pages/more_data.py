"""More data is better: the same network on 10, 25, 50 and 100% of the training images (one click queues the
four runs as a sweep), then test and train accuracy against the training-set size as the runs finish."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from core.lessons.presets import PRESETS, get_preset
from core.lessons.takeaways import data_size_verdict
from core.lessons.verdicts import mark_best
from core.runs.sweeps import (
    DATA_FRACTIONS,
    accuracy_vs,
    data_size_lesson,
    new_sweep_id,
    record_from_run,
)
from ui import charts_lessons, runlib, urlstate
from ui.class_mode import question_gate
from ui.data_panel import dataset_facts
from ui.layout import chart_height, error, friendly_errors, page_header, pct, plain, show_chart, try_this
from ui.run_panel import STATUS_ICON, fmt_seconds
from ui.sidebar import current
from ui.sweep_picker import pick_sweep, sweeps_on

PREFIX = "more-data"  # sweep ids of this lesson start with it (the sweeps page recognises it too)


def train_size(settings) -> int | None:
    """The training images a run may use: the sidebar's limit, else the whole training split."""
    if settings.subset:
        return settings.subset
    try:
        return dataset_facts(settings.dataset).train_images  # known without decoding an image
    except LabError as e:
        error(str(e))
        return None


def signed(gap: float) -> str:
    """+7.6% / -1.4% / +0.0% (never "-0.0%")."""
    return f"{round(gap, 3) + 0.0:+.1%}"


def results(sweep_id: str, full: int | None) -> None:
    lib = runlib.library()
    runs = list(reversed(lib.list_runs(sweep_id=sweep_id)))
    records = [record_from_run(r, lib.curves(r.id)) for r in runs]
    done = [r for r in runs if not r.active]
    st.progress(len(done) / max(1, len(runs)), text=f"{len(done)} of {len(runs)} runs finished")
    biggest = max((r.config.data.subset or 0 for r in runs), default=0) or full or 1
    labels = {r.config.data.subset: f"{(r.config.data.subset or biggest) / biggest:.0%}" for r in runs}
    actual = {r.id: r.train_size for r in runs}  # the same number per class: 125 of 10 classes is 120
    rows, _ = mark_best([{**r, "value": actual.get(r["run_id"]) or r["value"]}
                         for r in accuracy_vs(records, "subset", labels=labels)])
    scored = [r for r in rows if r["test_acc"] is not None]
    if rows:
        c1, c2 = st.columns([3, 2])
        show_chart(c1, charts_lessons.data_size_chart(rows, height=chart_height(320)), width="stretch")
        show_chart(c2, charts_lessons.gap_vs_chart(rows, x_title="training images (log scale)", log_x=True,
                                                    height=chart_height(320), title="train − test gap"),
                        width="stretch")
        st.caption("Solid: test accuracy; dashed: train accuracy (its last epoch); the shaded band between them is "
                   "the overfitting gap.")
    else:
        st.caption("The chart fills in as runs finish.")
    st.dataframe([{"": STATUS_ICON.get(r.status, ""), "training images": r.train_size or r.config.data.subset or "all",
                   "share": labels.get(r.config.data.subset, ""), "test acc": pct(r.test_acc),
                   "train acc": pct(rec["train_acc"]),
                   "gap": signed(rec["train_acc"] - r.test_acc) if rec["train_acc"] is not None and r.test_acc
                   is not None else "—", "epochs": f"{r.epochs_done}/{r.epochs}", "time": fmt_seconds(r.seconds),
                   "status": r.status} for r, rec in zip(runs, records)], hide_index=True, width="stretch")
    verdict = data_size_verdict(scored)
    if verdict.text:
        (st.success if verdict.helped and verdict.gap_narrowed is not False else st.warning)(
            f"**What these runs say.** {plain(verdict.text)}", icon=":material/fact_check:")
    active = any(r.active for r in runs)
    if st.session_state.get(f"_md_active:{sweep_id}") and not active:
        st.session_state[f"_md_active:{sweep_id}"] = False
        st.rerun(scope="app")
    st.session_state[f"_md_active:{sweep_id}"] = active


PAGE = "more_data"  # this page's key: its script's name, for the header and the class question
page_header(
    "More data is better",
    "Train the very same network on a tenth, a quarter, half and all of the training images. With few images "
    "the network can simply memorize them: its training accuracy runs ahead while its test accuracy stays low. "
    "Every extra image is a new example of what a class looks like - so test accuracy climbs and, once the runs "
    "are long enough to fit their data, the gap between train and test narrows.",
    report="section X concludes: the more data, the better - more than any single architecture change.", page=PAGE)
question_gate(PAGE)  # class mode: predict, then reveal (hides the results while open)
settings = current()

full = train_size(settings)
c1, c2 = st.columns([3, 1])
names = list(PRESETS)
preset = urlstate.selectbox(c1, "Network", names, key="md_preset", default="cnn",
                            format_func=lambda n: f"{get_preset(n).title}  (report: {get_preset(n).report_label})")
epochs = int(c2.number_input("Epochs per run", 1, 500, min(get_preset(preset).config.epochs, 10),
                             key=f"md_epochs:{preset}"))
lesson = None
if full:
    with friendly_errors("Preparing the lesson"):
        config = runlib.config_for(preset, {"epochs": epochs})
        lesson = data_size_lesson(config, full)
if lesson is not None:
    sizes = lesson.grid["subset"]
    st.markdown(f"Four runs of **{get_preset(preset).title}**, {epochs} epochs each, on "
                + ", ".join(f"**{n:,}**" for n in sizes) + f" of the {full:,} training images "
                f"({' / '.join(f'{f:.0%}' for f in DATA_FRACTIONS)}; the same number per class, so rounded down to a "
                f"multiple of the number of classes) - "
                f"{settings.dataset_label}, every run tested on the same test images.")
    if full == settings.subset:
        st.caption("100% here is the sidebar's *Training images per run*; raise it there for a bigger range.")
    if st.button("▶ Queue the four runs", key="md_queue", type="primary", disabled=not settings.can_start,
                 help=None if settings.can_control else "Reserved to the teacher (passcode in the sidebar)"):
        with friendly_errors("Queueing the runs"):
            sweep_id, _ = runlib.start_sweep(lesson.config, lesson.grid, preset=preset,
                                             sweep_id=new_sweep_id([PREFIX]), name_prefix="More data")
            urlstate.put("md_sweep", sweep_id)

st.subheader("Accuracy against training-set size")
sweeps = sweeps_on(settings.dataset, PREFIX)
if not sweeps:
    st.info(f"No runs of this lesson on {settings.dataset_label} yet: queue them above.")
else:
    picked = pick_sweep(sweeps, label="Runs", url_key="md_sweep", key="md_pick",
                        describe=lambda s, runs: f"{runs[0].name.split(' · ')[0]} · "
                                                 f"{get_preset(runs[0].preset).title if runs[0].preset else ''}"
                                                 f" · {runs[0].epochs} epochs · {s}")
    st.fragment(results, run_every=1.0 if any(r.active for r in sweeps[picked]) else None)(picked, full)

st.markdown("**The general lesson:** more data is the most reliable way to a better network: test accuracy climbs "
            "with every doubling, and the gap to training accuracy - memorization - shrinks. Augmentation (the "
            "previous pages) is a cheap imitation of exactly this. *What your runs say is above, under the chart.*")
try_this(["Queue the lesson with 5 and then 20 epochs: does the gap at 10% grow with more epochs?",
          "Compare the 100% run's gap with the dropout and augmentation presets: which closes it more?",
          "Read the time column: is twice the data twice the time?"])
