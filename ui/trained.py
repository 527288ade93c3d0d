"""Trained models for the pages that look inside networks: a run's checkpoint file and its model, loaded once.

Loaded models are cached per (checkpoint file, modification time) for the whole server - they are read-only
and shared; a page never trains or edits them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from core.config import TrainConfig
from core.runs.records import RunRecord
from core.train.checkpoint import load_model
from core.train.files import checkpoint_for
from ui import runlib


def checkpoint_of(run: RunRecord) -> Path | None:
    """The checkpoint the pages load for a run (core.train.checkpoint.checkpoint_for: best, else last), or None."""
    return checkpoint_for(runlib.library().run_dir(run.id))


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=8)
def _load(path: str, mtime: float) -> tuple[torch.nn.Module, TrainConfig, dict]:
    return load_model(path)


def trained_model(run: RunRecord) -> tuple[torch.nn.Module, TrainConfig, dict] | None:
    """(model in eval mode, config, meta with classes/mean/std) of a run, or None without a checkpoint."""
    path = checkpoint_of(run)
    if path is None:
        return None
    return _load(str(path), path.stat().st_mtime)

