"""The sidebar's "Ray cluster" box: where new runs train (this machine or a Ray cluster), set by the teacher.

The address is the run library's `ray_address` setting (core/runs/cluster.py), so every browser tab and
process sharing the runs folder agrees; $CIFAR_LAB_RAY, when set, wins and is only shown here.
"""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from core.runs import cluster
from core.runs.library import open_library


def cluster_panel(sb, runs_dir: str, can_control: bool) -> None:
    try:
        lib = open_library(runs_dir)
    except LabError:
        return  # the runs folder's own problem is shown where it is chosen
    address, source = cluster.where_runs_go(lib.get_setting)
    title = f"Training on: Ray cluster ({address})" if address else "Training on: this machine"
    with sb.expander(title):
        if source == "environment":
            st.caption(f"Set by ${cluster.ENV} on the server; unset it to choose here.")
            return
        st.caption("A Ray cluster's dashboard address (http://HEAD:8265) sends new runs to its GPUs; "
                   "see docs/CLUSTER.md. Empty: train on this machine.")
        value = st.text_input("Ray cluster address", value=address or "", key="ray_address",
                              disabled=not can_control, placeholder="http://head:8265")
        if can_control and st.button("Apply", key="ray_apply") and (value.strip() or None) != address:
            try:
                cluster.set_address(lib, value)
            except LabError as e:
                st.error(str(e))
                return
            st.rerun()
