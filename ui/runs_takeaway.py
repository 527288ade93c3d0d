"""Takeaways from the runs on screen: the verdict core.lessons.takeaways computes for a page's runs, rendered
above the report's fixed sentence (labelled "The report's claim"), and the flags a comparison table and chart
carry when the runs were not trained alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from core.lessons.presets import get_preset
from core.lessons.takeaways import RunFacts, Verdict, compare, facts_from_run, flags_by_label
from core.runs.records import RunRecord
from ui import runlib
from ui.layout import plain


def label_of(key: str, run: RunRecord) -> str:
    """How a page names a run: its preset's title, else the run's name."""
    return get_preset(run.preset).title if run.preset and key == run.preset else run.name


def facts_of(runs: Mapping[str, RunRecord], curves: Mapping[str, list[dict]] | None = None) -> list[RunFacts]:
    """RunFacts for {preset or id: run}; `curves` ({label: epoch rows}) when the page already read them."""
    lib = runlib.library()
    out = []
    for key, run in runs.items():
        label = label_of(key, run)
        rows = curves.get(label) if curves is not None and label in curves else \
            [e.to_dict() for e in lib.curves(run.id)]
        preset = get_preset(run.preset) if run.preset else None
        out.append(facts_from_run(run, rows, label=label, preset=preset))
    return out


def verdict_of(runs: Mapping[str, RunRecord], curves: Mapping[str, list[dict]] | None = None) -> Verdict:
    return compare(facts_of(runs, curves))


def flags(verdict: Verdict) -> dict[str, str]:
    """{label: '⚠ epochs 5'} for the runs whose budget is out of line (empty when they were trained alike)."""
    return flags_by_label(verdict)


def claim_box(said: str | None, claim: str, *, warn: bool = False, label: str = "The report's claim") -> None:
    """A computed sentence about the runs shown (or a hint when there is none yet), then the fixed lesson,
    labelled as what it is: the report's claim or the general lesson."""
    with st.container(border=True):
        if said:
            (st.warning if warn else st.success)(f"**What these runs say.** {plain(said)}", icon=":material/lightbulb:")
        else:
            st.info("**What your runs say.** Nothing yet: run the experiments above and the lab compares them "
                    "here.", icon=":material/lightbulb:")
        st.markdown(f"**{label}:** {claim}")


def runs_takeaway(runs: Mapping[str, RunRecord], claim: str, *, verdict: Verdict | None = None,
                  note: str = "", by_design: tuple[str, ...] = (), label: str = "The report's claim"
                  ) -> Verdict | None:
    """The page's takeaway: what its runs say (who won, by how much, the gaps; flagged when unfair; why it
    contradicts the report), then the report's claim, labelled. With no runs, the claim alone."""
    v = verdict if verdict is not None else (compare(facts_of(runs), by_design) if runs else None)
    said = None if v is None or v.winner is None else v.text + (f" {note}" if note else "")
    claim_box(said, claim, warn=v is not None and (v.agrees_with_report is False or not v.fair), label=label)
    return v


