"""Ensembles: average several trained models' predictions and measure what that buys.

The ensemble's prediction for an image is the argmax of the MEAN OF THE MEMBERS' SOFTMAX PROBABILITIES (not of
their logits: a member with huge logits would otherwise outvote the rest). Everything works on test-set logits,
a list of (M, C) tensors in the same image order, with labels (M,):

    logits = [run_logits(path, dataset) for path in checkpoints]    # or ensemble_from_checkpoints(...)
    ensemble_accuracy(logits, labels); members_accuracy(logits, labels); gain_curve(logits, labels, "best")

Members must come from the same dataset (same classes) and cover the same test images; anything else raises
LabError naming the member that differs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.data.dataset import Dataset
from core.errors import LabError
from core.train.checkpoint import load_checkpoint, load_model
from core.train.engine import evaluate
from core.train.setup import input_stats


def _names(n: int, names: Sequence[str] | None) -> list[str]:
    return list(names) if names is not None else [f"member {i + 1}" for i in range(n)]


def check_logits(logits_list: Sequence[torch.Tensor], labels: torch.Tensor, names: Sequence[str] | None = None) -> None:
    """LabError unless every member's logits are (M, C) for the same M = len(labels) and the same C."""
    if not logits_list:
        raise LabError("an ensemble needs at least one model; choose one or more finished runs")
    names = _names(len(logits_list), names)
    if labels.dim() != 1:
        raise LabError(f"labels must be one class index per test image (M,), got shape {tuple(labels.shape)}")
    m, c = len(labels), logits_list[0].shape[-1] if logits_list[0].dim() == 2 else None
    for name, logits in zip(names, logits_list, strict=True):
        if logits.dim() != 2:
            raise LabError(f"{name}: logits must be (test images, classes), got shape {tuple(logits.shape)}")
        if logits.shape[0] != m:
            raise LabError(f"{name} has predictions for {logits.shape[0]:,} test images but the test set has {m:,}: "
                           "ensemble members must be evaluated on the same test images")
        if logits.shape[1] != c:
            raise LabError(f"{name} predicts {logits.shape[1]} classes but {names[0]} predicts {c}: ensemble "
                           "members must be trained on the same dataset")


def ensemble_probs(logits_list: Sequence[torch.Tensor]) -> torch.Tensor:
    """(M, C) mean of the members' softmax probabilities (float32)."""
    return torch.stack([torch.softmax(t.float(), dim=1) for t in logits_list]).mean(0)


def _acc(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return (predictions.cpu() == labels.cpu()).float().mean().item() if len(labels) else 0.0


def ensemble_accuracy(logits_list: Sequence[torch.Tensor], labels: torch.Tensor) -> float:
    """Fraction of test images whose mean-of-softmax prediction is the label."""
    check_logits(logits_list, labels)
    return _acc(ensemble_probs(logits_list).argmax(1), labels)


def members_accuracy(logits_list: Sequence[torch.Tensor], labels: torch.Tensor) -> list[float]:
    """Each member's own accuracy, in the given order."""
    check_logits(logits_list, labels)
    return [_acc(t.argmax(1), labels) for t in logits_list]


def gain_curve(logits_list: Sequence[torch.Tensor], labels: torch.Tensor,
               order: Sequence[int] | str | None = None) -> list[tuple[int, float]]:
    """[(k, accuracy of the first k members)] as members are added in `order`: member indices, "best" (most
    accurate first), or None (as given). The first point is one model alone; the gain is the rise after it."""
    check_logits(logits_list, labels)
    if order is None:
        order = list(range(len(logits_list)))
    elif order == "best":
        accs = members_accuracy(logits_list, labels)
        order = sorted(range(len(accs)), key=lambda i: -accs[i])  # stable: ties keep the given order
    elif isinstance(order, str) or sorted(set(order)) != sorted(order) or not all(
            0 <= i < len(logits_list) for i in order) or not order:
        raise LabError(f"order must list distinct member indices 0..{len(logits_list) - 1} (or be 'best'), "
                       f"got {order!r}")
    probs = torch.stack([torch.softmax(logits_list[i].float(), dim=1) for i in order])  # (K, M, C)
    running = probs.cumsum(0)  # the sum of the first k members; argmax of a sum = argmax of the mean
    return [(k + 1, _acc(running[k].argmax(1), labels)) for k in range(len(order))]


# --- from checkpoints ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberInfo:
    """What a checkpoint says about the data its model was trained for."""

    name: str
    dataset: str  # config.data.dataset
    num_classes: int


def _label(checkpoint_path: str | Path, name: str | None) -> str:
    path = Path(checkpoint_path)
    return name or f"run {path.parent.name} ({path.name})"


def member_info(checkpoint_path: str | Path, name: str | None = None) -> MemberInfo:
    """The checkpoint's dataset and classes, read without loading its tensors (memory-mapped)."""
    try:  # mmap: a 1 GB checkpoint (cnn-512 + Adam state) costs nothing to inspect
        payload = torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
        dataset = str(payload["config"]["data"]["dataset"])
    except Exception:  # noqa: BLE001 - load_checkpoint says what is wrong with the file
        payload = load_checkpoint(checkpoint_path)
        dataset = str(payload["config"]["data"]["dataset"])
    return MemberInfo(_label(checkpoint_path, name), dataset, len(payload.get("classes") or []))


def _same_dataset(a: str, b: str) -> bool:
    if a.startswith("folder:") and b.startswith("folder:"):
        return os.path.realpath(os.path.expanduser(a[7:])) == os.path.realpath(os.path.expanduser(b[7:]))
    return a == b


def check_compatible(members: Sequence[MemberInfo], dataset: Dataset | None = None) -> None:
    """LabError naming the first member whose dataset or number of classes differs from the first member's
    (or from `dataset`, the test set they are about to be evaluated on)."""
    if not members:
        raise LabError("an ensemble needs at least one model; choose one or more finished runs")
    ref = members[0]
    for m in members:
        if dataset is not None and not _same_dataset(m.dataset, dataset.name):
            raise LabError(f"{m.name} was trained on {m.dataset}, but the test set is {dataset.name}: choose runs of "
                           f"the dataset being evaluated")
        if dataset is not None and m.num_classes != dataset.num_classes:
            raise LabError(f"{m.name} predicts {m.num_classes} classes but {dataset.name} has {dataset.num_classes}")
        if not _same_dataset(m.dataset, ref.dataset) or m.num_classes != ref.num_classes:
            raise LabError(f"{m.name} was trained on {m.dataset} ({m.num_classes} classes) but {ref.name} on "
                           f"{ref.dataset} ({ref.num_classes} classes): ensemble members must share a dataset")


def run_logits(checkpoint_path: str | Path, dataset: Dataset, device: str | torch.device = "cpu",
               batch_size: int = 1024) -> torch.Tensor:
    """(M, C) float32 CPU logits of a checkpoint's model on dataset's test images, normalized with the mean/std
    the model was trained with (the checkpoint's)."""
    model, config, meta = load_model(checkpoint_path, device)
    check_compatible([MemberInfo(_label(checkpoint_path, None), config.data.dataset, len(meta.get("classes") or []))],
                     dataset)
    mean, std = meta.get("mean"), meta.get("std")
    if not mean or not std:  # older checkpoints: what the engine would have used
        mean, std = input_stats(config, dataset)
    result = evaluate(model, dataset.test_x, dataset.test_y, mean=mean, std=std, batch_size=batch_size,
                      device=device, amp=config.amp, return_logits=True)
    assert result.logits is not None
    return result.logits


@dataclass(frozen=True)
class EnsembleResult:
    names: list[str]
    logits: list[torch.Tensor]  # (M, C) per member
    members: list[float]  # each member's accuracy
    accuracy: float  # the whole ensemble's
    curve: list[tuple[int, float]]  # gain_curve in the given order

    def to_dict(self) -> dict[str, Any]:
        return {"names": self.names, "members": self.members, "accuracy": self.accuracy,
                "curve": [list(p) for p in self.curve]}


def ensemble_from_checkpoints(paths: Sequence[str | Path], dataset: Dataset, device: str | torch.device = "cpu",
                              names: Sequence[str] | None = None) -> EnsembleResult:
    """Check that the checkpoints fit together and the dataset (before evaluating anything), then evaluate each
    and combine them."""
    infos = [member_info(p, n) for p, n in zip(paths, _names(len(paths), names) if names else [None] * len(paths),
                                                strict=True)]
    check_compatible(infos, dataset)
    logits = [run_logits(p, dataset, device) for p in paths]
    labels = dataset.test_y
    member_names = [i.name for i in infos]
    check_logits(logits, labels, member_names)
    return EnsembleResult(member_names, logits, members_accuracy(logits, labels),
                          ensemble_accuracy(logits, labels), gain_curve(logits, labels))
