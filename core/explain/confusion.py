"""Where the model errs: confusion matrices (fine and CIFAR-100 superclass), the most confused pairs, the
mistakes page's ranking (`rank_mistakes`: hardest and easiest classes, pairs, shared superclasses) and the
misclassified images worth a gallery. Per-class accuracy is the engine's (core.train.per_class_accuracy).
Pure tensor functions; labels are int64 class indices, matrices are (C, C) int64 with rows = true class and
columns = predicted class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from core.train.engine import evaluate, per_class_accuracy


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


class PairRow(NamedTuple):
    """One row of the "pairs it mixes up most" table."""

    true: str
    pred: str
    true_index: int
    pred_index: int
    count: int  # test images of `true` answered `pred`
    fraction: float  # count / test images of `true`
    superclass: str | None  # the superclass both belong to (CIFAR-100: a close relative), else None


class Mistakes(NamedTuple):
    """Where a model errs on a test split, ranked for the mistakes page."""

    cm: torch.Tensor  # (C, C) int64, rows = true class
    per_class: tuple[float, ...]  # accuracy of each class (NaN: absent from the split)
    hardest: list[tuple[str, float]]  # (class, accuracy), lowest first; ties: by name
    easiest: list[tuple[str, float]]  # (class, accuracy), highest first; ties: by name, last first
    pairs: list[PairRow]  # most_confused_pairs' order


def rank_mistakes(pred: Any, true: Any, classes: Sequence[str], superclasses: Sequence[str] | None = None, *,
                  pairs: int = 15, per_side: int = 5) -> Mistakes:
    """The confusion matrix, each class's accuracy, the `per_side` hardest and easiest classes (classes absent
    from the split are left out) and the `pairs` most confused pairs, each with the superclass its two classes
    share (superclasses[i]: the superclass name of class i; None: the dataset has none)."""
    c = len(classes)
    p, t = _labels("pred", pred, c), _labels("true", true, c)
    cm = confusion_matrix(p, t, c)
    accs = per_class_accuracy(p, t, c)
    ranked = sorted((a, name) for a, name in zip(accs, classes) if not math.isnan(a))
    index = {name: i for i, name in enumerate(classes)}
    rows = []
    for pair in most_confused_pairs(cm, classes, k=pairs):
        i, j = index[pair.true], index[pair.pred]
        shared = superclasses[i] if superclasses is not None and superclasses[i] == superclasses[j] else None
        rows.append(PairRow(pair.true, pair.pred, i, j, pair.count, pair.fraction, shared))
    return Mistakes(cm, accs, [(n, a) for a, n in ranked[:per_side]], [(n, a) for a, n in ranked[::-1][:per_side]],
                    rows)


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
    dummy = torch.zeros(len(images_u8), dtype=torch.long)
    result = evaluate(model, images_u8, dummy, mean=mean, std=std, batch_size=batch_size, amp=False,
                      return_logits=True)
    return result.predictions, torch.softmax(result.logits.float(), -1)
