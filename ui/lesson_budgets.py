"""The "measured at a class budget" box a comparison page shows beside its own runs: for each of the report's
comparisons on the page, where core.lessons.class_budgets' measurements (real CIFAR-10, 3 seeds) put the report's
ordering, from which budget it shows, and why it does not where it does not."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.lessons.class_budgets import BY_KEY, Judgement, first_budget_showing, judgements, summary, why_not
from ui import estimates, urlstate
from ui.run_panel import epochs_key
from ui.text import plain


def measured_box(keys: Sequence[str], panel: str | None = None) -> None:
    """One bordered box: a line per comparison (the report's numbers, the measured verdict, the budget to run).
    panel: the page's run panel key; where a comparison's order shows at a measured budget, a button sets that
    panel's epochs (both presets) and the sidebar's training images to it."""
    with st.container(border=True, key=f"budgets_{'_'.join(keys)}"):
        st.markdown("**Measured at a class budget** · real CIFAR-10, 3 seeds each, on the lab's CPU")
        for key in keys:
            c = BY_KEY[key]
            st.markdown(f"**{plain(c.title)}** (report: {c.report})")
            st.caption(plain(summary(c)))
            js = judgements(c)
            shows = first_budget_showing(c) if js else None
            if js and shows is None:
                st.caption(plain(why_not(max(js, key=lambda j: j.train_images * j.epochs), c)))
            elif shows is not None and panel is not None:
                use_budget_button(c.key, shows, panel, (c.first, c.second))
        st.caption("Every row of this measurement is in docs/LESSONS.md, with its command. Run the budget it names "
                   "here to see the report's order on screen; smaller budgets show how fast each network learns.")


def use_budget_button(comparison: str, j: Judgement, panel: str, presets: Sequence[str]) -> None:
    """"Use 5,000 images × 6 epochs (≈ 4 min a run here)": sets the budget where the order showed; says when
    that is longer than the class's minutes per run (the teacher's "Start the full run" then applies)."""
    minutes = estimates.class_minutes()
    over = minutes is not None and j.minutes > minutes
    label = (f"Use {j.train_images:,} images × {j.epochs} epochs (≈ {max(1, round(j.minutes))} min a run "
             f"on the measuring CPU)")
    if st.button(label, key=f"use_budget_{comparison}", help="Sets the run panel's epochs and the sidebar's "
                 "training images; Start still shows the estimate on this machine"):
        urlstate.set_values({"subset": j.train_images, **{epochs_key(panel, p): j.epochs for p in presets}})
        st.rerun()
    if over:
        st.caption(plain(f"That is longer than the class budget of {minutes:g} min per run: Start cuts it, and "
                         "the teacher's \"Start the full run\" runs it whole."))
