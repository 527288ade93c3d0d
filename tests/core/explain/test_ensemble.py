"""core/explain/ensemble.py: mean-of-softmax accuracy against hand computations, gain curves, checkpoint logits, checks."""

from __future__ import annotations

import math

import pytest
import torch

from core.config import DataConfig, ModelConfig, TrainConfig
from core.data import augment as aug
from core.data.dataset import Dataset
from core.errors import LabError
from core.explain.ensemble import (
    check_compatible,
    check_logits,
    ensemble_accuracy,
    ensemble_from_checkpoints,
    ensemble_probs,
    gain_curve,
    member_info,
    members_accuracy,
    run_logits,
)
from core.models.catalog import build_model
from core.train.checkpoint import save_checkpoint


def logits_of(probs) -> torch.Tensor:
    """Logits whose softmax is exactly `probs` (rows sum to 1)."""
    return torch.tensor(probs, dtype=torch.float64).log().float()


def each_wrong_once() -> tuple[list[torch.Tensor], torch.Tensor]:
    """3 members, 3 images, labels 0, 1, 2. Member k is mildly wrong on image k (label 0.4, a wrong class 0.5)
    and confidently right elsewhere (label 0.8): each member 2/3, the mean of softmaxes 3/3 (label 0.667)."""
    labels = torch.tensor([0, 1, 2])
    members = []
    for k in range(3):
        rows = []
        for img in range(3):
            p = [0.1, 0.1, 0.1]
            if img == k:
                p[img], p[(img + 1) % 3] = 0.4, 0.5
            else:
                p[img] = 0.8
            rows.append(p)
        members.append(logits_of(rows))
    return members, labels


def test_members_are_each_wrong_once_but_the_ensemble_is_always_right():
    members, labels = each_wrong_once()
    assert members_accuracy(members, labels) == pytest.approx([2 / 3] * 3)
    assert ensemble_accuracy(members, labels) == 1.0
    probs = ensemble_probs(members)
    assert probs[0].tolist() == pytest.approx([(0.4 + 0.8 + 0.8) / 3, (0.5 + 0.1 + 0.1) / 3, 0.1])
    # any two members already fix each other's single mistake (0.4 + 0.8 beats 0.5 + 0.1)
    assert gain_curve(members, labels) == [(1, pytest.approx(2 / 3)), (2, 1.0), (3, 1.0)]


def test_the_ensemble_averages_probabilities_not_logits():
    # Member A is sure of class 0; member B is torn between 1 and 2 with large logits. Mean logits (5, 6, 5.95)
    # pick class 1; mean probabilities (~0.5, ~0.26, ~0.24) pick class 0, the label.
    a, b = torch.tensor([[10.0, 0.0, 0.0]]), torch.tensor([[0.0, 12.0, 11.9]])
    labels = torch.tensor([0])
    assert (a + b).argmax(1).item() == 1
    assert members_accuracy([a, b], labels) == [1.0, 0.0]
    assert ensemble_accuracy([a, b], labels) == 1.0
    p_b = torch.softmax(b, 1)[0]
    assert ensemble_probs([a, b])[0, 1].item() == pytest.approx((math.exp(-10) / (1 + 2 * math.exp(-10)) + p_b[1].item()) / 2)


def test_gain_curve_orders():
    members, labels = each_wrong_once()
    weak = logits_of([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])  # wrong on every image
    everyone = [weak, *members]
    assert members_accuracy(everyone, labels) == pytest.approx([0.0, 2 / 3, 2 / 3, 2 / 3])
    assert gain_curve(everyone, labels)[0] == (1, 0.0)
    best = gain_curve(everyone, labels, order="best")  # the weak member comes last
    assert [k for k, _ in best] == [1, 2, 3, 4] and best[2] == (3, 1.0)
    assert best == gain_curve(everyone, labels, order=[1, 2, 3, 0])
    assert gain_curve(everyone, labels, order=[3]) == [(1, pytest.approx(2 / 3))]
    for bad in ([0, 0], [4], [], "worst"):
        with pytest.raises(LabError, match="order must list distinct member indices 0..3"):
            gain_curve(everyone, labels, order=bad)


def test_logit_shapes_are_checked_naming_the_member():
    members, labels = each_wrong_once()
    with pytest.raises(LabError, match="member 2 has predictions for 2 test images but the test set has 3"):
        check_logits([members[0], members[1][:2]], labels)
    with pytest.raises(LabError, match="member 3 predicts 4 classes but member 1 predicts 3"):
        ensemble_accuracy([members[0], members[1], torch.zeros(3, 4)], labels)
    with pytest.raises(LabError, match="at least one model"):
        members_accuracy([], labels)
    with pytest.raises(LabError, match="run b: logits must be"):
        check_logits([members[0], torch.zeros(3)], labels, names=["run a", "run b"])


# --- checkpoints ---------------------------------------------------------------------------------------------

CLASSES = ("a", "b", "c")


def dataset(name: str = "synthetic", classes=CLASSES) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(12) % len(classes)
    return Dataset(name=name, train_x=x, train_y=y, test_x=x, test_y=y, classes=tuple(classes),
                   mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def checkpoint(tmp_path, run_id: str, seed: int, *, data: str = "synthetic", classes=CLASSES,
               mean=(0.4, 0.45, 0.5), std=(0.2, 0.25, 0.3)):
    config = TrainConfig(data=DataConfig(dataset=data), model=ModelConfig("cnn", {"widths": (4, 8), "pool_after": (1, 2),
                                                                                 "fc": 16}), device="cpu")
    torch.manual_seed(seed)
    model = build_model("cnn", len(classes), widths=(4, 8), pool_after=(1, 2), fc=16)
    path = tmp_path / run_id / "best.pt"
    save_checkpoint(path, model=model, optimizer=None, config=config, epoch=2, batch=0, sums=[0, 0, 0], history=[],
                    best_acc=None, aug_state=None, classes=list(classes), mean=list(mean), std=list(std))
    return path, model.eval(), mean, std


def test_run_logits_uses_the_checkpoints_normalization(tmp_path):
    ds = dataset()
    path, model, mean, std = checkpoint(tmp_path, "r1", 1)
    logits = run_logits(path, ds)
    with torch.no_grad():
        expected = model(aug.normalize(ds.test_x, mean, std))  # the checkpoint's mean/std, not the dataset's
    assert logits.shape == (12, 3) and logits.dtype == torch.float32 and logits.device.type == "cpu"
    assert torch.allclose(logits, expected, atol=1e-5)
    with torch.no_grad():
        assert not torch.allclose(logits, model(aug.normalize(ds.test_x, ds.mean, ds.std)), atol=1e-3)


def test_ensemble_from_checkpoints(tmp_path):
    ds = dataset()
    paths = [checkpoint(tmp_path, f"r{i}", i)[0] for i in range(3)]
    result = ensemble_from_checkpoints(paths, ds)
    assert result.names == ["run r0 (best.pt)", "run r1 (best.pt)", "run r2 (best.pt)"]
    logits = [run_logits(p, ds) for p in paths]
    assert result.members == members_accuracy(logits, ds.test_y)
    assert result.accuracy == ensemble_accuracy(logits, ds.test_y) == result.curve[-1][1]
    assert [k for k, _ in result.curve] == [1, 2, 3] and result.to_dict()["names"] == result.names
    assert member_info(paths[0]).num_classes == 3


def test_incompatible_runs_are_named(tmp_path):
    ds = dataset()
    good = checkpoint(tmp_path, "good", 0)[0]
    other_data = checkpoint(tmp_path, "c10", 1, data="cifar10")[0]
    more_classes = checkpoint(tmp_path, "four", 2, classes=("a", "b", "c", "d"))[0]
    with pytest.raises(LabError, match=r"run c10 \(best.pt\) was trained on cifar10, but the test set is synthetic"):
        ensemble_from_checkpoints([good, other_data], ds)
    with pytest.raises(LabError, match=r"run four \(best.pt\) predicts 4 classes but synthetic has 3"):
        ensemble_from_checkpoints([good, more_classes], ds)
    with pytest.raises(LabError, match=r"run four \(best.pt\) predicts 4 classes"):
        run_logits(more_classes, ds)
    with pytest.raises(LabError, match="does not exist"):
        ensemble_from_checkpoints([good, tmp_path / "gone" / "best.pt"], ds)
    four = dataset(classes=("a", "b", "c", "d"))
    with pytest.raises(LabError, match=r"run four \(best.pt\) was trained on synthetic \(4 classes\) but run good "
                                       r"\(best.pt\) on synthetic \(3 classes\)"):
        check_compatible([member_info(good), member_info(more_classes)])
    assert len(ensemble_from_checkpoints([more_classes], four, names=["mine"]).names) == 1
