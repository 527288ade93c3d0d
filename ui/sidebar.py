"""The sidebar "lab settings" every page shares, kept in the URL so a link reopens the same view.

`lab_settings()` draws the sidebar once per script run (app.py calls it before the page) and returns a frozen
LabSettings. Pages read it with `current()`; they never draw their own dataset pickers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.classroom.roles import Actor
from core.data.dataset import data_root
from core.runs.library import runs_root
from ui import class_roles, urlstate
from ui import presenter as presenter_mode
from ui.cluster_panel import cluster_panel

DATASETS = {"cifar100": "CIFAR-100", "cifar10": "CIFAR-10", "folder": "Image folder", "synthetic": "Synthetic"}
SUBSETS = [500, 1000, 2000, 5000, 10000, 25000, 0]  # 0 = all training images
TEST_SUBSETS = [500, 1000, 2000, 5000, 0]
PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"


@dataclass(frozen=True)
class LabSettings:
    dataset: str  # cifar100 | cifar10 | synthetic | folder:PATH
    subset: int | None  # training images per run (stratified); None = all
    test_subset: int | None
    device: str  # auto | cpu | cuda | mps
    data_dir: str
    runs_dir: str
    presenter: bool  # projector mode: fewer controls, bigger charts
    can_control: bool  # the teacher: may control every run, queue batches (ui/class_roles.py says who)
    actor: Actor  # who acts on the run library (the teacher, or a student with a nickname - "" until picked)
    dataset_problem: str = ""  # why runs cannot start on this dataset (an image folder that is not one), else ""

    @property
    def can_start(self) -> bool:
        """May this user start runs on this dataset now (the teacher, and an image folder that is a dataset)."""
        return self.can_control and not self.dataset_problem

    @property
    def dataset_label(self) -> str:
        if self.dataset.startswith("folder:"):
            return f"folder {Path(self.dataset[7:]).name}"
        return DATASETS.get(self.dataset, self.dataset)

    def overrides(self) -> dict:
        """The settings every run started from the app inherits."""
        return {"dataset": self.dataset, "subset": self.subset, "test_subset": self.test_subset, "device": self.device}


@st.cache_resource(show_spinner=False)
def detected_devices() -> list[tuple[str, str]]:
    """(value, label) of the devices torch sees here, detected once per server."""
    from core.train.setup import available_devices

    return available_devices()


def _with(options: list[int], value: int) -> list[int]:
    """The slider's steps, with the class's own number added in order when it is not one of them."""
    return options if value in options else sorted(set(options) - {0} | {value}) + ([0] if 0 in options else [])


def _fmt_subset(n: int) -> str:
    return "all" if n == 0 else f"{n:,}"


@st.cache_data(ttl=30, show_spinner="Checking the image folder…", max_entries=16)
def folder_check(path: str) -> tuple[str, str]:
    """(summary, "") for an image folder that is a dataset, ("", what is wrong and what to do) otherwise.
    Decodes nothing; re-checked at most every 30 s, and listed again only when a class folder changed
    (core.data.folder.folder_summary)."""
    from core.data.folder import folder_summary  # deferred: imports torch
    from core.errors import LabError

    try:
        s = folder_summary(path)
    except LabError as e:
        return "", str(e)
    return (f"{len(s.classes)} classes ({', '.join(s.classes[:4])}{', …' if len(s.classes) > 4 else ''}) · "
            f"{s.train_images:,} train / {s.test_images:,} test images"), ""


def _show_folder(sb, path: str) -> str:
    """Check the folder as soon as it is entered: its classes and images per split, or the error (as written,
    never as markdown). Returns the problem ('' when the folder is a dataset)."""
    from ui.text import error, plain

    summary, problem = folder_check(path)
    if problem:
        error(problem, where=sb)
    else:
        sb.caption(plain(summary))
    return problem


def lab_settings() -> LabSettings:
    """Draw the sidebar and return the settings (also stored for `current()`)."""
    devices = detected_devices()
    has_gpu = any(v.startswith("cuda") or v == "mps" for v, _ in devices)
    sb = st.sidebar
    sb.markdown("### Lab settings")
    saved = class_roles.class_defaults()  # the teacher's class settings: every session starts from them, a link overrides

    problem = ""
    saved_kind = saved and ("folder" if saved.dataset.startswith("folder:") else saved.dataset)
    kind = urlstate.selectbox(sb, "Dataset", list(DATASETS), key="dataset_kind",
                              default=saved_kind if saved_kind in DATASETS else "cifar100",
                              format_func=DATASETS.get, help="Every run started from the app uses this dataset.")
    dataset = kind
    if kind == "folder":
        folder = saved.dataset[7:] if saved and saved.dataset.startswith("folder:") else ""
        path = urlstate.text_input(sb, "Image folder", key="folder", default=folder,
                                   help="A folder with train/<class>/*.jpg and test/<class>/*.jpg")
        dataset = f"folder:{path}" if path.strip() else "synthetic"
        if not path.strip():
            sb.caption("Enter a folder path; until then the synthetic set is used.")
        else:
            problem = _show_folder(sb, path.strip())

    default_subset = (saved.subset or 0) if saved else 0 if has_gpu else 5000
    default_test = (saved.test_subset or 0) if saved else 0 if has_gpu else 2000
    subset = urlstate.select_slider(sb, "Training images per run", _with(SUBSETS, default_subset), key="subset",
                                    default=default_subset, format_func=_fmt_subset,
                                    help="A stratified subset (the same number per class) keeps CPU runs short.")
    test_subset = urlstate.select_slider(sb, "Test images", _with(TEST_SUBSETS, default_test), key="test_subset",
                                         default=default_test, format_func=_fmt_subset)

    labels = dict([("auto", "auto")] + devices)
    device = urlstate.selectbox(sb, "Device", list(labels), key="device",
                                default=saved.device if saved and saved.device in labels else "auto",
                                format_func=labels.get)
    sb.caption("Detected: " + ", ".join(label for _, label in devices))

    with sb.expander("Where data and runs live"):
        data_dir = st.text_input("Data folder", value=str(data_root()), key="data_dir",
                                 help="$CIFAR_LAB_DATA sets the default")
        runs_dir = st.text_input("Runs folder", value=str(runs_root()), key="runs_dir",
                                 help="$CIFAR_LAB_RUNS sets the default; every user of this app shares it")

    presenter = urlstate.toggle(sb, "Presenter mode", key="presenter", default=False,
                                help="Hide advanced controls and enlarge charts for a projector.")
    actor = class_roles.identity(sb)
    cluster_panel(sb, runs_dir, actor.is_teacher)

    settings = LabSettings(dataset=dataset, subset=subset or None, test_subset=test_subset or None, device=device,
                           data_dir=data_dir, runs_dir=runs_dir, presenter=presenter, can_control=actor.is_teacher,
                           actor=actor, dataset_problem=problem)
    class_roles.save_button(sb, settings)
    st.session_state["_lab_settings"] = settings
    if presenter:
        presenter_mode.apply_css()
    return settings


def current() -> LabSettings:
    """The settings drawn by app.py in this script run (pages call this)."""
    settings = st.session_state.get("_lab_settings")
    if settings is None:
        settings = lab_settings()  # a page script run on its own, outside the app: draw the sidebar here
    return settings


def enter(page: str) -> LabSettings:
    """A page's first call, with its key (its script's name: `enter("transfer")` in pages/transfer.py; page_header
    makes it). On a freshly started server, until some session has run app.py, Streamlit serves a deep link such
    as /transfer by running pages/transfer.py alone (its old pages/-folder mode): no page config, no menu. Such a
    session is sent through app.py, which registers the menu for every session and then opens pages/<page>.py
    with the same query string (app.py reads `_deep_link`); st.switch_page does not return."""
    if st.session_state.get("_lab_settings") is None and (PAGES_DIR / f"{page}.py").is_file():
        st.session_state["_deep_link"] = f"pages/{page}.py"
        st.switch_page("app.py", query_params=st.query_params.to_dict())
    return current()
