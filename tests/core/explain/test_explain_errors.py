"""core/explain/confusion.py (where the model errs) and core/explain/figures.py's colormap, overlay, upscale and tile grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import LabError
from core.explain.confusion import (
    coarse_confusion,
    confusion_matrix,
    misclassified,
    most_confused_pairs,
    predict_split,
    rank_mistakes,
)
from core.explain.figures import colorize, colormap_lut, overlay, tile_grid, upscale


def labels(n: int, c: int, seed: int) -> torch.Tensor:
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))


def test_confusion_matrix_matches_a_reference_loop_and_sums_to_the_test_set():
    c, n = 7, 500
    true, pred = labels(n, c, 0), labels(n, c, 1)
    cm = confusion_matrix(pred, true, c)
    ref = torch.zeros(c, c, dtype=torch.int64)
    for t, p in zip(true.tolist(), pred.tolist(), strict=True):
        ref[t, p] += 1
    assert cm.dtype == torch.int64 and torch.equal(cm, ref)
    assert int(cm.sum()) == n
    assert torch.equal(cm.sum(1), torch.bincount(true, minlength=c))  # rows: true class
    assert torch.equal(cm.sum(0), torch.bincount(pred, minlength=c))  # columns: predicted class
    with pytest.raises(ValueError, match=r"outside 0\.\.6"):
        confusion_matrix(torch.tensor([7]), torch.tensor([0]), c)


def test_coarse_confusion_on_a_hand_example():
    fine_to_coarse = (0, 0, 1, 1, 2)  # fine 0,1 -> A; 2,3 -> B; 4 -> C
    true = torch.tensor([0, 1, 2, 3, 4, 0])
    pred = torch.tensor([1, 1, 3, 0, 4, 4])  # 0->1 same super (right), 2->3 right, 3->0 B->A, 0->4 A->C
    cm = coarse_confusion(pred, true, fine_to_coarse)
    assert cm.tolist() == [[2, 0, 1],
                           [1, 1, 0],
                           [0, 0, 1]]
    assert coarse_confusion(pred, true, fine_to_coarse, num_coarse=4).shape == (4, 4)


CM = [[5, 3, 2, 0],
      [1, 8, 0, 1],
      [3, 0, 1, 0],
      [0, 0, 0, 0]]


def labels_of(cm: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(pred, true) with exactly cm[i][j] images of true class i answered j (in a shuffled order)."""
    cells = [(i, j) for i, row in enumerate(cm) for j, n in enumerate(row) for _ in range(n)]
    order = torch.randperm(len(cells), generator=torch.Generator().manual_seed(0)).tolist()
    true, pred = zip(*(cells[k] for k in order))
    return torch.tensor(pred), torch.tensor(true)


def test_rank_mistakes_on_a_hand_example():
    pred, true = labels_of(CM)
    m = rank_mistakes(pred, true, ["a", "b", "c", "d"], pairs=3, per_side=2)
    assert m.cm.tolist() == CM
    assert m.per_class[:3] == pytest.approx((0.5, 0.8, 0.25)) and math.isnan(m.per_class[3])  # d: no pictures
    assert [n for n, _ in m.hardest] == ["c", "a"] and [n for n, _ in m.easiest] == ["b", "a"]
    assert m.hardest[0][1] == pytest.approx(0.25) and m.easiest[0][1] == pytest.approx(0.8)
    assert [(p.true, p.pred, p.true_index, p.pred_index, p.count) for p in m.pairs] == [
        ("c", "a", 2, 0, 3), ("a", "b", 0, 1, 3), ("a", "c", 0, 2, 2)]
    assert [p.superclass for p in m.pairs] == [None] * 3
    assert m.pairs[0].fraction == pytest.approx(0.75)
    # superclasses: a, b are trees; c, d flowers -> only a->b stays inside one
    sup = rank_mistakes(pred, true, ["a", "b", "c", "d"], ["trees", "trees", "flowers", "flowers"], pairs=4)
    assert [(p.true, p.pred, p.superclass) for p in sup.pairs] == [
        ("c", "a", None), ("a", "b", "trees"), ("a", "c", None), ("b", "a", "trees")]
    assert len(sup.hardest) == 3 and sup.easiest == sup.hardest[::-1]  # the absent class d is left out


def test_rank_mistakes_breaks_accuracy_ties_by_class_name():
    true = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 0, 2, 2])  # z: 50%, a: 50%, m: 100%
    m = rank_mistakes(pred, true, ["z", "a", "m"])
    assert m.hardest == [("a", 0.5), ("z", 0.5), ("m", 1.0)] and m.easiest == [("m", 1.0), ("z", 0.5), ("a", 0.5)]
    assert rank_mistakes(true, true, ["z", "a", "m"]).pairs == []


def test_most_confused_pairs_ordering():
    cm = torch.tensor(CM)
    pairs = most_confused_pairs(cm, ["a", "b", "c", "d"], k=4)
    # count 3 twice: c->a is 3/4 of c, a->b 3/10 of a, so c->a first; then a->b; then a->c (2)
    assert [(p.true, p.pred, p.count) for p in pairs] == [("c", "a", 3), ("a", "b", 3), ("a", "c", 2),
                                                          ("b", "a", 1)]
    assert pairs[0].fraction == pytest.approx(0.75) and pairs[1].fraction == pytest.approx(0.3)
    true, pred, count, fraction = pairs[2]
    assert (true, pred, count, fraction) == ("a", "c", 2, pytest.approx(0.2))
    assert len(most_confused_pairs(cm, list("abcd"), k=100)) == 5  # every non-zero off-diagonal cell, no more


def test_misclassified_sorts_by_confidence_of_the_wrong_answer_and_filters():
    true = torch.tensor([0, 1, 2, 0, 1, 2])
    pred = torch.tensor([0, 2, 2, 1, 0, 1])  # wrong: 1 (1->2), 3 (0->1), 4 (1->0), 5 (2->1)
    probs = torch.full((6, 3), 0.1)
    probs[1, 2], probs[3, 1], probs[4, 0], probs[5, 1] = 0.5, 0.9, 0.7, 0.5
    assert misclassified(pred, true, probs).tolist() == [3, 4, 1, 5]  # 0.9, 0.7, then the 0.5 tie by index
    assert misclassified(pred, true).tolist() == [1, 3, 4, 5]
    assert misclassified(pred, true, probs, limit=2).tolist() == [3, 4]
    assert misclassified(pred, true, probs, pred_class=1).tolist() == [3, 5]
    assert misclassified(pred, true, probs, true_class=1, pred_class=0).tolist() == [4]


def test_predict_split_agrees_with_the_model_and_restores_its_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5), nn.Dropout(0.5))
    model.train()
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pred, probs = predict_split(model, x, (0.5,) * 3, (0.25,) * 3, batch_size=4)
    with torch.no_grad():
        logits = model[1](((x.float() / 255 - 0.5) / 0.25).flatten(1))
    assert torch.equal(pred, logits.argmax(1)) and torch.allclose(probs, torch.softmax(logits, 1), atol=1e-6)
    assert model.training


def test_colormap_overlay_and_upscale():
    lut = colormap_lut("inferno")
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0].tolist() == [0, 0, 4] and lut[-1].tolist() == [252, 255, 164]
    assert (np.diff(lut.astype(int).sum(1)) >= -3).all()  # inferno gets (nearly) monotonically brighter
    assert colormap_lut("gray")[128].tolist() == [128, 128, 128]
    with pytest.raises(LabError, match="unknown colormap 'jet'"):
        colormap_lut("jet")

    img = torch.randint(0, 256, (3, 16, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    heat = torch.rand(16, 12)
    out = overlay(img, heat, alpha=0.5)
    assert out.shape == (16, 12, 3) and out.dtype == np.uint8
    assert np.array_equal(overlay(img, heat, alpha=0.0), img.permute(1, 2, 0).numpy())
    assert np.array_equal(overlay(img, heat, alpha=1.0), colorize(heat))
    expected = np.rint(0.5 * img.permute(1, 2, 0).numpy() + 0.5 * colorize(heat))
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert overlay(img, torch.rand(4, 3)).shape == (16, 12, 3)  # a coarse heat map is resized to the image
    with pytest.raises(LabError, match="alpha"):
        overlay(img, heat, alpha=2)

    big = upscale(img, 3)
    assert big.shape == (3, 48, 36) and torch.equal(big[:, ::3, ::3], img) and torch.equal(big[:, 2::3, 1::3], img)
    arr = img.permute(1, 2, 0).numpy()
    assert upscale(arr, 2).shape == (32, 24, 3) and np.array_equal(upscale(arr, 2)[1::2, 1::2], arr)
    with pytest.raises(LabError, match="whole number"):
        upscale(arr, 0)


def test_tile_grid_places_each_tile():
    tiles = torch.stack([torch.full((3, 2, 2), v) for v in (0.0, 0.5, 1.0)])
    grid = tile_grid(tiles, cols=2, pad=1, scale=2)
    assert grid.shape == (1 + 2 * 5, 1 + 2 * 5, 3)
    assert (grid[1:5, 1:5] == 0).all() and (grid[1:5, 6:10] == 128).all() and (grid[6:10, 1:5] == 255).all()
    gray = tile_grid(torch.zeros(4, 3, 3), cols=4, pad=0)
    assert gray.shape == (3, 12, 3) and (gray == 0).all()
