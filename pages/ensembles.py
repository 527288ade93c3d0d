"""Ensembles: average the softmax outputs of several finished runs and compare the ensemble's test accuracy with
each member's, and how it grows as members are added."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.config import from_json, to_json
from core.data.loading import load
from core.explain.ensemble import ensemble_from_checkpoints, gain_curve
from core.lessons.presets import PRESETS, get_preset
from core.lessons.takeaways import ensemble_verdict
from core.runs.sweeps import new_sweep_id
from core.train.files import checkpoint_for
from ui import charts_lessons, runlib, urlstate
from ui.layout import chart_height, friendly_errors, page_header, pct, show_chart, try_this
from ui.run_panel import STATUS_ICON
from ui.runs_takeaway import claim_box
from ui.sidebar import current

FINISHED = ("completed", "stopped")


@st.cache_data(show_spinner="Evaluating every member on the test set…", max_entries=16)
def evaluate(paths: tuple[str, ...], mtimes: tuple[float, ...], names: tuple[str, ...], config_json: str,
             data_dir: str) -> dict:
    """Ensemble of the checkpoints on the test split of the first member's data settings. `mtimes` only key the
    cache: a checkpoint rewritten (a resumed run) is evaluated again."""
    config = from_json(config_json)
    dataset = load(config.data, data_dir, seed=config.seed)  # (its test_subset, its seed)
    result = ensemble_from_checkpoints(list(paths), dataset, "cpu", names=list(names))
    return {**result.to_dict(), "best_first": gain_curve(result.logits, dataset.test_y, "best"),
            "test_size": len(dataset.test_y)}


def checkpoint(run) -> str | None:
    """The run's final weights (last.pt): the model its recorded final test accuracy belongs to."""
    path = checkpoint_for(runlib.library().run_dir(run.id), "last")
    return None if path is None else str(path)


PAGE = "ensembles"  # this page's key: its script's name, for the header and the class question
page_header(
    "Ensembles",
    "Train the same network a few times - different seeds, or different settings - and let the copies **vote**: "
    "for each test image, average the probabilities every model gives each class and take the most probable. "
    "Each model makes its own mistakes; averaged, many of them cancel out. The catch: every prediction now "
    "costs as many forward passes as there are members.",
    report="section X: combining several trained networks into an ensemble beats each of them alone.", page=PAGE)
settings = current()

lib = runlib.library()
same = True if settings.presenter else st.toggle(f"Only runs on {settings.dataset_label}", True, key="ens_same",
                                                 help="Members must share a dataset; turn off to see what happens.")
candidates = [r for r in lib.list_runs(status=list(FINISHED), dataset=settings.dataset if same else None)
              if checkpoint(r)]
labels = {r.id: f"{STATUS_ICON.get(r.status, '')} {r.name} · {pct(r.test_acc)}" + ("" if same else f" · {r.dataset}")
          + f" ({r.id[:6]})" for r in candidates}
chosen = st.multiselect("Members (finished runs with a checkpoint)", [r.id for r in candidates], key="ens_members",
                        format_func=lambda i: labels.get(i, i), placeholder="choose two or more runs")
members = [r for r in candidates if r.id in chosen]
members.sort(key=lambda r: chosen.index(r.id))

verdict = None
if not candidates:
    st.info(f"No finished runs with a checkpoint on {settings.dataset_label} yet. Train a few below, or on any "
            "experiment page.")
elif len(members) < 2:
    st.info("Choose at least two runs: the ensemble appears here.")
else:
    result = None
    with friendly_errors("Building the ensemble"):  # reads every checkpoint and the test split: LabError there
        paths = tuple(checkpoint(r) for r in members)
        mtimes = tuple(Path(p).stat().st_mtime for p in paths)
        names = tuple(f"{r.name} ({r.id[:6]})" for r in members)
        result = evaluate(paths, mtimes, names, to_json(members[0].config), settings.data_dir)
    if result is not None:  # drawing it: a bug here is Streamlit's to show, traceback and all
        first = members[0]
        accs, ens = result["members"], result["accuracy"]
        best = max(accs)
        m1, m2, m3 = st.columns(3)
        m1.metric("Ensemble accuracy", pct(ens), f"{(ens - best) * 100:+.1f} points over the best member",
                  delta_color="normal")
        m2.metric("Best single member", pct(best))
        m3.metric("Average member", pct(sum(accs) / len(accs)))
        c1, c2 = st.columns(2)
        short = [n.split(" · ", 1)[1] if len({m.split(" · ")[0] for m in result["names"]}) == 1 and " · " in n
                 else n for n in result["names"]]  # "seed=2 (e6bdda)" when every name starts alike
        show_chart(c1, charts_lessons.ensemble_bars_chart(list(zip(short, accs)), ens,
                                                           height=chart_height(300)), width="stretch")
        curves = {"best first": result["best_first"], "as chosen": result["curve"]}
        show_chart(c2, charts_lessons.gain_chart(curves, best_single=best, height=chart_height(300)),
                        width="stretch")
        differs = [r.name for r in members[1:] if (r.config.data.test_subset, r.config.seed) !=
                   (first.config.data.test_subset, first.config.seed)]
        st.caption(f"Every member is evaluated on the same {result['test_size']:,} test images ({first.name}'s test "
                   "split), with its own input normalization; the ensemble takes the mean of their softmax "
                   f"outputs. Exact ensemble accuracy: {ens:.4f}."
                   + (f" {', '.join(differs)} recorded {'its' if len(differs) == 1 else 'their'} accuracy on a "
                      "different test split (another test subset or seed), so the numbers here can differ from "
                      "the runs' own." if differs else ""))
        st.dataframe([{"member": n, "test accuracy": pct(a, 2), "recorded by the run": pct(r.test_acc, 2),
                       "epochs": r.epochs_done} for n, a, r in zip(result["names"], accs, members)],
                     hide_index=True, width="stretch")
        verdict = ensemble_verdict(list(zip(short, accs)), ens, result["test_size"],
                                   [r.epochs_done for r in members])

with st.expander("Train members for an ensemble", expanded=not candidates):
    e1, e2, e3 = st.columns([3, 1, 1])
    preset = urlstate.selectbox(e1, "Network", list(PRESETS), key="ens_preset", default="cnn",
                                format_func=lambda n: get_preset(n).title)
    copies = int(e2.number_input("Copies (seeds)", 2, 8, 3, key="ens_copies"))
    epochs = int(e3.number_input("Epochs", 1, 500, min(get_preset(preset).config.epochs, 5), key=f"ens_epochs:{preset}"))
    st.caption(f"Queues {copies} runs of {get_preset(preset).title} that differ only in their seed (initial weights "
               f"and data order), on {settings.dataset_label}.")
    if st.button(f"▶ Queue {copies} copies", key="ens_queue", disabled=not settings.can_start,
                 help=None if settings.can_control else "Reserved to the teacher (passcode in the sidebar)"):
        with friendly_errors("Queueing the runs"):
            config = runlib.config_for(preset, {"epochs": epochs})
            runlib.start_sweep(config, {"seed": list(range(copies))}, preset=preset,
                               sweep_id=new_sweep_id(["ensemble"]), name_prefix="Ensemble member")
            st.toast(f"Queued {copies} runs: they appear in the list above when they finish.")

claim_box(verdict.text if verdict else None,
          "averaging a few independently trained networks is one of the surest ways to gain accuracy - without "
          "changing the network at all. The gain is largest from the first extra member and shrinks after that; "
          "you pay for it with as many forward passes as members.",
          warn=verdict is not None and verdict.helps is not True, label="The general lesson")
try_this(["Ensemble three seeds of the same preset, then three different presets: which ensemble gains more?",
          "Add a much weaker run to a good ensemble: does it still help, or drag it down?",
          "Turn off 'Only runs on …' and mix datasets: the lab explains why that cannot work."])
