"""Saliency maps with Captum: which pixels of one image made the model say what it said.

`attribute(model, image_u8, mean, std, method, target=None, **options) -> Attribution` for
  saliency    vanilla gradient |∂score/∂pixel|, max over the colour channels (Simonyan et al., 2014)
  ig          Integrated Gradients from a baseline image (black, mean-gray or blurred; Sundararajan et al., 2017)
  smoothgrad  the gradient averaged over noisy copies of the image (NoiseTunnel over Saliency; Smilkov et al.)
  gradcam     Grad-CAM on the layer core.models.last_conv names, ReLU'd and upsampled bilinearly to the image
  occlusion   how much the score drops when a window is replaced by the dataset's mean colour (0 normalized)
The score is the target class's logit; target=None explains the predicted class.

Guarantees: the model runs in eval mode and without parameter gradients during an attribution, and every
module's training flag and every parameter's requires_grad are restored exactly afterwards, so BatchNorm
statistics never move and a model that was training keeps training. One attribution (or feature-map pass) per
model runs at a time (a lock per model), because Captum's layer hooks would see another thread's forward pass.
Methods with many forward passes (ig, smoothgrad, occlusion) run in chunks (`internal_batch_size`) so they fit
in memory at 224×224, and report progress(done, total) in images forwarded; raising from `progress` aborts.
Captum itself is imported on first use (it takes seconds to import).

Seconds per image with the default options (one CPU thread of the shared 2-core dev box; median of 3 warm runs):
                      saliency   ig (32)  smoothgrad (16)  gradcam  occlusion 8/4  occlusion 4/2
  cnn (base)            0.01      0.10       0.06           0.01      0.10           0.54
  resnet9               0.05      1.2        0.7            0.03      1.0            5.3
  resnet18 (CIFAR)      0.07      1.3        0.5            0.02      0.8            4.9
  resnet18_imagenet@224 0.30      9.4        3.5            0.16      5.9           25
Two threads on that busy box were 2-10× *slower* (threads waiting for each other): set torch threads to 1 there.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.data import augment as aug
from core.errors import ConfigError, LabError
from core.models.registry import last_conv, unwrap

Progress = Callable[[int, int], None]  # (images forwarded so far, total images)
SIGNS = ("absolute", "positive", "negative")
BASELINES = ("black", "gray", "blur")


@dataclass(frozen=True)
class MethodInfo:
    name: str
    title: str
    description: str  # one line for the UI
    defaults: dict[str, Any]  # its options and their defaults (plus clip_percent, common to all)


METHODS: dict[str, MethodInfo] = {m.name: m for m in [
    MethodInfo("saliency", "Vanilla gradient", "How much each pixel's tiny change moves the class score "
               "(absolute gradient, strongest colour channel).", {}),
    MethodInfo("ig", "Integrated Gradients", "Gradients summed along a straight path from a baseline image to "
               "this one; the attributions add up to the score difference.",
               {"baseline": "black", "n_steps": 32, "blur_sigma": 4.0, "sign": "absolute", "internal_batch_size": None}),
    MethodInfo("smoothgrad", "SmoothGrad", "The vanilla gradient averaged over noisy copies of the image: less "
               "speckle.", {"nt_samples": 16, "noise": 0.15, "internal_batch_size": None}),
    MethodInfo("gradcam", "Grad-CAM", "Which regions of the last convolutional feature maps the class relies on "
               "(coarse, upsampled).", {"layer": None}),
    MethodInfo("occlusion", "Occlusion", "How much the class score drops when a square of the image is hidden "
               "(replaced by the mean colour).",
               {"window": 8, "stride": 4, "sign": "positive", "internal_batch_size": None}),
]}
ALIASES = {"integrated_gradients": "ig", "grad-cam": "gradcam", "gradient": "saliency", "smooth_grad": "smoothgrad"}
COMMON_DEFAULTS: dict[str, Any] = {"clip_percent": 0.0}  # % of the strongest pixels saturated in `map` (0 = none)


@dataclass(frozen=True, eq=False)
class Attribution:
    method: str  # one of METHODS
    target: int  # the class explained
    map: torch.Tensor  # (H, W) float32 in [0, 1] on the CPU, for display (1 = most important)
    raw: torch.Tensor  # the method's own values: (3, H, W) per pixel and channel, or (H, W) for gradcam
    seconds: float  # wall time of the attribution itself
    target_prob: float = float("nan")  # the model's softmax probability of `target` for this image
    notes: Mapping[str, Any] = field(default_factory=dict)  # options used and method extras (IG delta, CAM)


# --- guarding the model --------------------------------------------------------------------------------------

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _model_lock(model: nn.Module) -> threading.RLock:
    with _LOCKS_LOCK:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def explaining(model: nn.Module, *, param_grads: bool = False) -> Iterator[nn.Module]:
    """Eval mode (and, unless param_grads, no parameter gradients) for the block, gradients enabled even under
    torch.no_grad(); every module's `training` flag and every parameter's `requires_grad` come back exactly as
    they were, and no other explainer uses the same model meanwhile."""
    with _model_lock(model):
        modes = [(m, m.training) for m in model.modules()]
        grads = [(p, p.requires_grad) for p in model.parameters()]
        model.eval()
        if not param_grads:  # input gradients only: skips every weight-gradient kernel in backward
            for p, _ in grads:
                p.requires_grad_(False)
        try:
            with torch.enable_grad():
                yield model
        finally:
            for m, was in modes:  # set directly: a custom train() (frozen backbones) must not reinterpret it
                m.training = was
            for p, was in grads:
                p.requires_grad_(was)


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def as_batch(image_u8: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, 3, H, W) uint8 -> (1, 3, H, W) uint8. Wrong input is a bug (pictures from outside go
    through core.data.images first), so it raises ValueError, not LabError."""
    if not isinstance(image_u8, torch.Tensor) or image_u8.dtype != torch.uint8:
        raise ValueError(f"expected a uint8 tensor image, got {type(image_u8).__name__} "
                         f"{getattr(image_u8, 'dtype', '')}")
    x = image_u8.unsqueeze(0) if image_u8.dim() == 3 else image_u8
    if x.dim() != 4 or x.shape[:2] != (1, 3):
        raise ValueError(f"expected one RGB image (3, H, W), got shape {tuple(image_u8.shape)}")
    return x


def internal_size(model: nn.Module, image_side: int) -> int:
    """The side the network actually runs at: its Resize size (pretrained models: 224), else the image's."""
    resize = getattr(unwrap(model), "resize", None)
    return int(getattr(resize, "size", image_side) or image_side)


def default_chunk(model: nn.Module, image_side: int) -> int:
    """Images per forward pass for the many-pass methods: 64 at CIFAR size, 8 at 224×224."""
    side = internal_size(model, image_side)
    return max(1, min(64, (8 * 224 * 224) // (side * side)))


@contextmanager
def counting(model: nn.Module, total: int, progress: Progress | None) -> Iterator[None]:
    """Call progress(done, total) before every forward pass of `model` (done = images forwarded so far) and
    progress(total, total) at the end."""
    if progress is None:
        yield
        return
    done = [0]

    def hook(module: nn.Module, args: tuple) -> None:
        progress(min(done[0], total), total)
        if args and isinstance(args[0], torch.Tensor):
            done[0] += int(args[0].shape[0])

    handle = model.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
    progress(total, total)


# --- options --------------------------------------------------------------------------------------------------

def resolve_method(method: str) -> str:
    name = ALIASES.get(str(method).lower(), str(method).lower())
    if name not in METHODS:
        raise ConfigError(f"unknown attribution method {method!r}; choose one of: {', '.join(METHODS)}")
    return name


def _options(method: str, given: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {**METHODS[method].defaults, **COMMON_DEFAULTS}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in allowed.items())
        raise ConfigError(f"unknown option(s) for {method}: {', '.join(unknown)}; its options (defaults) are: {valid}")
    opts = {**allowed, **given}
    for key in ("n_steps", "nt_samples", "window", "stride"):
        if key in opts:
            v = opts[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{key} must be a whole number >= 1, got {v!r}")
    ibs = opts.get("internal_batch_size")
    if ibs is not None and (isinstance(ibs, bool) or not isinstance(ibs, int) or ibs < 1):
        raise ConfigError(f"internal_batch_size must be a whole number >= 1 (or none for automatic), got {ibs!r}")
    for key, lo, hi in (("noise", 0.0, 10.0), ("blur_sigma", 0.1, 100.0), ("clip_percent", 0.0, 50.0)):
        v = opts.get(key)
        if key in opts and (isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi):
            raise ConfigError(f"{key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    if opts.get("sign", "absolute") not in SIGNS:
        raise ConfigError(f"sign must be one of {', '.join(SIGNS)}, got {opts['sign']!r}")
    if opts.get("baseline", "black") not in BASELINES:
        raise ConfigError(f"baseline must be one of {', '.join(BASELINES)}, got {opts['baseline']!r}")
    return opts


# --- the methods ----------------------------------------------------------------------------------------------

def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding (the kernel is cut to fit the image)."""
    radius = min(int(3 * sigma + 0.5), x.shape[-1] - 1, x.shape[-2] - 1)
    if radius < 1:
        return x.clone()
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ig_baseline(x: torch.Tensor, kind: str, mean: Any, std: Any, blur_sigma: float = 4.0) -> torch.Tensor:
    """The IG starting image, in normalized space like x (1, 3, H, W): black pixels, the mean colour (all
    zeros after normalization), or the image blurred (Gaussian, `blur_sigma` pixels)."""
    if kind == "black":
        return aug.normalize(torch.zeros_like(x, dtype=torch.uint8), mean, std)
    if kind == "gray":
        return torch.zeros_like(x)
    return gaussian_blur(x.detach(), blur_sigma)  # normalization is affine per channel, so blurring commutes


def _signed(values: torch.Tensor, sign: str) -> torch.Tensor:
    if sign == "positive":
        return values.clamp(min=0)
    if sign == "negative":
        return (-values).clamp(min=0)
    return values.abs()


def display_map(score: torch.Tensor, clip_percent: float = 0.0) -> torch.Tensor:
    """Non-negative (H, W) -> [0, 1]: divided by its maximum (or by the value above which the top
    clip_percent % of pixels lie, which then saturate). All zeros stays all zeros."""
    score = torch.nan_to_num(score.float(), nan=0.0).clamp(min=0)
    hi = torch.quantile(score.flatten(), 1.0 - clip_percent / 100.0) if clip_percent > 0 else score.max()
    if not hi > 0:
        hi = score.max()
    if not hi > 0:
        return torch.zeros_like(score)
    return (score / hi).clamp(max=1.0)


def _run(model: nn.Module, method: str, x: torch.Tensor, target: int, mean: Any, std: Any, opts: dict[str, Any],
         progress: Progress | None) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(raw, score (H, W) >= 0, notes) for one normalized image x (1, 3, H, W)."""
    from captum.attr import (  # deferred: captum takes seconds to import; only an attribution needs it
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )

    side = x.shape[-1]
    chunk = opts.get("internal_batch_size") or default_chunk(model, side)
    notes: dict[str, Any] = {}
    if method == "saliency":
        raw = Saliency(model).attribute(x, target=target, abs=True)[0]  # (3, H, W) |gradient|
        return raw, raw.amax(0), notes
    if method == "ig":
        base = ig_baseline(x, opts["baseline"], mean, std, opts["blur_sigma"])
        with counting(model, opts["n_steps"] + 2, progress):
            attr, delta = IntegratedGradients(model).attribute(
                x, baselines=base, target=target, n_steps=opts["n_steps"], method="gausslegendre",
                internal_batch_size=chunk, return_convergence_delta=True)
        raw = attr[0].detach()  # (3, H, W) signed; sums to score(x) - score(baseline) up to `delta`
        notes.update(delta=float(delta.abs().max()), total=float(raw.sum()))
        return raw, _signed(raw, opts["sign"]).sum(0), notes
    if method == "smoothgrad":
        stdev = float(opts["noise"]) * float(x.detach().max() - x.detach().min())  # noise level as a fraction of the input range
        notes["stdev"] = stdev
        with counting(model, opts["nt_samples"], progress):
            raw = NoiseTunnel(Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=opts["nt_samples"], nt_samples_batch_size=chunk,
                stdevs=stdev, target=target, abs=True)[0]  # (3, H, W) mean |gradient| over noisy copies
        return raw, raw.amax(0), notes
    if method == "gradcam":
        layer_name = opts["layer"]
        if layer_name is None:
            layer_name, layer = last_conv(model)
        else:
            try:
                layer = unwrap(model).get_submodule(layer_name)
            except AttributeError:
                raise ConfigError(f"the model has no layer {layer_name!r}; Grad-CAM's default is "
                                  f"{last_conv(model)[0]!r}") from None
        cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)  # (1, 1, h, w)
        if cam.dim() != 4:
            raise LabError(f"layer {layer_name!r} does not output feature maps (its output has shape "
                           f"{tuple(cam.shape)}); Grad-CAM needs a convolutional layer")
        up = LayerAttribution.interpolate(cam, (x.shape[-2], x.shape[-1]), interpolate_mode="bilinear")
        notes.update(layer=layer_name, cam=cam[0, 0].detach().cpu())
        raw = up[0, 0]
        return raw, raw, notes
    # occlusion
    window, stride = opts["window"], opts["stride"]
    if window > min(x.shape[-2:]):
        raise ConfigError(f"the occlusion window ({window}) is larger than the image ({x.shape[-1]} pixels)")
    per_side = [(n - window) // stride + 1 for n in x.shape[-2:]]
    notes["windows"] = per_side[0] * per_side[1]
    with torch.no_grad(), counting(model, notes["windows"] + 1, progress):
        raw = Occlusion(model).attribute(x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                                         baselines=0.0, target=target, perturbations_per_eval=chunk)[0]
    return raw, _signed(raw.mean(0), opts["sign"]), notes


def attribute(model: nn.Module, image_u8: torch.Tensor, mean: Any, std: Any, method: str = "saliency",
              target: int | None = None, *, progress: Progress | None = None, **options: Any) -> Attribution:
    """Explain one image: image_u8 (3, H, W) uint8, normalized with mean/std the way the model was trained.

    target None = the predicted class. options: see METHODS[method].defaults, plus clip_percent (display).
    """
    method = resolve_method(method)
    opts = _options(method, options)
    batch = as_batch(image_u8)
    with explaining(model):
        x = aug.normalize(batch.to(model_device(model)), mean, std)  # (1, 3, H, W) float32
        with torch.no_grad():
            logits = model(x)  # (1, num_classes)
        num_classes = logits.shape[-1]
        if target is None:
            target = int(logits.argmax(-1))
        elif isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < num_classes:
            raise LabError(f"target class must be a class index in 0..{num_classes - 1}, got {target!r}")
        prob = float(torch.softmax(logits.float(), -1)[0, target])
        import captum.attr  # noqa: F401 - the first import takes seconds; keep it out of `seconds`

        t0 = time.perf_counter()
        raw, score, notes = _run(model, method, x.requires_grad_(True), target, mean, std, opts, progress)
        seconds = time.perf_counter() - t0
    notes = {**{k: v for k, v in opts.items() if k != "layer" or v is not None}, **notes}
    return Attribution(method, target, display_map(score.detach().cpu(), opts["clip_percent"]),
                       raw.detach().float().cpu(), seconds, prob, notes)
