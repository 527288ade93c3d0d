"""Checkpoint files: model + optimizer + config + where the run was, written atomically, read with
weights_only=True (a checkpoint is data, never code). Also what a full disk looks like when one is written, and
the one home of a run folder's checkpoint names (LAST, BEST) and of which one to load (`checkpoint_for`)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from core.config import TrainConfig, from_dict, to_dict
from core.errors import LabError
from core.models.catalog import build_for_config
from core.train.files import checkpoint_for

FORMAT = 1


def save_checkpoint(path: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    config: TrainConfig, epoch: int, batch: int, sums: list[float], history: list[dict],
                    best_acc: float | None, aug_state: torch.Tensor | None, classes: list[str],
                    mean: list[float], std: list[float],
                    rng: tuple[str, torch.Tensor, torch.Tensor | None] | None = None) -> None:
    """Write a checkpoint. `epoch`/`batch` say where training resumes (1-based epoch, 0-based batch); `rng` is
    (device type, CPU RNG state, device RNG state): the dropout stream a resume continues."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "config": to_dict(config),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": epoch,
        "batch": batch,
        "sums": list(sums),
        "history": history,
        "best_acc": best_acc,
        "aug_state": aug_state.cpu() if aug_state is not None else None,
        "rng": None if rng is None else {"device": rng[0], "cpu": rng[1],
                                         "state": rng[2].cpu() if rng[2] is not None else None},
        "classes": list(classes),
        "mean": list(mean),
        "std": list(std),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        # Our own file object, closed here even when torch.save fails: torch's writer, kept alive by the exception's
        # traceback, would hold the half-written file open, and an unlinked file still fills the disk while open.
        with open(tmp, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    finally:
        tmp.unlink(missing_ok=True)  # a half-written file (a full disk) would hold the space the user must free


def keep_as(path: str | Path, copy: str | Path) -> None:
    """Make `copy` hold what `path` holds now (best.pt after an improved epoch), atomically. A hard link where
    the filesystem allows one: a 200 MB checkpoint is then written once, not twice. Later saves of `path` go
    through os.replace, which gives `path` a new file and leaves `copy` holding the old one."""
    path, copy = Path(path), Path(copy)
    tmp = copy.with_suffix(copy.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(path, tmp)
        except OSError:  # no hard links here (some network or FAT filesystems): a real copy
            shutil.copyfile(path, tmp)
        os.replace(tmp, copy)
    finally:
        tmp.unlink(missing_ok=True)


def is_disk_full(e: BaseException) -> bool:
    """Whether `e` means a file could not be written for lack of space (torch.save says 'file write failed')."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e).lower()
    return "no space left on device" in text or "file write failed" in text or "disk quota exceeded" in text


def latest_checkpoint(folder: str | Path | None) -> Path | None:
    """The folder's LAST checkpoint (what a resume continues from), or None."""
    return None if folder is None else checkpoint_for(folder, "last")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict (tensors on CPU). LabError when missing or not a CIFAR Lab checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise LabError(f"checkpoint {path} does not exist (was the run deleted, or did it never finish an epoch?)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise LabError(f"checkpoint {path} cannot be read ({type(e).__name__}); it may be truncated or not a "
                       f"CIFAR Lab checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "model" not in payload:
        raise LabError(f"{path} is not a CIFAR Lab checkpoint (format {FORMAT})")
    return payload


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """Rebuild a trained model from a checkpoint, in eval mode: (model, config, metadata with classes/mean/std).
    Pretrained architectures are rebuilt without downloading anything - the checkpoint holds every weight."""
    payload = load_checkpoint(path)
    config = from_dict(payload["config"])
    classes = payload.get("classes") or []
    model = build_for_config(config, len(classes), load_pretrained=False)
    model.load_state_dict(payload["model"])
    model.to(device).eval()
    meta = {k: payload.get(k) for k in ("classes", "mean", "std", "epoch", "history", "best_acc")}
    return model, config, meta
