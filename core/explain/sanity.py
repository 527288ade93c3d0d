"""The sanity check for saliency maps (Adebayo et al., 2018, "Sanity Checks for Saliency Maps"): cascading
randomization. A map that explains the *model* must change when the model's learned weights are destroyed.

`sanity_check(model, image, mean, std, method)` re-initializes the network top-down - the output layer first,
then each layer below it, cumulatively - on a deep copy (the original is never touched), recomputes the map
after each step and compares it with the trained network's map by Spearman rank correlation (and SSIM). If the
map still looks the same with every layer random, it was showing the input's own structure, not what the
network learned: `flag` is True and `verdict` says so in plain words.

A "layer" here is a unit worth a slide: a conv or linear layer with the norm layer after it (cnn, mlp), a
stage of a ResNet (fc, layer4, ..., the stem), a block of MobileNetV2's `features`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import LabError
from core.explain.attribution import METHODS, attribute, resolve_method
from core.models.registry import unwrap

FLAG_ABOVE = 0.8  # rank correlation with every layer random above this: the map ignores the weights
PASS_BELOW = 0.5  # ... below this: the map depends on them
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


@dataclass(frozen=True, eq=False)
class SanityStep:
    step: int  # 0 = the trained model; k = after randomizing k units
    layer: str  # the unit randomized at this step ("" at step 0)
    randomized: tuple[str, ...]  # every unit randomized so far, top first
    map: torch.Tensor  # (H, W) in [0, 1], the attribution map at this step
    rank_corr: float  # Spearman rank correlation with step 0's map (1 at step 0)
    ssim: float  # structural similarity with step 0's map (1 at step 0)
    target_prob: float  # the (randomized) model's probability of the target class


@dataclass(frozen=True, eq=False)
class SanityResult:
    """The steps (iterable and indexable like a list) plus the overall judgement."""

    method: str
    target: int
    steps: tuple[SanityStep, ...]
    flag: bool  # True: the map barely changed with every layer randomized (fails the check)
    verdict: str  # plain language, for the page and the slides
    seconds: float

    def __iter__(self) -> Iterator[SanityStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> SanityStep:
        return self.steps[i]


# --- similarity -----------------------------------------------------------------------------------------------

def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 of a flat tensor's values, ties sharing their average rank (as scipy.stats.rankdata - 1)."""
    x = x.flatten().double()
    order = torch.argsort(x, stable=True)
    _, inverse, counts = torch.unique(x[order], sorted=True, return_inverse=True, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    mean_rank = starts.double() + (counts.double() - 1) / 2  # per distinct value
    ranks = torch.empty_like(x)
    ranks[order] = mean_rank[inverse]
    return ranks


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    denom = torch.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks. A constant map ranks nothing: 1.0 when
    both maps are the same constant, else 0.0."""
    if a.shape != b.shape:
        raise ValueError(f"maps of different shapes: {tuple(a.shape)} vs {tuple(b.shape)}")
    const_a, const_b = bool((a == a.flatten()[0]).all()), bool((b == b.flatten()[0]).all())
    if const_a or const_b:
        return 1.0 if const_a and const_b and torch.equal(a, b) else 0.0
    return pearson(average_ranks(a), average_ranks(b))


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> float:
    """Mean structural similarity of two (H, W) maps in [0, 1] over window×window patches (uniform weights,
    the usual constants for data range 1)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = a.double()[None, None], b.double()[None, None]
    w = max(1, min(window, a.shape[-1], a.shape[-2]))
    mx, my = F.avg_pool2d(x, w, 1), F.avg_pool2d(y, w, 1)
    vx = F.avg_pool2d(x * x, w, 1) - mx * mx
    vy = F.avg_pool2d(y * y, w, 1) - my * my
    cov = F.avg_pool2d(x * y, w, 1) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


# --- which units get randomized ---------------------------------------------------------------------------------

def randomization_units(model: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    """(label, module names) of the units the cascade randomizes, output first."""
    m = unwrap(model)
    names = dict(m.named_children())
    stages = [n for n in names if n.startswith("layer") and n[5:].isdigit()]
    if "fc" in names and stages:  # ResNet18 / ResNet9: the head, each stage, then the stem
        stem = [n for n in ("conv1", "bn1", "prep") if n in names]
        units = [("fc", ("fc",))] + [(s, (s,)) for s in sorted(stages, key=lambda n: -int(n[5:]))]
        return units + ([(stem[0], tuple(stem))] if stem else [])
    features = names.get("features")
    if isinstance(features, nn.Sequential) and "classifier" in names and all(
            len(list(c.children())) > 0 for c in features.children()):  # MobileNetV2: blocks of features
        blocks = [(f"features.{n}", (f"features.{n}",)) for n, _ in features.named_children()]
        return [("classifier", ("classifier",))] + blocks[::-1]
    units: list[tuple[str, list[str]]] = []
    for name, module in m.named_modules():  # cnn, mlp, anything else: weight layers, norm joined to its layer
        if not any(True for _ in module.parameters(recurse=False)):
            continue
        if isinstance(module, _NORMS) and units:
            units[-1][1].append(name)
        else:
            units.append((name, [name]))
    return [(label, tuple(mods)) for label, mods in reversed(units)]


def _randomize(model: nn.Module, names: Sequence[str], seed: int) -> None:
    """Re-initialize every parameter (and norm statistics) under `names` with the layers' own init."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in names:
            for sub in model.get_submodule(name).modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()


# --- the check ---------------------------------------------------------------------------------------------------

def sanity_check(model: nn.Module, image_u8: torch.Tensor, mean: Any, std: Any, method: str = "saliency",
                 target: int | None = None, layers: Sequence[str] | None = None, *, seed: int = 0,
                 threshold: float = FLAG_ABOVE, progress: Callable[[int, int], None] | None = None,
                 **options: Any) -> SanityResult:
    """Cascading randomization of `model` (a copy) for one image and one attribution method.

    layers: module names to randomize in this order (default: randomization_units, output first).
    target: the class explained at every step (default: the trained model's prediction).
    progress(step, steps) is called after every step. options go to attribute().
    """
    method = resolve_method(method)
    t0 = time.perf_counter()
    if layers is None:
        units = randomization_units(model)
    else:
        known = dict(unwrap(model).named_modules())
        bad = [n for n in layers if n not in known or n == ""]
        if bad:
            choices = ", ".join(label for label, _ in randomization_units(model))
            raise LabError(f"the model has no layer(s) {', '.join(map(repr, bad))}; by default the check "
                           f"randomizes: {choices}")
        units = [(n, (n,)) for n in layers]
    if not units:
        raise LabError("the model has no layers with weights to randomize")
    first = attribute(model, image_u8, mean, std, method, target, **options)
    steps = [SanityStep(0, "", (), first.map, 1.0, 1.0, first.target_prob)]
    if progress:
        progress(0, len(units))
    work = copy.deepcopy(unwrap(model))  # the original model is never modified
    done: list[str] = []
    for i, (label, names) in enumerate(units, start=1):
        _randomize(work, names, seed + i)
        done.append(label)
        a = attribute(work, image_u8, mean, std, method, first.target, **options)
        steps.append(SanityStep(i, label, tuple(done), a.map, rank_correlation(first.map, a.map),
                                ssim(first.map, a.map), a.target_prob))
        if progress:
            progress(i, len(units))
    flag, verdict = judge(method, steps, threshold)
    return SanityResult(method, first.target, tuple(steps), flag, verdict, time.perf_counter() - t0)


def judge(method: str, steps: Sequence[SanityStep], threshold: float = FLAG_ABOVE) -> tuple[bool, str]:
    """(flag, verdict) from the steps: flagged when the fully randomized map still ranks pixels like the
    trained one (rank correlation > threshold)."""
    title = METHODS[method].title
    final = steps[-1].rank_corr
    if final > threshold:
        return True, (f"With every layer randomized, the {title} map still has rank correlation {final:.2f} with "
                      "the trained network's: the map does not depend on what the network learned - it is mostly "
                      "an edge detector of the input. Do not read it as the model's reasoning.")
    broke = next((s for s in steps[1:] if s.rank_corr < PASS_BELOW), None)
    if final < PASS_BELOW and broke is not None:
        return False, (f"The {title} map falls apart once the weights are randomized (rank correlation "
                       f"{broke.rank_corr:.2f} already after randomizing {broke.layer}, {final:.2f} at the end): "
                       "it depends on what the network learned, so it passes this sanity check.")
    return False, (f"The {title} map changes only partly when every layer is randomized (rank correlation "
                   f"{final:.2f}): some of it reflects the input's own structure rather than what the network "
                   "learned; read it with care.")
