"""Start / report card: every experiment of the report as a row - its number, the lab's best run, a Start button.
"""

import streamlit as st

from core.lessons.presets import PRESETS, SECTIONS
from core.lessons.takeaways import card_findings
from core.runs.disk import room_for
from core.train.budget import total_text
from ui import charts, estimates, runlib
from ui.data_panel import dataset_panel
from ui.layout import friendly_errors, show_chart, try_this
from ui.report_card import report_card_table
from ui.runs_takeaway import facts_of
from ui.sidebar import detected_devices, enter

settings = enter("home")  # this page's key: a deep link that bypassed app.py goes round through it
st.title("CIFAR Lab")
st.markdown(
    "A homework report trained a dozen networks on **CIFAR-100** (60,000 tiny 32×32 photos, 100 classes) and wrote "
    "down what each change was worth. This lab re-runs every one of those experiments with one click, puts "
    "the report's number beside yours, and shows what the report could only describe. Pick a dataset and a "
    "training-set size in the sidebar, then queue an experiment - or the whole report.")
dataset_panel(settings)

lib = runlib.library()
best = runlib.best_runs(list(PRESETS), settings.dataset)
report_rows = [p for p in PRESETS.values()]

top = st.columns([2, 2, 3])
top[0].metric("Experiments", len(PRESETS))
top[0].caption(f"{sum(1 for p in PRESETS if p in best)} of them run on {settings.dataset_label}")
running = lib.list_runs(status=("running", "queued"))
top[1].metric("Running / queued", f"{sum(r.status == 'running' for r in running)} / "
                                  f"{sum(r.status == 'queued' for r in running)}")
with top[2]:
    st.write("")
    with_report = [p for p in PRESETS.values() if p.report_acc is not None]
    plans = [estimates.plan(runlib.config_for(p.name)) for p in with_report]  # each cut to the class budget
    total = total_text([w.estimate for w in plans], plans[0].where)
    if st.button(f"▶ Queue the whole report ({len(with_report)} runs, {total})", type="primary",
                 disabled=not settings.can_start, help="Each experiment of the report, with the sidebar's "
                 "dataset and training-set size. They run one after another."):
        with friendly_errors("Queueing the report"):
            runlib.start_many([(w.config, None, p.name) for p, w in zip(with_report, plans, strict=True)],
                              what="queue the whole report")
            st.toast(f"Queued {len(with_report)} runs - they start one after another.")
            st.rerun()
    if any(w.cut for w in plans):
        st.caption(f"{sum(1 for w in plans if w.cut)} of them cut to fit the class budget of "
                   f"{plans[0].minutes:g} minutes per run (fewer epochs, then fewer images).")
    if settings.actor.is_teacher:  # the whole report is the teacher's to queue: 13 checkpoints, 12 GB on CIFAR-100
        room = room_for([runlib.config_for(p.name) for p in with_report], lib.root)
        (st.caption if room.fits else st.warning)(room.text())
    if settings.device in ("auto", "cpu") and not any(v.startswith("cuda") for v, _ in detected_devices()):
        st.caption("On a CPU, the wide CNNs and the 224×224 ResNet18 take hours: use a small training subset.")

st.divider()
# One markdown table per section, not a grid of 140 columns, texts and buttons: four fresh browsers opening the
# page at once used 14 CPU-s instead of 16-17 (docs/PERFORMANCE.md, "Classroom load").
with st.container(key="report_card"):  # presenter mode enlarges its numbers (ui/presenter.py)
    for section in SECTIONS:
        presets = [p for p in report_rows if p.section == section]
        if presets:
            st.subheader(section)
            st.markdown(report_card_table(presets, best))

choice, go = st.columns([3, 1], vertical_alignment="bottom")
not_run = [p.name for p in report_rows if p.name not in best]
pick = choice.selectbox("Queue one experiment", list(PRESETS), key="card_pick",
                        index=list(PRESETS).index(not_run[0]) if not_run else 0,
                        format_func=lambda n: f"{PRESETS[n].section} · {PRESETS[n].title}")
picked = estimates.plan(runlib.config_for(pick))
if go.button(picked.label("▶ Queue it"), key="card_queue", disabled=not settings.can_start, width="stretch",
             help="With the sidebar's dataset and training-set size"):
    with friendly_errors("Queueing"):
        runlib.start(picked.config, preset=pick)
        st.toast(f"Queued {PRESETS[pick].title}")
        st.rerun()
if picked.cut is not None:
    st.caption(estimates.cut_caption(picked, PRESETS[pick].config.epochs if PRESETS[pick].report_acc else None))

bars = []
for p in report_rows:
    if p.report_acc is not None:
        bars.append({"preset": p.title, "source": "report", "accuracy": p.report_acc})
    if p.name in best and best[p.name].best_test_acc is not None:
        bars.append({"preset": p.title, "source": "lab", "accuracy": best[p.name].best_test_acc})
st.divider()
st.subheader("The report beside the lab")
show_chart(st, charts.report_bars(bars), width="stretch")
st.caption(f"Lab bars: the best completed run of each experiment on {settings.dataset_label}. The report's "
           "numbers are CIFAR-100 with all 50,000 training images.")

done = {k: r for k, r in best.items() if r.best_test_acc is not None and r.status == "completed"}
findings = card_findings(dict(zip(done, facts_of(done), strict=True)))
if findings:
    st.subheader("What your runs say")
    for f in findings:
        icon = {"agrees": ":material/check_circle:", "disagrees": ":material/warning:",
                "unclear": ":material/help:"}[f.verdict]
        (st.warning if f.verdict == "disagrees" else st.info)(f.message, icon=icon)

try_this([
    "Queue the Networks section on CIFAR-10 with 5,000 images, then compare MLP and CNN curves on the next page.",
    "Switch the sidebar to the Synthetic dataset: everything runs in seconds, even offline.",
    "Open the same URL on a second laptop: it shows the same runs, live.",
])
