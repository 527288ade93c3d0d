"""Every comparison of the report, measured at the budgets a class can afford: does the report's ordering show
beyond the seed-to-seed noise, and from which budget (training images × epochs)?

COMPARISONS lists the report's steps as (baseline preset, the preset the report says wins). The measurements are
data (class_budgets.json beside this module, written from scripts/measure_lessons.py's output with the command
and CPU kept beside each): per seed, each preset's test and train accuracy after every epoch. `judge` reads one
comparison at one budget as plain data — the means, the seed spread, the gap, the noise it must clear, and the
verdict — so a page only words it, and docs/LESSONS.md tabulates the same judgements.

With a constant learning rate (the report's Adam 1e-4) epoch k of a run is a k-epoch run, so one measured run
per seed gives every epoch budget up to its length. A preset whose learning rate follows a schedule (the SGD
recipe's warm-up and cosine decay) is a different run at every length, so it counts only at the epochs it was
measured for. The lab's runs report their best test accuracy so far, and so does every judgement here.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.lessons.findings import NOISE
from core.lessons.presets import PRESETS

DATA = Path(__file__).with_name("class_budgets.json")


@dataclass(frozen=True)
class Comparison:
    key: str
    title: str  # how the page and docs/LESSONS.md name it
    first: str  # the baseline preset
    second: str  # the preset the report says beats it
    page: str  # the page that shows it (pages/<page>.py)
    report: str  # the report's numbers, as the report gives them


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("mlp-cnn", "MLP → CNN", "mlp", "cnn", "mlp_vs_cnn", "26% → 30%"),
    Comparison("width", "CNN 32 → 128 filters", "cnn", "cnn-128", "filter_width", "30% → 31%"),
    Comparison("batch-norm", "+ batch norm", "cnn-128", "cnn-bn", "regularization", "31% → 42%"),
    Comparison("fc8192", "+ FC 8192", "cnn-bn", "cnn-bn-fc8192", "regularization", "42% → 43%"),
    Comparison("dropout", "+ dropout 0.5", "cnn-bn-fc8192", "cnn-bn-dropout", "regularization", "43% → ~43%"),
    Comparison("flip", "+ random flip", "cnn-128", "cnn-flip", "augmentation", "31% → 36%"),
    Comparison("crop", "+ random crop", "cnn-flip", "cnn-flip-crop", "augmentation", "36% → 39%"),
    Comparison("sgd", "Adam CNN → the report's SGD recipe", "cnn", "cnn-sgd", "optimizers", "30% → 60%"),
)
BY_KEY = {c.key: c for c in COMPARISONS}


@dataclass(frozen=True)
class Runs:
    """One preset at one budget: per seed, the accuracy after each epoch."""

    preset: str
    train_images: int
    test_images: int
    epochs: int
    seeds: tuple[int, ...]
    test_acc: tuple[tuple[float, ...], ...]  # [seed][epoch]
    train_acc: tuple[tuple[float, ...], ...]
    seconds: float  # median wall time of one run on `machine`
    command: str
    machine: str


@dataclass(frozen=True)
class Judgement:
    comparison: str
    train_images: int
    epochs: int
    seeds: int
    first_mean: float  # best test accuracy so far at `epochs`, mean over seeds
    second_mean: float
    spread: float  # the larger seed standard deviation of the two
    gap: float  # second_mean - first_mean
    noise: float  # what the gap must exceed: max(NOISE, 2 x the standard error of the gap)
    verdict: str  # "report's order" | "reversed" | "within noise"
    first_train: float  # mean last-epoch train accuracy: the train vs test picture
    second_train: float
    minutes: float  # the slower run's measured wall time
    machine: str

    @property
    def matches_report(self) -> bool:
        return self.verdict == "report's order"


def best_so_far(curve: Sequence[float], epochs: int) -> float:
    return max(curve[:epochs]) if curve[:epochs] else math.nan


def judge(comparison: Comparison, first: Runs, second: Runs, epochs: int | None = None) -> Judgement:
    """The comparison at `epochs` (default: all measured) of two presets measured at the same budget."""
    n = min(first.epochs, second.epochs) if epochs is None else epochs
    a = [best_so_far(c, n) for c in first.test_acc]
    b = [best_so_far(c, n) for c in second.test_acc]
    sd = [statistics.stdev(x) if len(x) > 1 else 0.0 for x in (a, b)]
    se = math.sqrt(sd[0] ** 2 / len(a) + sd[1] ** 2 / len(b)) if len(a) > 1 and len(b) > 1 else 0.0
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    # a single seed's binomial error on the test set is the floor when the seeds happen to agree
    binomial = math.sqrt(ma * (1 - ma) / first.test_images + mb * (1 - mb) / second.test_images)
    noise = max(NOISE, 2 * max(se, binomial / math.sqrt(min(len(a), len(b)))))
    gap = mb - ma
    verdict = "report's order" if gap > noise else "reversed" if gap < -noise else "within noise"
    train = [statistics.fmean(c[n - 1] for c in r.train_acc if len(c) >= n) for r in (first, second)]
    return Judgement(comparison.key, first.train_images, n, min(len(a), len(b)), ma, mb, max(sd), gap, noise,
                     verdict, train[0], train[1], max(first.seconds, second.seconds) * n / max(first.epochs, 1) / 60,
                     first.machine)


@lru_cache(maxsize=1)
def measured(path: Path = DATA) -> tuple[Runs, ...]:
    """Every measured preset x budget (empty when the data file is missing)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    return tuple(Runs(r["preset"], r["train_images"], r["test_images"], r["epochs"], tuple(r["seeds"]),
                      tuple(tuple(c) for c in r["test_acc"]), tuple(tuple(c) for c in r["train_acc"]),
                      float(r["seconds"]), r["command"], r["machine"]) for r in rows)


def epochs_judged(r: Runs) -> set[int]:
    """The epoch budgets one measured run stands for: every prefix under a constant learning rate, else only its
    own length (a 4-epoch cosine run anneals sooner than the first 4 epochs of a 6-epoch one)."""
    optim = PRESETS[r.preset].config.optim if r.preset in PRESETS else None
    constant = optim is not None and optim.schedule == "constant" and not optim.warmup_epochs
    return set(range(1, r.epochs + 1)) if constant else {r.epochs}


def judgements(comparison: Comparison, runs: Sequence[Runs] | None = None) -> list[Judgement]:
    """The comparison at every measured budget where both presets were measured alike, every epoch of each,
    smallest budget first."""
    if runs is None:  # the shipped measurements: judged once per process (pages ask on every rerun)
        return list(_shipped_judgements(comparison))
    out = []
    for a in runs:
        if a.preset != comparison.first:
            continue
        for b in runs:
            if b.preset == comparison.second and (b.train_images, b.test_images) == (a.train_images, a.test_images):
                out += [judge(comparison, a, b, k) for k in sorted(epochs_judged(a) & epochs_judged(b))]
    return sorted(out, key=lambda j: (j.train_images * j.epochs, j.train_images))


def reload() -> None:
    """Forget the measurements read so far (after class_budgets.json was rewritten)."""
    measured.cache_clear()
    _shipped_judgements.cache_clear()


@lru_cache(maxsize=64)
def _shipped_judgements(comparison: Comparison) -> tuple[Judgement, ...]:
    return tuple(judgements(comparison, measured()))


def first_budget_showing(comparison: Comparison, runs: Sequence[Runs] | None = None) -> Judgement | None:
    """The smallest measured budget at which the report's ordering shows beyond the noise (and stays shown at
    the larger epochs of the same images), or None: never at the budgets measured."""
    js = judgements(comparison, runs)
    for j in js:
        same_images_later = [k for k in js if k.train_images == j.train_images and k.epochs >= j.epochs]
        if all(k.matches_report for k in same_images_later):
            return j
    return None


def summary(comparison: Comparison, runs: Sequence[Runs] | None = None) -> str:
    """One plain sentence for a page: where the measurements put the report's claim."""
    js = judgements(comparison, runs)
    if not js:
        return f"{comparison.title}: not measured at a class budget yet."
    largest = max(js, key=lambda j: (j.train_images * j.epochs, j.epochs))
    shows = first_budget_showing(comparison, runs)
    at = f"{largest.train_images:,} images × {largest.epochs} epochs"
    measured_line = (f"measured on {largest.seeds} seeds at up to {at}, {comparison.second} {pct(largest.second_mean)} "
                     f"vs {comparison.first} {pct(largest.first_mean)} ({largest.gap * 100:+.1f} points; the noise is "
                     f"±{largest.noise * 100:.1f})")
    if shows is not None:
        return (f"The report's order shows from {shows.train_images:,} images × {shows.epochs} epochs "
                f"(≈ {shows.minutes:.1f} min a run on {shows.machine}); {measured_line}.")
    if largest.verdict == "reversed":
        return (f"At the budgets a class can afford the order is the other way round: {measured_line}. "
                "The report trained 50,000 images for 20 epochs.")
    return (f"At the budgets a class can afford the two are within the seed-to-seed noise: {measured_line}. "
            "The report trained 50,000 images for 20 epochs.")


def why_not(j: Judgement, comparison: Comparison) -> str:
    """Why a budget does not show the report's order, read from train vs test accuracy (empty when it does)."""
    if j.matches_report:
        return ""
    train = (f"training accuracy {comparison.first} {pct(j.first_train)}, {comparison.second} "
             f"{pct(j.second_train)}")
    if max(j.first_train, j.second_train) < 0.6:
        return (f"Both are still learning at this budget ({train}): the comparison measures how fast each learns "
                "in a few epochs, not how well it generalizes after the report's 20 epochs on 50,000 images.")
    if min(j.first_train, j.second_train) > 0.85:
        return (f"Both have memorized their training images ({train}) far beyond their test accuracy: with so "
                "few images the gap is overfitting, which more data (the report's 50,000) would shrink.")
    return (f"The two learn at different speeds ({train}): a larger budget decides the order, not this one.")


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def from_measurements(lines: Sequence[dict]) -> list[dict]:
    """scripts/measure_lessons.py's JSON lines (one run each) -> the data file's rows (one per preset x budget);
    runs that did not complete are left out."""
    groups: dict[tuple, list[dict]] = {}
    for r in lines:
        if r.get("status") == "completed" and len(r.get("test_acc") or []) == r["epochs"]:
            groups.setdefault((r["preset"], r["subset"], r["test_subset"], r["epochs"]), []).append(r)
    rows = []
    for (preset, subset, test_subset, epochs), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["seed"])
        rows.append({"preset": preset, "train_images": subset, "test_images": test_subset, "epochs": epochs,
                     "seeds": [r["seed"] for r in rs], "test_acc": [[round(x, 4) for x in r["test_acc"]] for r in rs],
                     "train_acc": [[round(x, 4) for x in r["train_acc"]] for r in rs],
                     "seconds": statistics.median(r["wall_s"] for r in rs),
                     "command": rs[0]["command"].replace(f"--seed {rs[0]['seed']}", "--seed S"),
                     "machine": rs[0]["cpu"]})
    return rows
