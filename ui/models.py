"""Models for the pages that look inside networks: a run's trained model from its checkpoint, or a fresh one.

Loaded models are cached per (checkpoint file, modification time) for the whole server - they are read-only
and shared; a page never trains or edits them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from core.config import TrainConfig
from core.models.registry import build_for_config
from core.runs.records import RunRecord
from core.train.checkpoint import load_model
from ui import runlib


def checkpoint_of(run: RunRecord, prefer: str = "best.pt") -> Path | None:
    folder = runlib.library().run_dir(run.id)
    for name in (prefer, "last.pt"):
        if (folder / name).is_file():
            return folder / name
    return None


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=8)
def _load(path: str, mtime: float) -> tuple[torch.nn.Module, TrainConfig, dict]:
    return load_model(path)


def trained_model(run: RunRecord) -> tuple[torch.nn.Module, TrainConfig, dict] | None:
    """(model in eval mode, config, meta with classes/mean/std) of a run, or None without a checkpoint."""
    path = checkpoint_of(run)
    if path is None:
        return None
    return _load(str(path), path.stat().st_mtime)


def fresh_model(config: TrainConfig, num_classes: int, seed: int = 0) -> torch.nn.Module:
    """The same architecture, untrained (ImageNet models without their weights), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_for_config(config, num_classes, load_pretrained=False)
    return model.eval()
