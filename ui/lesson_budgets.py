"""The "measured at a class budget" box a comparison page shows beside its own runs: for each of the report's
comparisons on the page, where core.lessons.class_budgets' measurements (real CIFAR-10, 3 seeds) put the report's
ordering, from which budget it shows, and why it does not where it does not."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.lessons.class_budgets import BY_KEY, first_budget_showing, judgements, summary, why_not
from ui.text import plain


def measured_box(keys: Sequence[str]) -> None:
    """One bordered box: a line per comparison (the report's numbers, the measured verdict, the budget to run)."""
    with st.container(border=True, key=f"budgets_{'_'.join(keys)}"):
        st.markdown("**Measured at a class budget** · real CIFAR-10, 3 seeds each, on the lab's CPU")
        for key in keys:
            c = BY_KEY[key]
            st.markdown(f"**{plain(c.title)}** (report: {c.report})")
            st.caption(plain(summary(c)))
            js = judgements(c)
            if js and first_budget_showing(c) is None:
                st.caption(plain(why_not(max(js, key=lambda j: j.train_images * j.epochs), c)))
        st.caption("Every row of this measurement is in docs/LESSONS.md, with its command. Run the budget it names "
                   "here to see the report's order on screen; smaller budgets show how fast each network learns.")
