"""The "dataset not here yet" panel: offers the download with a live progress bar, or says exactly which archive
to put where on an offline machine. Also the shared, cached dataset loader for pages that show images.

Downloads run in a background thread owned by one process-wide manager (a dataset folder is shared by every
user of the server, so two students clicking Download fetch it once). The thread never calls `st.*`: it only
updates numbers that a polling fragment reads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from core.data.cifar import download
from core.data.dataset import Dataset, DatasetStatus
from core.data.loading import DatasetFacts, dataset_status, load_dataset
from core.data.loading import dataset_facts as facts_of_dataset
from core.errors import LabError
from ui.sidebar import LabSettings, current
from ui.text import error


@dataclass
class DownloadJob:
    dataset: str
    root: str
    done: int = 0
    total: int | None = None
    error: str | None = None
    finished: bool = False
    started: float = field(default_factory=time.time)

    def progress(self, done: int, total: int | None) -> None:  # called from the download thread
        self.done, self.total = done, total


class Downloads:
    """Process-wide registry of download jobs, keyed by (dataset, data folder)."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], DownloadJob] = {}
        self._lock = threading.Lock()

    def start(self, dataset: str, root: str) -> DownloadJob:
        with self._lock:
            job = self._jobs.get((dataset, root))
            if job is not None and not job.finished:
                return job  # already downloading: share it
            job = self._jobs[(dataset, root)] = DownloadJob(dataset, root)
        threading.Thread(target=self._run, args=(job,), daemon=True, name=f"download-{dataset}").start()
        return job

    def get(self, dataset: str, root: str) -> DownloadJob | None:
        return self._jobs.get((dataset, root))

    @staticmethod
    def _run(job: DownloadJob) -> None:
        try:
            download(job.dataset, job.root, progress=job.progress)
        except LabError as e:
            job.error = str(e)
        except Exception as e:  # noqa: BLE001 - shown in the page; the thread must not die silently
            job.error = f"{type(e).__name__}: {e}"
        finally:
            job.finished = True


@st.cache_resource(show_spinner=False)
def downloads() -> Downloads:
    return Downloads()


@st.cache_data(ttl=30, show_spinner=False, max_entries=32)
def dataset_facts(dataset: str) -> DatasetFacts:
    """core.data.loading.dataset_facts (classes, split sizes), read again at most every 30 s (an image folder is
    listed again only when one of its class folders changed). DataError (not cached) when it is not a dataset."""
    return facts_of_dataset(dataset)


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def load_full(dataset: str, root: str) -> Dataset:
    """The whole dataset, decoded once per server (read-only: callers never modify its tensors)."""
    return load_dataset(dataset, root)


def dataset_or_none(settings: LabSettings | None = None) -> Dataset | None:
    """The current dataset if it is on disk (folders are decoded on first use), else None after showing the
    panel. Pages that preview images call this."""
    settings = settings or current()
    if not dataset_panel(settings):
        return None
    try:
        return load_full(settings.dataset, settings.data_dir)
    except LabError as e:
        error(str(e))
        return None


def dataset_if_here(settings: LabSettings | None = None) -> Dataset | None:
    """The current dataset when it is on this machine (decoded once per server), else None - drawing nothing and
    never downloading: for counts that only need it when it is there."""
    settings = settings or current()
    name = settings.dataset
    if not (name == "synthetic" or name.startswith("folder:") or dataset_status(name, settings.data_dir).ready):
        return None
    try:
        return load_full(name, settings.data_dir)
    except LabError:
        return None


def dataset_panel(settings: LabSettings | None = None) -> bool:
    """True when the dataset is ready; otherwise draw the download / offline panel and return False."""
    settings = settings or current()
    name = settings.dataset
    if name == "synthetic" or name.startswith("folder:"):
        return True
    status = dataset_status(name, settings.data_dir)
    if status.ready:
        return True
    job = downloads().get(name, settings.data_dir)
    if job is not None and job.finished and job.error is None:
        return True
    _panel(settings, status, job)
    return False


def _panel(settings: LabSettings, status: DatasetStatus, job: DownloadJob | None) -> None:
    with st.container(border=True):
        st.markdown(f"#### {settings.dataset_label} is not on this machine yet")
        st.markdown(status.message)
        if job is None or (job.finished and job.error):
            if job is not None and job.error:
                error(job.error, icon=":material/cloud_off:")
            size = f" ({status.size_mb:.0f} MB)" if status.size_mb else ""
            if st.button(f"Download {settings.dataset_label}{size}", key=f"download:{settings.dataset}",
                         type="primary"):
                downloads().start(settings.dataset, settings.data_dir)
                st.rerun()
        else:
            st.fragment(_progress, run_every=0.5)(settings.dataset, settings.data_dir)
        with st.expander("Offline? Put the archive in place by hand"):
            st.markdown(f"1. On a machine with internet, download `{status.archive}` from {status.url}\n"
                        f"2. Copy it into `{status.path}`\n"
                        f"3. Reload this page: the lab checks the file and unpacks it, no network needed.")
        st.caption("Until then, the **Synthetic** dataset in the sidebar works everywhere, offline included.")


def _progress(dataset: str, root: str) -> None:
    job = downloads().get(dataset, root)
    if job is None:
        return
    if job.finished:
        st.rerun(scope="app")
    frac = job.done / job.total if job.total else 0.0
    mb = f"{job.done / 1e6:.1f}" + (f" of {job.total / 1e6:.0f}" if job.total else "") + " MB"
    st.progress(min(1.0, frac), text=f"Downloading… {mb}")


def class_names(dataset: str, data_dir: str, count: int) -> list[str]:
    """The dataset's class names when it is on disk (cached load), else "0", "1", ... - never a download."""
    ready = dataset == "synthetic" or dataset.startswith("folder:") or dataset_status(dataset, data_dir).ready
    if ready:
        try:
            names = list(load_full(dataset, data_dir).classes)
            if len(names) == count:
                return names
        except LabError:
            pass
    return [str(i) for i in range(count)]
