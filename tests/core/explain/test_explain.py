"""core/explain/attribution.py, sanity.py, features.py: attributions against models whose answer is known,
the eval-mode/BatchNorm guard, the cascading-randomization check, filters, feature maps and predictions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from core.data.augment import normalize
from core.data.dataset import Dataset
from core.errors import ConfigError, LabError
from core.explain.attribution import attribute, display_map, gaussian_blur, ig_baseline
from core.explain.features import (
    CoarseMap,
    class_probs,
    coarse_map,
    feature_maps,
    first_layer_filters,
    fresh_model,
    layer_filters,
    load_run_model,
    predict,
    scale_per_filter,
    top_superclasses,
)
from core.explain.sanity import (
    SanityStep,
    average_ranks,
    judge,
    randomization_units,
    rank_correlation,
    sanity_check,
    ssim,
)
from core.models.catalog import build_model

MEAN, STD = (0.5, 0.45, 0.4), (0.25, 0.24, 0.26)
FAST = {"saliency": {}, "ig": {"n_steps": 4}, "smoothgrad": {"nt_samples": 3}, "gradcam": {},
        "occlusion": {"window": 8, "stride": 8}}
FAMILIES = {"cnn": {"widths": (4, 8), "pool_after": (1, 2), "fc": 16}, "resnet9": {"width": 4},
            "resnet18": {}, "resnet18_imagenet": {"weights": None, "image_size": 64}, "mlp": {"hidden": (32,)}}




def image(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def model(name: str, **options) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, 10, **{**FAMILIES.get(name, {}), **options}).eval()


def state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def same_state(m: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    now = m.state_dict()
    return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in before)


# --- every method on every family ------------------------------------------------------------------------------

@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_method_gives_a_finite_display_map_for_the_predicted_class(family):
    m = model(family)
    img = image()
    with torch.no_grad():
        predicted = int(m(normalize(img[None], MEAN, STD)).argmax())
    for method, options in FAST.items():
        if family == "mlp" and method == "gradcam":
            with pytest.raises(LabError, match="no convolution layers.*choose a convolutional model"):
                attribute(m, img, MEAN, STD, method)
            continue
        a = attribute(m, img, MEAN, STD, method, **options)
        assert a.method == method and a.target == predicted and 0 < a.target_prob < 1
        assert a.map.shape == (32, 32) and a.map.dtype == torch.float32
        assert torch.isfinite(a.map).all() and torch.isfinite(a.raw).all()
        assert float(a.map.min()) >= 0 and float(a.map.max()) == pytest.approx(1.0), (family, method)
        assert a.raw.shape == ((32, 32) if method == "gradcam" else (3, 32, 32))
        assert a.seconds >= 0


def test_mlp_has_no_feature_maps_or_filters_and_says_so():
    m = model("mlp")
    for call in (lambda: feature_maps(m, image(), MEAN, STD), lambda: first_layer_filters(m),
                 lambda: layer_filters(m, "fc1")):
        with pytest.raises(LabError, match="no convolution layers"):
            call()


def test_unknown_method_option_and_target_are_clear_errors():
    m = model("cnn")
    with pytest.raises(ConfigError, match="unknown attribution method 'lime'.*saliency"):
        attribute(m, image(), MEAN, STD, "lime")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) for ig: steps; .*n_steps=32"):
        attribute(m, image(), MEAN, STD, "ig", steps=5)
    with pytest.raises(ConfigError, match="n_steps must be a whole number >= 1"):
        attribute(m, image(), MEAN, STD, "ig", n_steps=0)
    with pytest.raises(LabError, match=r"class index in 0\.\.9, got 10"):
        attribute(m, image(), MEAN, STD, "saliency", target=10)
    with pytest.raises(ConfigError, match="no layer 'nope'"):
        attribute(m, image(), MEAN, STD, "gradcam", layer="nope")
    with pytest.raises(ConfigError, match="window .* larger than the image"):
        attribute(m, image(), MEAN, STD, "occlusion", window=40)


# --- models whose answer is known --------------------------------------------------------------------------------

def left_half_model() -> nn.Module:
    """1×1 convs and 2×2 pools: each cell of the final 8×8 map sees one 4×4 block of pixels. The classifier reads
    only the left half of that map (columns 0..3 = pixel columns 0..15)."""
    m = model("cnn", widths=(4, 4), kernel_size=1, padding=0, pool_after=(1, 2), fc=0)
    with torch.no_grad():
        w = m.classifier.out.weight.view(10, 4, 8, 8)  # (classes, channels, rows, cols) of the flattened map
        w[..., 4:] = 0
    return m


@pytest.mark.parametrize("method", ["saliency", "ig", "smoothgrad", "occlusion"])
def test_pixels_the_model_never_reads_get_exactly_zero(method):
    """Gradient methods: exactly 0 by design (the gradient through a zero weight is an exact 0). Occlusion
    subtracts two forward passes of differently composed batches, whose float rounding differs by CPU (an AMD
    EPYC left 2.2e-8): there the unseen half must be zero to within 1e-5 of the largest attribution the seen half
    gets (~0.06 here), far below what a pixel the model did read would get."""
    m = left_half_model()
    a = attribute(m, image(1), MEAN, STD, method, **FAST[method])
    raw = a.raw.abs().sum(0)  # (32, 32)
    seen, unseen = raw[:, :16], raw[:, 16:]
    assert seen.max() > 1e-3, f"{method}: no attribution on the pixels the classifier reads"
    tol = 1e-5 * seen.max().item() if method == "occlusion" else 0.0
    assert unseen.max().item() <= tol, f"{method}: attribution on pixels the classifier cannot see"
    assert a.map[:, 16:].max().item() <= (1e-5 * a.map.max().item() if method == "occlusion" else 0.0)


def test_gradcam_equals_the_cam_formula_for_a_global_average_pooled_net():
    """With GAP + linear head, ∂y_c/∂A_k(i,j) = w_ck / (h·w), so Grad-CAM is ReLU(Σ_k w_ck A_k / (h·w)) exactly
    (Zhou et al.'s CAM), upsampled bilinearly to the image."""
    m = model("cnn", widths=(4, 6), pool_after=(1,), global_pool=True, fc=0)
    img, target = image(2), 3
    acts = {}
    handle = m.features.relu2.register_forward_hook(lambda mod, args, out: acts.setdefault("A", out.detach()))
    with torch.no_grad():
        m(normalize(img[None], MEAN, STD))
    handle.remove()
    A = acts["A"][0]  # (6, 16, 16)
    w = m.classifier.out.weight[target].detach()  # (6,)
    cam = torch.relu((w[:, None, None] * A).sum(0) / (16 * 16))
    expected = F.interpolate(cam[None, None], size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    a = attribute(m, img, MEAN, STD, "gradcam", target=target)
    assert a.notes["layer"] == "features.relu2"
    assert torch.allclose(a.notes["cam"], cam, atol=1e-6, rtol=1e-5)
    assert torch.allclose(a.raw, expected, atol=1e-6, rtol=1e-5)
    assert torch.allclose(a.map, display_map(expected), atol=1e-5)


def test_gradcam_is_zero_where_the_last_feature_maps_are_zero_up_to_the_upsampling_blur():
    """Grad-CAM weights each channel by its spatially *averaged* gradient, so it is zero where the features are
    zero - not where the classifier does not look. Right half black with mean 0, bias-free 1×1 convs: the last
    maps (16×16 before the final pool) are zero in columns 8..15; bilinear upsampling ×2 blurs by one pixel."""
    m = left_half_model()
    with torch.no_grad():
        m.features.conv1.bias.zero_()
        m.features.conv2.bias.zero_()
    img = image(3)
    img[:, :, 16:] = 0
    a = attribute(m, img, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "gradcam")
    assert torch.all(a.notes["cam"][:, 8:] == 0) and a.notes["cam"][:, :8].sum() > 0
    assert torch.all(a.raw[:, 17:] == 0)
    # the same model on a full image: the right half is not read, yet Grad-CAM lights it up (averaged weights)
    full = attribute(m, image(3), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "gradcam", target=a.target)
    sal = attribute(m, image(3), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "saliency", target=a.target)
    assert full.raw[:, 17:].sum() > 0 and sal.raw[..., 16:].abs().sum() == 0


def test_integrated_gradients_add_up_to_the_score_difference():
    m = model("cnn")
    img = image(4)
    for baseline in ("black", "gray", "blur"):
        a = attribute(m, img, MEAN, STD, "ig", baseline=baseline, n_steps=64)
        x = normalize(img[None], MEAN, STD)
        base = ig_baseline(x, baseline, MEAN, STD, 4.0)
        with torch.no_grad():
            diff = float(m(x)[0, a.target] - m(base)[0, a.target])
        assert a.raw.sum().item() == pytest.approx(diff, abs=2e-3 + 1e-2 * abs(diff)), baseline
        assert a.notes["delta"] < 2e-3 + 1e-2 * abs(diff)


def test_baselines_black_gray_and_blur():
    x = normalize(image(5)[None], MEAN, STD)
    black = ig_baseline(x, "black", MEAN, STD)
    assert torch.allclose(black[0, :, 0, 0], torch.tensor([-m / s for m, s in zip(MEAN, STD)]), atol=1e-6)
    assert torch.equal(ig_baseline(x, "gray", MEAN, STD), torch.zeros_like(x))
    blur = gaussian_blur(x, 4.0)
    assert blur.shape == x.shape and blur.std() < x.std()
    flat = torch.full((1, 3, 32, 32), 0.7)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat, atol=1e-6)  # a blur keeps a constant image


# --- the model is left exactly as it was ------------------------------------------------------------------------

@pytest.mark.parametrize("method", list(FAST))
def test_attribution_runs_in_eval_mode_and_leaves_modes_stats_and_grads_as_they_were(method):
    m = model("resnet9")
    m.train()
    m.prep.conv.weight.requires_grad_(False)  # a mixed requires_grad pattern must come back as it was
    grads = {n: p.requires_grad for n, p in m.named_parameters()}
    before = state(m)
    seen = []
    hooks = [mod.register_forward_pre_hook(lambda mod, args: seen.append(mod.training)) for mod in m.modules()]
    attribute(m, image(), MEAN, STD, method, **FAST[method])
    for h in hooks:
        h.remove()
    assert seen and not any(seen), "some module ran in training mode during the attribution"
    assert same_state(m, before), "running statistics (or weights) changed"
    assert m.training and all(mod.training for mod in m.modules())
    assert {n: p.requires_grad for n, p in m.named_parameters()} == grads
    assert all(p.grad is None for p in m.parameters())


def test_frozen_backbone_modes_come_back_exactly_and_eval_models_stay_in_eval():
    m = model("resnet18_imagenet", freeze_backbone=True)
    m.train()  # the backbone's BN stays in eval (FrozenBackboneMixin), the rest trains
    modes = [mod.training for mod in m.modules()]
    assert True in modes and False in modes
    before = state(m)
    for method, options in FAST.items():
        attribute(m, image(), MEAN, STD, method, **options)
    feature_maps(m, image(), MEAN, STD)
    predict(m, image(), MEAN, STD, [str(i) for i in range(10)])
    assert [mod.training for mod in m.modules()] == modes and same_state(m, before)
    e = model("resnet9")
    attribute(e, image(), MEAN, STD, "gradcam")
    assert not any(mod.training for mod in e.modules())


def test_progress_counts_forward_images_and_raising_aborts_cleanly():
    m = model("cnn")
    calls = []
    attribute(m, image(), MEAN, STD, "ig", n_steps=10, internal_batch_size=4, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (12, 12) and all(t == 12 for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) >= 4  # 3 chunks + delta + end
    calls.clear()
    attribute(m, image(), MEAN, STD, "occlusion", window=8, stride=8, internal_batch_size=5,
              progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (17, 17)  # 16 windows + the unoccluded image

    def stop(done, total):
        if done > 0:
            raise KeyboardInterrupt

    m.train()
    with pytest.raises(KeyboardInterrupt):
        attribute(m, image(), MEAN, STD, "smoothgrad", nt_samples=8, internal_batch_size=2, progress=stop)
    assert m.training and all(p.requires_grad for p in m.parameters())


# --- sanity check -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_tiny_cnn(tmp_path_factory):
    """A tiny cnn trained for four epochs on the synthetic patterns (well above chance), its test image and stats."""
    from core.data.loading import load
    from core.train.engine import train
    from core.train.setup import input_stats

    cfg = TrainConfig(data=DataConfig(dataset="synthetic", subset=1000, test_subset=100),
                      model=ModelConfig("cnn", {"widths": (8, 16), "pool_after": (1, 2), "fc": 32}),
                      optim=OptimConfig(name="adam", lr=3e-3), batch_size=50, epochs=4, device="cpu", log_every=100)
    folder = tmp_path_factory.mktemp("tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    events = list(train(cfg, checkpoint_dir=folder))
    torch.set_num_threads(threads)
    assert events[-1].status == "completed" and events[-1].test_acc > 0.4
    rm = load_run_model(folder / "last.pt")
    ds = load(cfg.data, seed=cfg.seed)
    assert (rm.mean, rm.std) == input_stats(cfg, ds)
    return rm.model, ds.test_x[0], rm.mean, rm.std


def test_cascading_randomization_breaks_the_gradient_map_and_leaves_the_model_alone(trained_tiny_cnn):
    m, img, mean, std = trained_tiny_cnn
    before = state(m)
    units = randomization_units(m)
    assert [u for u, _ in units] == ["classifier.fc2", "classifier.fc1", "features.conv2", "features.conv1"]
    r = sanity_check(m, img, mean, std, "saliency")
    assert same_state(m, before)
    assert len(r) == 5 and r[0].rank_corr == pytest.approx(1.0, abs=1e-9) and r[0].layer == "" and r[0].randomized == ()
    assert [s.layer for s in r][1:] == [u for u, _ in units]
    assert r[-1].randomized == tuple(u for u, _ in units)
    assert r[-1].rank_corr < 0.5, [s.rank_corr for s in r]
    assert not r.flag and "passes" in r.verdict
    assert all(s.map.shape == (32, 32) for s in r)


def test_resnet_units_are_stages_top_down_with_the_stem_last():
    assert [u for u, _ in randomization_units(model("resnet18"))] == ["fc", "layer4", "layer3", "layer2", "layer1",
                                                                      "conv1"]
    assert dict(randomization_units(model("resnet18")))["conv1"] == ("conv1", "bn1")
    assert [u for u, _ in randomization_units(model("resnet9"))] == ["fc", "layer3", "layer2", "layer1", "prep"]
    with pytest.raises(LabError, match="no layer.*'nope'.*randomizes: fc, layer3"):
        sanity_check(model("resnet9"), image(), MEAN, STD, "saliency", layers=["nope"])


def test_judge_flags_a_map_that_survives_randomization():
    m = torch.rand(32, 32)

    def steps(*corrs):
        return [SanityStep(i, f"l{i}" if i else "", (), m, c, c, 0.1) for i, c in enumerate(corrs)]

    flag, verdict = judge("saliency", steps(1.0, 0.95, 0.9))
    assert flag and "does not depend on what the network learned" in verdict and "edge detector" in verdict
    flag, verdict = judge("gradcam", steps(1.0, 0.3, 0.1))
    assert not flag and "already after randomizing l1" in verdict and "passes" in verdict
    flag, verdict = judge("ig", steps(1.0, 0.7, 0.6))
    assert not flag and "only partly" in verdict


def test_rank_correlation_and_ssim():
    a = torch.tensor([1.0, 2.0, 2.0, 3.0])
    assert average_ranks(a).tolist() == [0.0, 1.5, 1.5, 3.0]
    b = torch.tensor([1.0, 3.0, 2.0, 4.0])
    # Pearson of ranks [0, 1.5, 1.5, 3] and [0, 2, 1, 3]: cov 4.5, variances 4.5 and 5
    assert rank_correlation(a, b) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    x = torch.rand(16, 16, generator=torch.Generator().manual_seed(0))
    assert rank_correlation(x, x ** 3) == pytest.approx(1.0)
    assert rank_correlation(x, -x) == pytest.approx(-1.0)
    assert rank_correlation(x, torch.zeros(16, 16)) == 0.0
    assert rank_correlation(torch.zeros(4), torch.zeros(4)) == 1.0
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, 1 - x) < 0


# --- filters, feature maps, predictions, model sources ----------------------------------------------------------

def test_filters_are_scaled_per_filter_and_keep_the_weights_order():
    m = model("cnn")
    f = first_layer_filters(m)
    w = m.features.conv1.weight.detach()
    assert f.shape == (4, 3, 3, 3)
    flat = f.reshape(4, -1)
    assert torch.allclose(flat.min(1).values, torch.zeros(4)) and torch.allclose(flat.max(1).values, torch.ones(4))
    assert torch.equal(flat.argmax(1), w.reshape(4, -1).argmax(1))
    assert layer_filters(m, "features.conv2").shape == (8, 4, 3, 3)
    with pytest.raises(LabError, match="not a conv layer.*features.conv1, features.conv2"):
        layer_filters(m, "classifier.fc1")


def test_scale_per_filter_stretches_each_filter_on_its_own():
    w = torch.tensor([[[[1.0, 3.0], [5.0, 9.0]]],       # filter 0: min 1, max 9
                      [[[-2.0, -2.0], [-2.0, -2.0]]],   # filter 1: constant -> 0.5
                      [[[0.0, -4.0], [4.0, 2.0]]]], dtype=torch.float64)
    s = scale_per_filter(w)
    assert s.dtype == torch.float32 and s.shape == w.shape
    expected = torch.tensor([[0.0, 0.25, 0.5, 1.0], [0.5] * 4, [0.5, 0.0, 1.0, 0.75]])
    assert torch.allclose(s.reshape(3, -1), expected, atol=1e-6)
    m = model("cnn")  # what the filters page draws as "what training added": a difference of weights
    change = m.features.conv1.weight.detach() * 3 - 1
    assert torch.allclose(scale_per_filter(change), first_layer_filters(m), atol=1e-6)  # affine-invariant


def test_feature_maps_are_the_most_active_channels_of_each_layer():
    m = model("cnn")
    img = image(6)
    fms = feature_maps(m, img, MEAN, STD, top=3)
    assert [f.layer for f in fms] == ["features.relu1", "features.relu2"]
    acts = {}
    hooks = [getattr(m.features, n).register_forward_hook(lambda mod, a, o, n=n: acts.setdefault(n, o.detach()))
             for n in ("relu1", "relu2")]
    with torch.no_grad():
        m(normalize(img[None], MEAN, STD))
    for h in hooks:
        h.remove()
    relu2 = acts["relu2"][0]  # (8, 16, 16)
    f = fms[1]
    assert f.shape == (8, 16, 16) and f.maps.shape == (3, 16, 16)
    expected = torch.argsort(relu2.mean((1, 2)), descending=True)[:3]
    assert f.channels == tuple(expected.tolist())
    assert list(f.means) == sorted(f.means, reverse=True)
    shown = relu2[expected]
    assert torch.allclose(f.maps, (shown - shown.min()) / (shown.max() - shown.min()), atol=1e-6)
    assert [f.layer for f in feature_maps(model("resnet18"), img, MEAN, STD, top=2)] == \
        ["relu", "layer1", "layer2", "layer3", "layer4"]
    with pytest.raises(LabError, match="no layer.*'classifier.nope'"):
        feature_maps(m, img, MEAN, STD, layers=["classifier.nope"])


def test_predict_top_k_with_superclasses():
    m = model("cnn")
    classes = [f"c{i}" for i in range(10)]
    coarse = CoarseMap(("even", "odd"), tuple(i % 2 for i in range(10)))
    img = image(7)
    probs = class_probs(m, img, MEAN, STD)[0]
    top = predict(m, img, MEAN, STD, classes, coarse, k=3)
    expected = torch.argsort(probs, descending=True)[:3].tolist()
    assert [g.name for g in top] == [classes[i] for i in expected]
    assert [g.prob for g in top] == pytest.approx(probs[expected].tolist())
    assert [g.superclass for g in top] == [("even", "odd")[i % 2] for i in expected]
    name, prob, _ = top[0]
    sup = top_superclasses(m, img, MEAN, STD, coarse, k=2)
    assert sum(p for _, p in sup) == pytest.approx(1.0, abs=1e-5)
    assert dict(sup)["even"] == pytest.approx(float(probs[0::2].sum()), abs=1e-6)
    batch = predict(m, torch.stack([img, image(8)]), MEAN, STD, classes, k=2)
    assert len(batch) == 2 and [g.name for g in batch[0]] == [g.name for g in top[:2]]


def test_coarse_map_is_read_off_the_dataset_pairs():
    x = torch.zeros(6, 3, 32, 32, dtype=torch.uint8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    ds = Dataset("toy", x, y, x[:2], y[:2], ("a", "b", "c"), (0.5,) * 3, (0.2,) * 3, ("first", "second"),
                 torch.tensor([1, 0, 1, 1, 0, 1]), torch.tensor([1, 0]))
    assert coarse_map(ds) == CoarseMap(("first", "second"), (1, 0, 1))
    bad = Dataset("toy", x, y, x[:2], y[:2], ("a", "b", "c"), (0.5,) * 3, (0.2,) * 3, ("first", "second"),
                  torch.tensor([1, 0, 1, 0, 0, 1]), torch.tensor([1, 0]))
    with pytest.raises(LabError, match="'a' is listed under two superclasses"):
        coarse_map(bad)


def test_fresh_model_is_the_runs_starting_point_and_leaves_the_global_rng_alone():
    cfg = TrainConfig(model=ModelConfig("cnn", FAMILIES["cnn"]), seed=3)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = fresh_model(cfg, 10)
    assert torch.equal(torch.rand(3), expected_next)
    torch.manual_seed(3)  # what core.train.engine.train does before building the model
    b = build_model("cnn", 10, **FAMILIES["cnn"])
    assert same_state(a, state(b)) and not a.training
