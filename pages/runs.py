"""The run library: every run as a table (filter, sort, select), selected runs' curves overlaid, one run's
details (config, curves, per-class accuracy) with rename, delete, export and import."""

import json
import math

import pandas as pd
import streamlit as st

from core.classroom.roles import owns
from core.config import to_dict
from core.errors import LabError
from core.lessons.presets import PRESETS
from core.runs.records import MISSING, RUN_STATUSES, or_missing
from core.runs.sizes import run_size
from core.runs.transfer import curves_csv, export_dict, import_dict
from ui import charts, runlib, urlstate
from ui.data_panel import class_names
from ui.layout import chart_height, friendly_errors, page_header, pct, show_chart
from ui.run_panel import STATUS_ICON, fmt_seconds, result_vs_report, status_line, train_again_button
from ui.sidebar import current

PAGE = "runs"  # this page's key: its script's name, for the header and the class question
page_header("Run library", "Every run of this lab - started from the app, the terminal, or imported - in one "
            "place. Select rows to overlay their curves; the first selected opens below.", page=PAGE)
settings = current()
lib = runlib.library()

f1, f2, f3, f4 = st.columns(4)
statuses = f1.multiselect("Status", RUN_STATUSES, key="runs_status")
preset = f2.selectbox("Experiment", ["(all)"] + list(PRESETS), key="runs_preset")
datasets = sorted({r.dataset for r in lib.list_runs()})
dataset = f3.selectbox("Dataset", ["(all)"] + datasets, key="runs_dataset")
search = f4.text_input("Name contains", key="runs_search")
runs = lib.list_runs(status=statuses or None, preset=None if preset == "(all)" else preset,
                     dataset=None if dataset == "(all)" else dataset)
if search.strip():
    runs = [r for r in runs if search.strip().lower() in r.name.lower()]

disk = lib.disk_usage()
if disk.warning() and settings.actor.is_teacher:  # the teacher's to act on: a student may delete only their own
    st.warning(disk.warning(), icon="💾")
if not runs:
    st.info("No runs match. Start one from any experiment page, or `python -m core train` in a terminal.")
else:
    # Every cell a value or "—": a dataframe shows a missing number as "None" (a queued or running run has no
    # accuracy yet), so accuracies are written out; a running run's images come from its config (run_size).
    table = [{"": STATUS_ICON.get(r.status, ""), "name": r.name, "experiment": r.preset or MISSING, "status": r.status,
              "best test acc": pct(r.best_test_acc), "final test acc": pct(r.test_acc),
              "epochs": f"{r.epochs_done}/{r.epochs}", "dataset": r.dataset,
              "train images": or_missing(run_size(r)[1], ","), "device": r.device, "time": fmt_seconds(r.seconds),
              "on disk (MB)": disk.per_run.get(r.id, 0) / 1e6, "by": r.started_by, "id": r.id} for r in runs]
    # a diverged run in red (its reason is in its details below): it ended, but it is no result
    styled = pd.DataFrame(table).style.map(lambda s: "color: #d62728" if s in ("diverged", "failed") else "",
                                           subset=["status"])
    picked = st.dataframe(
        styled, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row", key="runs_table",
        column_config={"on disk (MB)": st.column_config.NumberColumn(format="%.0f")})
    st.caption(f"{disk.summary()} Deleting a run frees its checkpoints.")
    rows = picked.selection.rows if picked and picked.selection else []
    selected = [runs[i] for i in rows] or []
    if not selected and urlstate.get("run"):
        selected = [r for r in runs if r.id == urlstate.get("run")]
    if selected:
        urlstate.put("run", selected[0].id)
        curves = {f"{r.name} ({r.id[:6]})": [e.to_dict() for e in lib.curves(r.id)] for r in selected}
        if any(curves.values()):
            c1, c2 = st.columns(2)
            show_chart(c1, charts.curves_chart(curves, "accuracy", height=chart_height()), width="stretch")
            show_chart(c2, charts.curves_chart(curves, "loss", height=chart_height()), width="stretch")
        else:  # e.g. a run that diverged in its first epoch: no empty axes, say why there is no curve
            st.caption("No curve yet: the selected run(s) have not finished an epoch.")

        run = selected[0]
        st.divider()
        st.subheader(f"{STATUS_ICON.get(run.status, '')} {run.name}")
        status_line(run, lib.queue_position(run.id) if run.status == "queued" else None)
        if run.status == "diverged":
            train_again_button(run, "runs", st)
        result_vs_report(run)
        tabs = st.tabs(["Per-class accuracy", "Config", "Epochs", "Manage"])
        with tabs[0]:
            accs = run.per_class_acc
            if accs:
                classes = class_names(run.dataset, settings.data_dir, len(accs))
                bars = [{"class": c, "accuracy": a} for c, a in zip(classes, accs) if a is not None
                        and not math.isnan(a)]
                show_chart(st, charts.bar_chart(bars, "class", "accuracy", height=chart_height(260)),
                                width="stretch")
                worst = sorted(bars, key=lambda b: b["accuracy"])[:5]
                st.caption("Hardest classes: " + ", ".join(f"{b['class']} ({pct(b['accuracy'], 0)})" for b in worst))
            else:
                st.caption("Per-class accuracy appears when the run has finished an epoch.")
        with tabs[1]:
            st.json(to_dict(run.config), expanded=2)
            if run.messages:
                st.caption(run.messages)
        with tabs[2]:
            st.dataframe([e.to_dict() for e in lib.curves(run.id)], hide_index=True, width="stretch")
        with tabs[3]:
            m1, m2 = st.columns(2)
            new_name = m1.text_input("Rename", run.name, key=f"rename:{run.id}")
            if m1.button("Save name", key=f"save-name:{run.id}") and new_name != run.name:
                with friendly_errors("Renaming"):
                    lib.rename(run.id, new_name, actor=settings.actor)
                    st.rerun()
            data = export_dict(lib, run.id)
            m2.download_button("Export run (JSON)", json.dumps(data, indent=1), file_name=f"run-{run.id}.json",
                               mime="application/json", key=f"export:{run.id}")
            m2.download_button("Export curves (CSV)", curves_csv(lib.curves(run.id)),
                               file_name=f"run-{run.id}.csv", mime="text/csv", key=f"csv:{run.id}")
            sure = m1.checkbox("I want to delete this run and its checkpoints", key=f"sure:{run.id}",
                               disabled=not owns(settings.actor, run.by_role, run.by_name))
            if m1.button("Delete", key=f"delete:{run.id}", disabled=not sure):
                with friendly_errors("Deleting"):
                    lib.delete(run.id, actor=settings.actor)
                    urlstate.put("run", None)
                    st.rerun()

st.divider()
st.subheader("Import a run")
uploaded = st.file_uploader("A run exported from any CIFAR Lab (JSON)", type=["json"], key="runs_import")
if uploaded is not None and st.button("Import", key="runs_do_import"):
    with friendly_errors("Importing"):
        try:
            payload = json.loads(uploaded.getvalue().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LabError(f"{uploaded.name} is not a JSON file exported by CIFAR Lab") from None
        new_id = import_dict(lib, payload, source=uploaded.name)
        st.success(f"Imported as run {new_id}.")
        urlstate.put("run", new_id)
