"""CIFAR Lab's entry point: page config, the shared lab settings in the sidebar, and the menu. Nothing else.

Run it with `make run` (or `streamlit run app.py`). Each page in pages/ is one concept; shared widgets live
in ui/, and everything that computes lives in core/.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see core/__init__.py

import streamlit as st  # noqa: E402

from ui import presenter  # noqa: E402  (streamlit only: the menu below is drawn before torch loads)

st.set_page_config(page_title="CIFAR Lab", page_icon=":material/science:", layout="wide",
                   initial_sidebar_state="auto")  # auto: collapsed on a phone, open on a laptop

PAGES = {
    "Start": [
        st.Page("pages/home.py", title="Report card", icon=":material/school:", default=True),
    ],
    "Networks": [
        st.Page("pages/mlp_vs_cnn.py", title="MLP vs CNN", icon=":material/hub:"),
        st.Page("pages/filter_width.py", title="Filter width", icon=":material/width:"),
        st.Page("pages/builder.py", title="CNN builder", icon=":material/construction:"),
    ],
    "Regularization": [
        st.Page("pages/regularization.py", title="Batch norm, FC & dropout", icon=":material/tune:"),
    ],
    "Data": [
        st.Page("pages/augmentation.py", title="Augmentation lab", icon=":material/flip:"),
        st.Page("pages/more_data.py", title="More data", icon=":material/stacked_line_chart:"),
    ],
    "Transfer": [
        st.Page("pages/transfer.py", title="Transfer learning", icon=":material/move_up:"),
    ],
    "Training": [
        st.Page("pages/lr_finder.py", title="LR finder", icon=":material/search_insights:"),
        st.Page("pages/optimizers.py", title="Optimizers & best CNN", icon=":material/speed:"),
        st.Page("pages/sweeps.py", title="Sweeps & LR scenarios", icon=":material/grid_view:"),
        st.Page("pages/ensembles.py", title="Ensembles", icon=":material/groups:"),
    ],
    "Inside the network": [
        st.Page("pages/filters.py", title="Filters & feature maps", icon=":material/filter:"),
        st.Page("pages/saliency.py", title="Saliency maps", icon=":material/visibility:"),
        st.Page("pages/mistakes.py", title="Where it errs", icon=":material/report:"),
    ],
    "Runs": [
        st.Page("pages/runs.py", title="Run library", icon=":material/folder_open:"),
    ],
}

# On a projector the menu goes to the top, one drop-down per section: the lab settings come first in the
# sidebar and no page title is cut short.
# The menu comes first, before torch and the lab load (seconds on a cold server): on a fresh server Streamlit's
# first run lists the files in pages/ as a menu of its own, and this call replaces it in the same frame.
page = st.navigation(PAGES, position="top" if presenter.requested() else "sidebar", expanded=True)

import torch  # noqa: E402

from ui.class_mode import banner, poll, publish  # noqa: E402
from ui.sidebar import lab_settings  # noqa: E402

# The server shares the machine's cores with trainer processes and every student's session: previews, attributions
# and the LR finder use at most half of them (on a busy 2-core box one thread was 10x faster than two).
torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
deep_link = st.session_state.pop("_deep_link", None)  # see ui/sidebar.py: a deep link on a fresh server
if deep_link:
    st.switch_page(deep_link, query_params=st.query_params.to_dict())
lab_settings()
slot = banner(page)  # class mode: where the teacher is (students), what the teacher presents (teacher)
try:
    page.run()
finally:  # also when the page stopped early (st.stop, a question gate): what it shows is in the URL by now
    publish(page)
    poll(slot)  # a student: the banner's poll starts once the page is drawn
