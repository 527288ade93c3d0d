"""Looking inside a trained model: its predictions, its filters, its feature maps - and, re-exported from the
modules that own them, saliency (attribution.py), the sanity check (sanity.py), where the model errs
(confusion.py) and display helpers (figures.py), all in core/explain/. Pure functions, tensors out, never
Streamlit.

    rm = load_run_model("runs/<id>/best.pt")             # model (eval) + config + classes + mean/std
    predict(rm.model, img, rm.mean, rm.std, rm.classes)   # top-5 [(name, prob, superclass), ...]
    first_layer_filters(rm.model)                         # (out, 3, k, k) in [0, 1]: RGB tiles
    feature_maps(rm.model, img, rm.mean, rm.std)          # per layer: the 16 most active channels
    attribute(rm.model, img, rm.mean, rm.std, "gradcam")  # Attribution(map (H, W) in [0, 1], ...)
    before = fresh_model(rm.config, len(rm.classes))      # the same run's weights before training (same seed)

Images are uint8 (3, 32, 32) as the datasets hold them; the functions normalize them with the run's mean/std.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from core.config import TrainConfig
from core.data import augment as aug
from core.data.dataset import Dataset
from core.errors import DataError, LabError
from core.explain.attribution import (  # noqa: F401 - re-exported API
    METHODS,
    Attribution,
    MethodInfo,
    as_batch,
    attribute,
    explaining,
    model_device,
)
from core.explain.confusion import (  # noqa: F401 - re-exported API
    ConfusedPair,
    coarse_confusion,
    confusion_matrix,
    misclassified,
    most_confused_pairs,
    predict_split,
)
from core.explain.figures import colorize, overlay, tile_grid, upscale  # noqa: F401 - re-exported API
from core.explain.sanity import SanityResult, SanityStep, rank_correlation, sanity_check, ssim  # noqa: F401
from core.models.catalog import build_for_config
from core.models.registry import conv_layers
from core.models.resnet import ResNet, ResNet9
from core.runs.library import open_library
from core.train.checkpoint import load_model
from core.train.files import checkpoint_for

# --- model sources ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RunModel:
    model: nn.Module  # in eval mode
    config: TrainConfig
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # what the run normalized its inputs with (ImageNet's for pretrained models)
    std: tuple[float, ...]
    meta: dict[str, Any]  # the checkpoint's epoch, history, best_acc, ...


def load_run_model(checkpoint_path: str | Path, device: str | torch.device = "cpu") -> RunModel:
    """A run's trained model from its checkpoint (core.train.checkpoint.load_model), plus what explaining it needs."""
    model, config, meta = load_model(checkpoint_path, device)
    if not meta.get("classes") or not meta.get("mean") or not meta.get("std"):
        raise LabError(f"checkpoint {checkpoint_path} lacks its class names or normalization; it was not written "
                       "by this version of CIFAR Lab - train the run again")
    return RunModel(model, config, tuple(meta["classes"]), tuple(meta["mean"]), tuple(meta["std"]), meta)


def fresh_model(config: TrainConfig, num_classes: int, *, seed: int | None = None,
                device: str | torch.device = "cpu") -> nn.Module:
    """The config's model with untrained weights, in eval mode, for before/after contrasts.

    Seeded with config.seed (or `seed`) exactly as core.train.engine.train seeds it, so it holds the very weights the
    run started from. Pretrained models come with random weights here (nothing is downloaded). Torch's global
    random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed if seed is None else seed)
        model = build_for_config(config, num_classes, load_pretrained=False)
    return model.to(device).eval()


def run_checkpoint(run_id: str, runs_dir: str | Path | None = None, which: str = "best") -> Path:
    """The checkpoint file of a library run: best.pt (the best test accuracy) or last.pt; `which="best"` falls
    back to last.pt when the run has no best.pt yet. LabError for an unknown run or one without checkpoints."""
    lib = open_library(runs_dir, recover=False)
    run = lib.get(run_id)
    folder = lib.run_dir(run.id)
    path = checkpoint_for(folder, which)
    if path is not None:
        return path
    raise LabError(f"run {run_id} has no checkpoint in {folder} (status {run.status}): it has not finished an "
                   "epoch yet, or its files were deleted")


# --- predictions ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CoarseMap:
    names: tuple[str, ...]  # superclass names (CIFAR-100: 20)
    fine_to_coarse: tuple[int, ...]  # superclass index of each fine class


def coarse_map(dataset: Dataset) -> CoarseMap | None:
    """The fine -> superclass mapping read off the dataset's (train_y, train_coarse) pairs; None without
    superclasses. DataError if a fine class appears under two superclasses."""
    if dataset.coarse_classes is None or dataset.train_coarse is None:
        return None
    pairs = torch.unique(torch.stack([dataset.train_y, dataset.train_coarse], 1), dim=0)  # (P, 2)
    mapping = [-1] * dataset.num_classes
    for fine, coarse in pairs.tolist():
        if mapping[fine] not in (-1, coarse):
            raise DataError(f"{dataset.name}: class {dataset.classes[fine]!r} is listed under two superclasses; "
                            "the dataset files are inconsistent - delete and reload them")
        mapping[fine] = coarse
    if -1 in mapping:
        return None  # a subset without some fine classes: no complete mapping
    return CoarseMap(tuple(dataset.coarse_classes), tuple(mapping))


class Guess(NamedTuple):
    name: str  # class name
    prob: float  # softmax probability
    superclass: str | None = None  # its superclass (CIFAR-100), when a CoarseMap was given


@torch.no_grad()
def class_probs(model: nn.Module, images_u8: torch.Tensor, mean: Any, std: Any) -> torch.Tensor:
    """Softmax probabilities (B, num_classes) float32 on the CPU for uint8 images (3, H, W) or (B, 3, H, W)."""
    x = images_u8.unsqueeze(0) if images_u8.dim() == 3 else images_u8
    with explaining(model), torch.no_grad():
        logits = model(aug.normalize(x.to(model_device(model)), mean, std))
    return torch.softmax(logits.float(), -1).cpu()


def superclass_probs(probs: torch.Tensor, coarse: CoarseMap) -> torch.Tensor:
    """(B, fine) -> (B, coarse): each superclass gets the summed probability of its fine classes."""
    index = torch.tensor(coarse.fine_to_coarse, dtype=torch.long)
    out = torch.zeros(probs.shape[0], len(coarse.names), dtype=probs.dtype)
    return out.index_add_(1, index, probs)


def predict(model: nn.Module, image_u8: torch.Tensor, mean: Any, std: Any, classes: Sequence[str],
            coarse: CoarseMap | None = None, k: int = 5) -> list[Guess] | list[list[Guess]]:
    """Top-k (name, prob, superclass) for one image (3, H, W), or one such list per image of (B, 3, H, W)."""
    probs = class_probs(model, image_u8, mean, std)
    if probs.shape[1] != len(classes):
        raise LabError(f"the model has {probs.shape[1]} outputs but {len(classes)} class names were given")
    top = torch.topk(probs, min(k, probs.shape[1]), dim=1)
    out = [[Guess(classes[i], float(p), coarse.names[coarse.fine_to_coarse[i]] if coarse else None)
            for p, i in zip(ps.tolist(), idx.tolist(), strict=True)] for ps, idx in zip(top.values, top.indices,
                                                                                     strict=True)]
    return out[0] if image_u8.dim() == 3 else out


def top_superclasses(model: nn.Module, image_u8: torch.Tensor, mean: Any, std: Any, coarse: CoarseMap,
                     k: int = 3) -> list[tuple[str, float]]:
    """Top-k superclasses of one image by summed probability of their fine classes."""
    probs = superclass_probs(class_probs(model, image_u8, mean, std), coarse)[0]
    top = torch.topk(probs, min(k, len(probs)))
    return [(coarse.names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


# --- filters ----------------------------------------------------------------------------------------------------

def scale_per_filter(w: torch.Tensor) -> torch.Tensor:
    """(out, in, k, k) weights - or any tensor with one filter per row of dim 0, such as what training changed
    in them - as float32 on the CPU, min-max scaled to [0, 1] over each filter (all its channels together, so
    an RGB filter keeps its colour); a constant filter (span <= 1e-12) becomes 0.5."""
    w = w.detach().float().cpu()
    flat = w.reshape(w.shape[0], -1)
    lo, hi = flat.min(1).values, flat.max(1).values
    span = (hi - lo).clamp(min=1e-12)
    scaled = (flat - lo[:, None]) / span[:, None]
    scaled[hi - lo <= 1e-12] = 0.5
    return scaled.reshape(w.shape)


def _convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    convs = conv_layers(model)
    if not convs:
        raise LabError(f"{type(model).__name__} has no convolution layers, so it has no filters or feature maps "
                       "to show; choose a convolutional model (cnn, resnet9, resnet18, ...)")
    return convs


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The first conv layer's filters as RGB tiles: (out, 3, k, k) float in [0, 1], scaled per filter."""
    name, conv = _convs(model)[0]
    if conv.weight.shape[1] != 3:
        raise LabError(f"the first conv layer {name} does not read RGB (it has {conv.weight.shape[1]} input "
                       "channels); use layer_filters instead")
    return scale_per_filter(conv.weight)


def layer_filters(model: nn.Module, layer_name: str | None = None) -> torch.Tensor:
    """A conv layer's filters (out, in, k, k) in [0, 1], scaled per filter: one grey k×k tile per input channel.
    layer_name: a name from conv_layers(model) (default: the first)."""
    convs = dict(_convs(model))
    if layer_name is None:
        layer_name = next(iter(convs))
    if layer_name not in convs:
        raise LabError(f"{layer_name!r} is not a conv layer of this model; choose one of: {', '.join(convs)}")
    return scale_per_filter(convs[layer_name].weight)


# --- feature maps -----------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FeatureMaps:
    layer: str  # the module whose output this is
    label: str  # for people, e.g. "conv1 (after ReLU)"
    shape: tuple[int, int, int]  # (C, H, W) of the whole activation
    channels: tuple[int, ...]  # the channels shown, by mean activation, descending
    means: tuple[float, ...]  # their mean activations
    maps: torch.Tensor  # (N, H, W) float32 in [0, 1] for display


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Tanh)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def feature_layers(model: nn.Module) -> list[tuple[str, str]]:
    """(module name, label) of the layers feature_maps shows by default.

    ResNet18: the stem's ReLU and the four stages (each stage ends in a ReLU). ResNet9: prep and its three
    layers. Other conv nets (cnn, MobileNetV2): every conv layer, read after its activation when one follows
    it (conv -> [norm] -> ReLU), else after its norm layer, else the conv's own output.
    """
    m = getattr(model, "_orig_mod", model)
    if isinstance(m, ResNet):
        return [("relu", "stem (conv1, BN, ReLU)")] + [(f"layer{i}", f"layer{i} (stage {i} output, after ReLU)")
                                                       for i in range(1, m.n_stages + 1)]
    if isinstance(m, ResNet9):
        return [("prep", "prep (conv, BN, ReLU)"), ("layer1", "layer1 (after pool + residual)"),
                ("layer2", "layer2 (conv, BN, ReLU, pool)"), ("layer3", "layer3 (after pool + residual)")]
    out = []
    modules = dict(m.named_modules())
    for name, _ in _convs(m):
        parent_name, _, child = name.rpartition(".")
        siblings = list(modules[parent_name].named_children())  # "" is the model itself
        keys = [k for k, _ in siblings]
        chosen, label = name, name
        if child in keys:
            for key, module in siblings[keys.index(child) + 1:]:
                if isinstance(module, _NORMS):
                    chosen, label = _join(parent_name, key), f"{name} (after {type(module).__name__})"
                    continue
                if isinstance(module, _ACTIVATIONS):
                    chosen, label = _join(parent_name, key), f"{name} (after {type(module).__name__})"
                break
        out.append((chosen, label))
    return out


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def feature_maps(model: nn.Module, image_u8: torch.Tensor, mean: Any, std: Any,
                 layers: Sequence[str] | None = None, top: int = 16, scale: str = "layer") -> list[FeatureMaps]:
    """The activations of one image at each layer (default: feature_layers(model)), via forward hooks.

    For each layer the `top` channels with the highest mean activation are kept, strongest first, scaled to
    [0, 1] together (scale="layer": brightness comparable across the layer's channels) or each on its own
    (scale="channel"). Pretrained models show their maps at their internal size (224 input -> 112, 56, ...).
    """
    if scale not in ("layer", "channel"):
        raise LabError(f"scale must be 'layer' or 'channel', got {scale!r}")
    m = getattr(model, "_orig_mod", model)
    defaults = feature_layers(m)
    labels = dict(defaults)
    names = [n for n, _ in defaults] if layers is None else list(layers)
    modules = dict(m.named_modules())
    bad = [n for n in names if n not in modules or n == ""]
    if bad:
        raise LabError(f"the model has no layer(s) {', '.join(map(repr, bad))}; feature maps are shown for: "
                       f"{', '.join(n for n, _ in defaults)}")
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for n in names:
        def hook(module: nn.Module, args: tuple, output: Any, n: str = n) -> None:
            if isinstance(output, torch.Tensor):
                captured.setdefault(n, output.detach())  # first call: every module here runs once per forward
        handles.append(modules[n].register_forward_hook(hook))
    try:
        with explaining(model), torch.no_grad():
            model(aug.normalize(as_batch(image_u8).to(model_device(model)), mean, std))
    finally:
        for h in handles:
            h.remove()
    out = []
    for n in names:
        act = captured[n]
        if act.dim() != 4:
            raise LabError(f"layer {n!r} does not output feature maps (shape {tuple(act.shape)}); choose a "
                           "convolutional layer")
        act = act[0].float().cpu()  # (C, H, W)
        means = act.mean((1, 2))
        order = torch.argsort(means, descending=True, stable=True)[:max(1, top)]
        shown = act[order]  # (N, H, W)
        dims = (1, 2) if scale == "channel" else (0, 1, 2)
        lo, hi = shown.amin(dims, keepdim=True), shown.amax(dims, keepdim=True)
        maps = torch.where(hi > lo, (shown - lo) / (hi - lo).clamp(min=1e-12), torch.zeros_like(shown))
        out.append(FeatureMaps(n, labels.get(n, n), tuple(act.shape), tuple(order.tolist()),
                               tuple(means[order].tolist()), maps))
    return out
