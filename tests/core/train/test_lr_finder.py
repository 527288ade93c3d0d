"""The LR range test: its LR sequence, smoothing, stops, suggestions, exact restoration and determinism (CPU).

The toy problem with a known answer is a noisy quadratic, loss = 0.5·a·mean((w - y)²) with y ~ N(0, 0.1²) per
batch and plain SGD: each step multiplies w by (1 - lr·a), so SGD diverges above lr = 2/a, is fastest at 1/a,
and below ~1/(20a) a step shrinks the loss by less than 10% - the good range is [1/(20a), 1/a].
"""

import copy
import json
import math

import pytest
import torch
from torch import nn

from core.cli.main import main
from core.config import AugmentConfig, DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.data.loading import load_dataset
from core.errors import ConfigError
from core.models.catalog import build_for_config
from core.train.batches import AUG_SEED_OFFSET, PERM_SEED_STRIDE, TrainBatches
from core.train.lr_finder import (
    NON_FINITE,
    REACHED_END,
    LRFinder,
    lr_schedule,
    schedule_for_suggestion,
    smooth,
)
from core.train.lr_recommend import recommend
from core.train.lr_suggest import FASTAI, MIN_POINTS, SUGGESTIONS, suggest
from core.train.schedule import schedule_curve

# --- helpers ---------------------------------------------------------------------------------------------------

def quadratic(a: float, *, noise: float = 0.1, seed: int = 0, dtype=torch.float32):
    """(model, criterion, batch_fn) of the noisy quadratic; w starts at 1."""
    model = nn.Linear(1, 1, bias=False).to(dtype)
    with torch.no_grad():
        model.weight.fill_(1.0)

    def criterion(out, y):
        return 0.5 * a * ((out - y) ** 2).mean()

    def batch(i):
        g = torch.Generator().manual_seed(seed * 100_003 + i)
        return torch.ones(8, 1, dtype=dtype), noise * torch.randn(8, 1, generator=g, dtype=dtype)

    return model, criterion, batch


def quad_finder(a=1.0, *, start=1e-4, end=10.0, num_iter=100, seed=0, **kw) -> LRFinder:
    model, criterion, batch = quadratic(a, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    return LRFinder(model, opt, criterion, batch, start_lr=start / a, end_lr=end / a, num_iter=num_iter, **kw)


def small_net(seed: int = 0) -> nn.Module:
    """Linear → BatchNorm (buffers) → ReLU → Dropout (RNG) → Linear."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def net_batch(i: int):
    g = torch.Generator().manual_seed(i)
    x = torch.randn(12, 6, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def snapshot(model: nn.Module, opt: torch.optim.Optimizer):
    return (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
            [None if p.grad is None else p.grad.clone() for p in model.parameters()], model.training)


def assert_same(a, b) -> None:
    """Every tensor equal (torch.equal), every other value ==, recursively."""
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


def trained(opt_name: str):
    """A small net and an optimizer with non-empty state (a few steps done) and gradients present."""
    model = small_net()
    opt = (torch.optim.Adam(model.parameters(), lr=1e-2) if opt_name == "adam"
           else torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, nesterov=True))
    for i in range(3):
        x, y = net_batch(1000 + i)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()  # the finder trains in train mode; it must hand back eval mode
    return model, opt


TINY_CNN = ModelConfig("cnn", {"widths": (4, 4, 8, 8), "fc": 16, "dropout": 0.3})


def tiny_config(**kw) -> TrainConfig:
    base = dict(data=DataConfig(dataset="synthetic", subset=100, test_subset=50,
                                augment=AugmentConfig(flip_p=0.5, crop_padding=2)),
                model=TINY_CNN, optim=OptimConfig(name="adam", lr=1e-3), batch_size=16, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


# --- the LR sequence and smoothing ---------------------------------------------------------------------------

def test_exp_schedule_is_exactly_log_spaced_and_linear_is_linear():
    start, end, n = 1e-7, 10.0, 100
    lrs = lr_schedule(start, end, n, "exp")
    assert lrs == [start * (end / start) ** (i / (n - 1)) for i in range(n - 1)] + [end]
    ref = torch.logspace(-7, 1, n, dtype=torch.float64).tolist()
    assert lrs == pytest.approx(ref, rel=1e-12)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-12)  # a constant factor per step
    lin = lr_schedule(0.1, 2.0, 20, "linear")
    assert lin == [0.1 + (2.0 - 0.1) * (i / 19) for i in range(19)] + [2.0]

    f = quad_finder(start=1e-3, end=1.0, num_iter=30, diverge_factor=None)
    f.run()
    assert f.lrs == lr_schedule(1e-3, 1.0, 30) and f.stop_reason == REACHED_END
    f = quad_finder(start=1e-3, end=1.0, num_iter=30, mode="linear", diverge_factor=None)
    f.step(5)
    assert f.lrs == lr_schedule(1e-3, 1.0, 30, "linear")[:5] and f.current_lr == f.lrs[-1]


def test_smoothing_and_raw_losses_match_a_reference_loop():
    a, beta, start, end, n = 2.0, 0.9, 1e-3, 0.5, 40
    model, criterion, batch = quadratic(a, dtype=torch.float64)
    f = LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), criterion, batch, start_lr=start, end_lr=end,
                 num_iter=n, beta=beta, diverge_factor=None)
    f.run()
    # raw loss of step i = the batch loss BEFORE the update at lr_i; then w -= lr_i * dloss/dw
    w, raw = 1.0, []
    for i, lr in enumerate(lr_schedule(start, end, n)):
        y = batch(i)[1].flatten().tolist()
        raw.append(0.5 * a * sum((w - v) ** 2 for v in y) / len(y))
        w -= lr * a * sum(w - v for v in y) / len(y)
    assert f.losses == pytest.approx(raw, rel=1e-12)
    avg, ref = 0.0, []
    for i, loss in enumerate(f.losses):
        avg = beta * avg + (1 - beta) * loss
        ref.append(avg / (1 - beta ** (i + 1)))
    assert f.smoothed == ref and smooth(f.losses, beta) == ref
    assert [p.step for p in f.points] == list(range(n))
    assert model.weight.item() == 1.0  # restored


def test_validation_mode_records_the_held_out_loss_after_each_step():
    a, start, end = 1.0, 1e-2, 1.0
    model, criterion, batch = quadratic(a, dtype=torch.float64)
    val = [(torch.ones(4, 1, dtype=torch.float64), torch.tensor([[0.5], [0.1], [-0.2], [0.3]], dtype=torch.float64)),
           (torch.ones(2, 1, dtype=torch.float64), torch.tensor([[1.0], [-1.0]], dtype=torch.float64))]
    f = LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), criterion, batch, start_lr=start, end_lr=end,
                 num_iter=10, val_batches=val, diverge_factor=None)
    f.run()
    w, ref = 1.0, []
    ys = [v for _, y in val for v in y.flatten().tolist()]
    for i, lr in enumerate(lr_schedule(start, end, 10)):
        yb = batch(i)[1].flatten().tolist()
        w -= lr * a * sum(w - v for v in yb) / len(yb)
        ref.append(0.5 * a * sum((w - v) ** 2 for v in ys) / len(ys))  # mean over all 6 held-out samples
    assert f.losses == pytest.approx(ref, rel=1e-12)


# --- stops ---------------------------------------------------------------------------------------------------

def test_divergence_stops_early_with_the_reason_and_only_finite_points():
    f = quad_finder(a=1.0, start=1e-3, end=100.0)
    f.run()
    assert f.done and f.stop_reason == "smoothed loss exceeded 4× the best"
    assert 0 < len(f.points) < 100 and f.lrs[-1] > 2.0  # SGD diverges above 2/a
    assert all(math.isfinite(v) for v in f.losses + f.smoothed)
    sm = f.smoothed
    assert sm[-1] > 4 * min(sm)
    assert all(sm[j] <= 4 * min(sm[:j + 1]) for j in range(len(sm) - 1))  # it did not stop later than it should
    assert f.step(5) == [] and f.progress == 1.0


def test_non_finite_losses_are_cut_off():
    model, criterion, batch = quadratic(1.0)

    def bad_batch(i):
        x, y = batch(i)
        return (x, torch.full_like(y, math.nan)) if i == 7 else (x, y)

    f = LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), criterion, bad_batch, start_lr=1e-3,
                 end_lr=1e-2, num_iter=20)
    f.step(5)
    assert len(f.step(10)) == 2  # steps 5 and 6; step 7's NaN ends the test
    assert f.stop_reason == NON_FINITE and len(f.points) == 7
    assert all(math.isfinite(v) for v in f.losses + f.smoothed)
    assert model.weight.item() == 1.0

    f = quad_finder(start=1.0, end=1e30, diverge_factor=None)  # overflows to inf without the early stop
    f.run()
    assert f.stop_reason == NON_FINITE and all(math.isfinite(v) for v in f.losses + f.smoothed)


# --- restoration ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
@pytest.mark.parametrize("ending", ["end", "diverged", "exception", "first-step exception", "close", "reset"])
def test_model_optimizer_and_grads_come_back_bit_identical(opt_name, ending):
    model, opt = trained(opt_name)
    before = snapshot(model, opt)
    rng_before = torch.get_rng_state()

    def batch(i):
        if ending in ("exception", "first-step exception") and i == (5 if ending == "exception" else 0):
            raise RuntimeError("disk on fire")
        return net_batch(i)

    end = 1e3 if ending == "diverged" else 1e-2
    f = LRFinder(model, opt, nn.CrossEntropyLoss(), batch, start_lr=1e-4, end_lr=end, num_iter=40, seed=3)
    if ending == "exception":
        with pytest.raises(RuntimeError, match="disk on fire"):
            f.run()
        assert f.done and f.stop_reason == "failed: RuntimeError: disk on fire" and len(f.points) == 5
    elif ending == "first-step exception":  # the param groups' lr was already set: it must come back too
        with pytest.raises(RuntimeError, match="disk on fire"):
            f.step()
        assert f.done and f.points == []
    elif ending == "close":
        f.step(7)
        f.close()
        assert f.done and "closed" in f.stop_reason
    elif ending == "reset":
        f.step(7)
        f.reset()
        assert not f.done and f.points == [] and f.stop_reason == ""
    else:
        f.run()
        expected = [REACHED_END] if ending == "end" else ["smoothed loss exceeded 4× the best", NON_FINITE]
        assert f.stop_reason in expected and (len(f.points) == 40) == (ending == "end")
    assert_same(snapshot(model, opt), before)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is untouched (dropout used its own)


# --- determinism ---------------------------------------------------------------------------------------------

def test_steps_in_chunks_equal_one_run_and_reset_repeats_it(synthetic):
    cfg = tiny_config()  # 100 images at batch 16: 7 batches an epoch, so 100 steps cycle 15 epochs
    one = LRFinder.from_config(cfg, synthetic, start_lr=1e-5, end_lr=1e-1, num_iter=100, diverge_factor=None)
    one.run()
    chunks = LRFinder.from_config(cfg, synthetic, start_lr=1e-5, end_lr=1e-1, num_iter=100, diverge_factor=None)
    for _ in range(10):
        assert len(chunks.step(10)) == 10
    assert one.stop_reason == chunks.stop_reason == REACHED_END
    assert chunks.losses == one.losses and chunks.smoothed == one.smoothed and chunks.lrs == one.lrs
    first = one.losses
    torch.manual_seed(123)  # the global RNG state must not matter
    one.reset()
    one.step(33)
    one.run()
    assert one.losses == first
    other = LRFinder.from_config(cfg, synthetic, start_lr=1e-5, end_lr=1e-1, num_iter=10, seed=1)
    other.run()
    assert other.losses != first[:10]


def test_from_config_sees_what_training_would_see(synthetic):
    """Step 0's loss (before any update) and step 1's (after one update at start_lr) equal the engine's first two
    per-step losses for a run at a constant lr = start_lr: same weights, batches, augmentation and dropout."""
    from core.train import events as ev
    from core.train.engine import train

    cfg = tiny_config(optim=OptimConfig(name="adam", lr=1e-3), epochs=1, log_every=1, seed=2)
    steps = [e for e in train(cfg, dataset=synthetic) if isinstance(e, ev.Step)]
    f = LRFinder.from_config(cfg, synthetic, start_lr=1e-3, end_lr=1.0, num_iter=10)
    f.step(2)
    assert f.losses == [s.loss for s in steps[:2]]


def test_a_finder_continues_in_another_thread_like_a_streamlit_rerun(synthetic):
    import threading

    rng = torch.get_rng_state()
    cfg = tiny_config()
    ref = LRFinder.from_config(cfg, synthetic, start_lr=1e-5, end_lr=1e-1, num_iter=24, diverge_factor=None)
    ref.run()
    f = LRFinder.from_config(cfg, synthetic, start_lr=1e-5, end_lr=1e-1, num_iter=24, diverge_factor=None)
    for _ in range(3):  # each "rerun" steps the same object from a fresh thread
        t = threading.Thread(target=f.step, args=(8,))
        t.start()
        t.join()
    assert f.done and f.losses == ref.losses
    assert torch.equal(torch.get_rng_state(), rng)  # building and stepping left the global RNG alone


def test_train_batches_are_the_engines_and_any_index_gives_the_same_batch(synthetic):
    ds = synthetic
    aug_cfg = AugmentConfig(flip_p=0.5, crop_padding=3, brightness=0.2)
    x, y = ds.train_x[:50], ds.train_y[:50]
    mean, std = ds.mean, ds.std
    seq = TrainBatches(x, y, 16, aug_cfg, mean, std, seed=5)  # 50 images, 16 per batch: 4 batches (2 in the last)
    assert seq.steps_per_epoch == 4
    in_order = [seq(i) for i in range(10)]
    jumpy = TrainBatches(x, y, 16, aug_cfg, mean, std, seed=5)
    for i in (7, 2, 9, 0, 5, 6):
        xb, yb = jumpy(i)
        assert torch.equal(xb, in_order[i][0]) and torch.equal(yb, in_order[i][1])
    # the engine's recipe for epoch 1, batch 1: its permutation and its augmentation generator continued
    from core.data import augment as aug
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(5 * PERM_SEED_STRIDE + 1))
    gen = aug.make_generator(5 * PERM_SEED_STRIDE + AUG_SEED_OFFSET + 1)
    aug.train_batch(x[perm[:16]], aug_cfg, gen, mean, std)
    assert torch.equal(in_order[1][0], aug.train_batch(x[perm[16:32]], aug_cfg, gen, mean, std))


# --- suggestions ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a", [1.0, 100.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_suggestions_land_in_the_known_good_range(a, seed):
    f = quad_finder(a=a, seed=seed)  # LR from 1e-4/a to 10/a
    f.run()
    assert f.stop_reason == "smoothed loss exceeded 4× the best"
    for name, s in f.suggestions().items():
        assert s.lr is not None, (name, s.reason)
        assert 1 / (20 * a) <= s.lr <= 1 / a, (name, s.lr * a)
        assert min(f.smoothed) <= s.loss <= max(f.smoothed) and s.reason
    rec = recommend(f.lrs, f.smoothed, losses=f.losses, beta=f.beta, num_iter=f.num_iter, stop_reason=f.stop_reason)
    assert rec.lr is not None and 1 / (20 * a) <= rec.lr <= 1 / a, (rec.lr * a, rec.reason)


def test_suggestion_definitions_on_a_hand_made_curve():
    lrs = lr_schedule(1e-4, 1.0, 41)  # 10 points a decade
    drops = {i: 0.1 for i in range(10, 30)} | {20: 0.2, 21: 0.6, 22: 0.3}  # the fastest fall: around index 21
    sm = [3.0] * 10
    for i in range(10, 30):
        sm.append(sm[-1] - drops[i])
    sm[15] = sm[14] + 0.01  # a bump: the falling run 9..29 becomes 9..14 and 15..29
    sm += [sm[29] + 0.5 * k for k in range(1, 12)]  # lowest at 29, then up
    s = suggest(lrs, sm, skip_start=2, skip_end=2)
    assert list(s) == list(SUGGESTIONS)
    assert s["minimum/10"].lr == pytest.approx(lrs[29] / 10, rel=1e-15)
    assert s["minimum/10"].loss == pytest.approx(sm[19], rel=1e-9)  # a tenth = one decade = 10 points back
    central = [(sm[i + 1] - sm[i - 1]) / 2 for i in range(3, 29)]  # np.gradient inside, per point
    assert 3 + central.index(min(central)) == 21 and s["steepest"].lr == lrs[21]
    assert s["steepest"].loss == pytest.approx(sm[21], rel=1e-12)
    # longest strictly falling run up to the minimum: 15..29 (15 points); two thirds along = 15 + 2 * 14 // 3 = 24
    assert s["descent 2/3"].lr == lrs[24] and "15 falling points" in s["descent 2/3"].reason
    assert s["descent 2/3"].loss == pytest.approx(sm[24], rel=1e-12)


def test_no_suggestion_for_flat_rising_or_short_curves():
    lrs = lr_schedule(1e-5, 1.0, 30)
    for curve, words in (([1.0 + 0.01 * i for i in range(30)], "never falls"),
                         ([2.0 - 0.0001 * i for i in range(30)], "falls only"),
                         ([1.0] * 30, "never falls")):
        for s in suggest(lrs, curve).values():
            assert s.lr is None and s.loss is None and words in s.reason
    for n in (0, 1, MIN_POINTS):
        for s in suggest(lrs[:n], [3.0 - 0.1 * i for i in range(n)]).values():
            assert s.lr is None and "too few points" in s.reason
    f = quad_finder(num_iter=20)
    f.step(4)
    assert all(s.lr is None for s in f.suggestions().values())


# --- from_config, schedule, CLI ------------------------------------------------------------------------------

@pytest.mark.parametrize("model,opt,val", [
    (ModelConfig("mlp", {"hidden": (32,), "dropout": 0.1}), OptimConfig(name="adam", weight_decay=1e-4), False),
    (TINY_CNN, OptimConfig(name="sgd", momentum=0.9, nesterov=True), True),
    (ModelConfig("cnn", {"widths": (4, 8), "fc": 0, "batch_norm": True, "pool_after": (1, 2)}),
     OptimConfig(name="adamw", label_smoothing=0.1), False),
    (ModelConfig("resnet9", {"width": 4}), OptimConfig(name="sgd", momentum=0.9), False),
])
def test_from_config_builds_like_the_engine_and_restores(synthetic, model, opt, val):
    cfg = tiny_config(model=model, optim=opt, seed=4)
    f = LRFinder.from_config(cfg, synthetic, start_lr=1e-4, end_lr=1.0, num_iter=12, val_mode=val, val_batches=2)
    torch.manual_seed(4)
    fresh = build_for_config(cfg, 10)
    assert_same({k: v.contiguous() for k, v in f.model.state_dict().items()}, dict(fresh.state_dict()))
    assert type(f.optimizer).__name__ == {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}[opt.name]
    group = f.optimizer.param_groups[0]
    assert group["weight_decay"] == opt.weight_decay and group.get("nesterov", False) == opt.nesterov
    assert f.criterion.label_smoothing == opt.label_smoothing
    assert (f.val_batches is not None) == val and (not val or sum(len(y) for _, y in f.val_batches) == 32)
    f.run()
    assert len(f.points) == 12 and all(math.isfinite(v) for v in f.losses)
    assert f.losses[0] == pytest.approx(math.log(10), rel=0.3)  # ten classes, untrained
    assert_same({k: v.contiguous() for k, v in f.model.state_dict().items()}, dict(fresh.state_dict()))
    assert f.optimizer.state_dict()["state"] == {}


def test_schedule_for_suggestion_peaks_at_the_lr():
    cfg = tiny_config(epochs=4)
    new = schedule_for_suggestion(cfg, 3e-3)
    assert new.optim.lr == 3e-3 and new.optim.schedule == "onecycle" and new.model == cfg.model
    curve = schedule_curve(new.optim, 10, 4)
    assert max(curve) == pytest.approx(3e-3) and curve[0] < 3e-3 / 10
    assert schedule_for_suggestion(cfg, 1e-2, "cosine").optim.schedule == "cosine"
    with pytest.raises(ConfigError, match="no suggested learning rate"):
        schedule_for_suggestion(cfg, None)


@pytest.mark.parametrize("bad", [dict(start_lr=1.0, end_lr=0.1), dict(num_iter=1), dict(mode="cubic"),
                                 dict(beta=1.0), dict(diverge_factor=0.5), dict(start_lr=0.0)])
def test_bad_settings_are_config_errors(bad):
    model, criterion, batch = quadratic(1.0)
    with pytest.raises(ConfigError):
        LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), criterion, batch, **bad)


CLI = ["lr-find", "--dataset", "synthetic", "--subset", "200", "--num-iter", "20", "--device", "cpu",
       "--batch-size", "16", "--set", "model.widths=[4,4,8,8]", "--set", "model.fc=16"]


def test_cli_json_prints_one_object_with_the_curve_and_suggestions(capsys):
    assert main([*CLI, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    d = json.loads(out[0])
    assert {"lrs", "losses", "raw_losses", "suggestions", "stop_reason", "seconds"} <= set(d)
    assert d["lrs"] == lr_schedule(1e-7, 10.0, 20)[:len(d["lrs"])] and len(d["losses"]) == len(d["raw_losses"])
    assert d["losses"] == smooth(d["raw_losses"], 0.98)
    assert set(d["suggestions"]) == set(SUGGESTIONS) | set(FASTAI)
    for s in d["suggestions"].values():
        assert (s["lr"] is None or s["lr"] > 0) and s["reason"]
    rec = recommend(d["lrs"], d["losses"], losses=d["raw_losses"], beta=0.98, num_iter=20, stop_reason=d["stop_reason"])
    assert d["recommended"] == {"name": rec.name, "lr": rec.lr, "reason": rec.reason, "advice": rec.advice}
    assert d["recommended"]["reason"]
    assert d["stop_reason"] and d["seconds"] > 0


def test_cli_text_and_errors(capsys):
    assert main(CLI) == 0
    out = capsys.readouterr().out
    assert "suggestions" in out and "steepest" in out and "fastai valley" in out and "(lr, log scale)" in out
    assert "recommended: " in out
    assert main([*CLI, "--start-lr", "1", "--end-lr", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "start_lr (1) must be smaller than end_lr (0.1)" in err


def test_out_of_memory_becomes_a_lab_error_after_restoring():
    from core.errors import LabError

    model, opt = trained("adam")
    before = snapshot(model, opt)

    def batch(i):
        if i == 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return net_batch(i)

    f = LRFinder(model, opt, nn.CrossEntropyLoss(), batch, num_iter=10)
    with pytest.raises(LabError, match="out of memory on cpu during the range test: try a smaller batch size"):
        f.run()
    assert f.done and f.stop_reason.startswith("failed: RuntimeError: CUDA out of memory")
    assert_same(snapshot(model, opt), before)
