"""Where the model errs: confusion matrices (fine and CIFAR-100 superclass), per-class accuracy, the most
confused pairs and the misclassified images worth a gallery. Pure tensor functions; labels are int64 class
indices, matrices are (C, C) int64 with rows = true class and columns = predicted class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn


def _labels(name: str, t: Any, num_classes: int) -> torch.Tensor:
    t = torch.as_tensor(t).detach().cpu().long().flatten()
    if len(t) and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}: {int(t.min())}..{int(t.max())}")
    return t


def confusion_matrix(pred: Any, true: Any, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts: [i, j] = images of true class i predicted as j."""
    p, t = _labels("pred", pred, num_classes), _labels("true", true, num_classes)
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length: {len(p)} vs {len(t)}")
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(num_classes, num_classes)


def coarse_confusion(pred: Any, true: Any, fine_to_coarse: Sequence[int], num_coarse: int | None = None) -> torch.Tensor:
    """The superclass confusion matrix (CIFAR-100: 20×20) of fine-label predictions: each fine label is
    replaced by its superclass (fine_to_coarse[i]) first, so a maple predicted as an oak counts as correct."""
    mapping = torch.as_tensor(list(fine_to_coarse), dtype=torch.long)
    n = int(mapping.max()) + 1 if num_coarse is None else num_coarse
    p, t = _labels("pred", pred, len(mapping)), _labels("true", true, len(mapping))
    return confusion_matrix(mapping[p], mapping[t], n)


def per_class_accuracy(cm: torch.Tensor) -> tuple[float, ...]:
    """Diagonal over row sums: the fraction of each true class predicted right (NaN for an absent class)."""
    total = cm.sum(1).double()
    acc = cm.diagonal().double() / total
    return tuple(acc.tolist())


class ConfusedPair(NamedTuple):
    true: str  # the true class
    pred: str  # what the model said instead
    count: int  # images of `true` predicted as `pred`
    fraction: float  # count / images of `true`


def most_confused_pairs(cm: torch.Tensor, classes: Sequence[str], k: int = 10) -> list[ConfusedPair]:
    """The k largest off-diagonal cells, by count, then by fraction of the true class, then by (true, pred)
    index; cells with zero count are left out."""
    c = cm.shape[0]
    if len(classes) != c:
        raise ValueError(f"{len(classes)} class names for a {c}×{c} matrix")
    totals = cm.sum(1).double().clamp(min=1)
    cells = [(int(cm[i, j]), float(cm[i, j]) / float(totals[i]), i, j)
             for i in range(c) for j in range(c) if i != j and cm[i, j] > 0]
    cells.sort(key=lambda x: (-x[0], -x[1], x[2], x[3]))
    return [ConfusedPair(classes[i], classes[j], n, f) for n, f, i, j in cells[:k]]


def misclassified(pred: Any, true: Any, probs: torch.Tensor | None = None, limit: int | None = 64, *,
                  true_class: int | None = None, pred_class: int | None = None) -> torch.Tensor:
    """Indices of the wrong predictions for a gallery: the most confident mistakes first (probs (N, C): the
    probability of the wrong answer; ties and no probs: in index order), optionally only those of one true
    and/or one predicted class. int64 (≤ limit,)."""
    p = torch.as_tensor(pred).detach().cpu().long().flatten()
    t = torch.as_tensor(true).detach().cpu().long().flatten()
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length: {len(p)} vs {len(t)}")
    wrong = p != t
    if true_class is not None:
        wrong &= t == true_class
    if pred_class is not None:
        wrong &= p == pred_class
    idx = torch.nonzero(wrong).flatten()
    if probs is not None and len(idx):
        conf = probs.detach().cpu()[idx, p[idx]]
        idx = idx[torch.argsort(conf, descending=True, stable=True)]
    return idx if limit is None else idx[:limit]


@torch.no_grad()
def predict_split(model: nn.Module, images_u8: torch.Tensor, mean: Any, std: Any, batch_size: int = 512,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions (N,) int64, probabilities (N, C) float32), on the CPU, for a whole split of uint8 images;
    the model's mode is restored afterwards (core.train.engine.evaluate does the batching)."""
    from core.train.engine import evaluate  # deferred: the engine imports the whole training stack

    dummy = torch.zeros(len(images_u8), dtype=torch.long)
    result = evaluate(model, images_u8, dummy, mean=mean, std=std, batch_size=batch_size, amp=False,
                      return_logits=True)
    return result.predictions, torch.softmax(result.logits.float(), -1)
