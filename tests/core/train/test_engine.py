"""The engine learns, stops, diverges, resumes and checkpoints as it says - on tiny synthetic data, CPU."""

import json
import math

import pytest
import torch

from core.config import AugmentConfig, DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.data.dataset import stratified_subset
from core.data.loading import load_dataset
from core.train import events as ev
from core.train.checkpoint import load_model
from core.train.engine import evaluate, per_class_accuracy, train

SMALL_CNN = ModelConfig("cnn", {"widths": (8, 8, 16, 16), "fc": 64, "batch_norm": True})


def tiny(**kw) -> TrainConfig:
    base = dict(data=DataConfig(dataset="synthetic", subset=600, test_subset=200,
                                augment=AugmentConfig(flip_p=0.5, crop_padding=2)),
                model=SMALL_CNN, optim=OptimConfig(name="adam", lr=3e-3), batch_size=64, epochs=3,
                device="cpu", log_every=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def kinds(events):
    return [e.event for e in events]


def test_learns_synthetic_far_above_chance(synthetic):
    cfg = tiny(data=DataConfig(dataset="synthetic", subset=2000, test_subset=200,
                               augment=AugmentConfig(flip_p=0.5, crop_padding=2)), epochs=2)
    events = list(train(cfg, dataset=synthetic))
    assert isinstance(events[0], ev.RunStarted) and events[0].train_size == 2000 and events[0].test_size == 200
    epochs = [e for e in events if isinstance(e, ev.EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2]
    fin = events[-1]
    assert isinstance(fin, ev.Finished) and fin.status == "completed" and fin.reason == ""
    assert fin.test_acc == epochs[-1].test_acc and fin.best_test_acc == max(e.test_acc for e in epochs)
    assert fin.test_acc > 0.4, f"10 classes: chance is 0.1, got {fin.test_acc}"
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert len(fin.per_class_acc) == 10
    steps = [e for e in events if isinstance(e, ev.Step)]
    assert steps and all(s.total_steps == 64 for s in steps) and steps[-1].step == 64  # 2 × ceil(2000/64)
    for e in events:  # every event is plain JSON
        json.dumps(ev.to_dict(e), allow_nan=False)
        assert ev.from_dict(ev.to_dict(e)).event == e.event


def test_same_seed_same_metrics_on_cpu(synthetic):
    a = [e for e in train(tiny(epochs=1), dataset=synthetic) if isinstance(e, ev.EpochEnd)]
    b = [e for e in train(tiny(epochs=1), dataset=synthetic) if isinstance(e, ev.EpochEnd)]
    c = [e for e in train(tiny(epochs=1, seed=1), dataset=synthetic) if isinstance(e, ev.EpochEnd)]
    assert (a[0].train_loss, a[0].test_acc) == (b[0].train_loss, b[0].test_acc)
    assert a[0].train_loss != c[0].train_loss


def test_non_finite_loss_stops_as_diverged_with_step_and_lr(synthetic):
    cfg = tiny(model=ModelConfig("mlp", {"hidden": (32,)}), optim=OptimConfig(name="sgd", lr=100.0, momentum=0.9),
               log_every=1000)
    events = list(train(cfg, dataset=synthetic))
    fin = events[-1]
    assert fin.status == "diverged"
    assert fin.epoch == 1 and isinstance(fin.step, int) and 1 <= fin.step <= 10  # 10 steps per epoch
    assert f"diverged at epoch 1, step {fin.step}: loss " in fin.reason
    assert "learning rate (100) is too high" in fin.reason and "tenth of it (10)" in fin.reason
    assert not any(isinstance(e, ev.EpochEnd) and not math.isfinite(e.train_loss) for e in events)
    json.dumps(ev.to_dict(fin), allow_nan=False)  # a NaN loss is null in JSON


def test_a_loss_that_blows_up_without_nan_ends_diverged_early(synthetic):
    # Adam far too high: the loss jumps to 1e3..1e20 and stays there, finite (the cnn preset at lr 100 does this).
    cfg = tiny(optim=OptimConfig(name="adam", lr=100.0), epochs=4, log_every=5,
               data=DataConfig(dataset="synthetic", subset=1280, test_subset=100))  # 20 steps per epoch
    events = list(train(cfg, dataset=synthetic))
    fin = events[-1]
    assert fin.status == "diverged" and fin.epochs_done == 0
    assert (fin.epoch, fin.step) == (1, 10)  # as soon as the rule's window of ten steps is full
    assert fin.loss is not None and fin.loss > 3 * math.log(10)  # the ten steps' median, far above chance
    assert f"step 10: loss {fin.loss:.3g}" in fin.reason
    assert not any(isinstance(e, ev.EpochEnd) for e in events)
    assert ev.from_dict(ev.to_dict(fin)) == fin


def test_should_stop_is_checked_every_step(synthetic, tmp_path):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 4  # four steps run, the fifth check stops

    events = list(train(tiny(), dataset=synthetic, should_stop=stop, checkpoint_dir=tmp_path))
    assert events[-1].status == "stopped" and "step 4" in events[-1].reason
    assert (tmp_path / "last.pt").is_file()


def test_stop_and_resume_give_the_same_curve_as_one_run(synthetic, tmp_path):
    cfg = tiny(epochs=2)
    straight = [e for e in train(cfg, dataset=synthetic) if isinstance(e, ev.EpochEnd)]
    calls = []
    first = list(train(cfg, dataset=synthetic, checkpoint_dir=tmp_path,
                       should_stop=lambda: calls.append(1) or len(calls) > 13))  # stops mid epoch 2
    assert first[-1].status == "stopped"
    rest = list(train(cfg, dataset=synthetic, checkpoint_dir=tmp_path, resume=True))
    assert rest[0].start_epoch == 2 and rest[-1].status == "completed"
    resumed = [e for e in first + rest if isinstance(e, ev.EpochEnd)]
    assert [e.epoch for e in resumed] == [1, 2]
    for a, b in zip(straight, resumed):
        assert a.test_acc == b.test_acc
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-9)


def test_a_run_with_dropout_resumes_with_the_masks_it_would_have_drawn(synthetic, tmp_path):
    # the dropout masks come from the global RNG: the checkpoint carries its state, so the resumed half draws
    # exactly what the uninterrupted run drew (an older checkpoint without it resumed with other masks)
    cfg = tiny(epochs=2, model=ModelConfig("cnn", {"widths": (8, 8, 16, 16), "fc": 64, "dropout": 0.5}))
    straight = [e for e in train(cfg, dataset=synthetic) if isinstance(e, ev.EpochEnd)]
    calls = []
    first = list(train(cfg, dataset=synthetic, checkpoint_dir=tmp_path,
                       should_stop=lambda: calls.append(1) or len(calls) > 13))  # stops mid epoch 2
    assert first[-1].status == "stopped"
    torch.manual_seed(12345)  # whatever the process drew meanwhile
    rest = list(train(cfg, dataset=synthetic, checkpoint_dir=tmp_path, resume=True))
    resumed = [e for e in first + rest if isinstance(e, ev.EpochEnd)]
    assert [e.epoch for e in resumed] == [1, 2]
    for a, b in zip(straight, resumed):
        assert a.test_acc == b.test_acc
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-9)


def test_checkpoint_round_trip_rebuilds_the_same_model(synthetic, tmp_path):
    cfg = tiny(epochs=1)
    epoch = [e for e in train(cfg, dataset=synthetic, checkpoint_dir=tmp_path) if isinstance(e, ev.EpochEnd)][0]
    model, config, meta = load_model(tmp_path / "last.pt")
    assert config == cfg and meta["classes"] == list(synthetic.classes) and not model.training
    model2, _, _ = load_model(tmp_path / "best.pt")
    test = stratified_subset(synthetic, 600, 200, seed=0)  # the run's own test split
    r1 = evaluate(model, test.test_x, test.test_y, mean=meta["mean"], std=meta["std"])
    r2 = evaluate(model2, test.test_x, test.test_y, mean=meta["mean"], std=meta["std"])
    assert torch.equal(r1.predictions, r2.predictions)
    assert r1.acc == epoch.test_acc  # the rebuilt model scores exactly what the run reported


def test_evaluate_matches_a_hand_computation():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    r = evaluate(model, x, y, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=3, return_logits=True)
    logits = model((x.float() / 255 - 0.5) / 0.25)
    assert torch.allclose(r.logits, logits, atol=1e-5)
    assert r.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert r.acc == (logits.argmax(1) == y).float().mean().item()
    acc = per_class_accuracy(r.predictions, y, 4)
    assert math.isnan(acc[3]) and acc[0] == (r.predictions[y == 0] == 0).float().mean().item()


def test_setup_errors_are_lab_errors():
    from core.errors import LabError
    with pytest.raises(LabError, match="not in"):
        next(train(TrainConfig(data=DataConfig(dataset="cifar10"), device="cpu"), data_root="/nonexistent/x"))
