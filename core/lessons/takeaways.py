"""Takeaways computed from the runs a page shows: who won and by how much, whether that is more than noise,
each run's train/test gap, whether the runs were trained alike, and whether the order agrees with the report
- and, when it does not, why (fewer epochs, fewer images, another dataset).

Plain data in (`RunFacts`, one per run on screen; `facts_from_run` makes one from a run-library record and its
curves), a `Verdict` out; pages only render it. The report's fixed sentence is not decided here: pages show
it beside the verdict as "The report's claim".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from core.lessons.findings import NOISE, Finding, compare_with_report
from core.lessons.presets import PRESETS, REPORT, Preset
from core.runs.records import EpochRow, RunRecord, diverged_summary

# What a run's budget is made of, in the order a flag names them. A run's value and its preset's value are
# both shown as short strings, so "differs" is plain string inequality.
SETUP_FIELDS = ("dataset", "images", "epochs", "augmentation", "optimizer", "lr", "batch")
REPORT_IMAGES = 50_000  # CIFAR-100's training set, all of which the report used
REPORT_DATASET = REPORT.data.dataset


@dataclass(frozen=True)
class RunFacts:
    """One run as a takeaway needs it. Accuracies are fractions; `setup` is what the run did, `intended` what its
    experiment prescribes (the report's settings), both keyed by SETUP_FIELDS."""

    label: str
    best_test_acc: float | None
    train_acc: float | None = None  # last epoch's
    test_acc: float | None = None  # last epoch's
    status: str = "completed"
    test_size: int | None = None
    report_acc: float | None = None
    setup: Mapping[str, str] = field(default_factory=dict)
    intended: Mapping[str, str] = field(default_factory=dict)
    caveat: str = ""  # the experiment's own reason why a short run may disagree with the report
    diverged: str = ""  # a diverged run's summary ("diverged at step 40: the learning rate (0.4) is too high")


@dataclass(frozen=True)
class Mismatch:
    """A setting whose values across the runs do not follow the experiment's design (e.g. epochs 5 vs 3 where
    both experiments prescribe 20, or no augmentation on a run that should have had it)."""

    field: str
    values: tuple[tuple[str, str], ...]  # (run label, its value)

    @property
    def text(self) -> str:
        return f"{self.field}: " + ", ".join(f"{label} {value}" for label, value in self.values)


@dataclass(frozen=True)
class Verdict:
    winner: str | None  # label of the run with the best test accuracy (None: no run has a result)
    runner_up: str | None
    margin: float | None  # winner - runner-up, fraction
    noise: float  # the margin under which the order is a coin flip (fraction)
    gap_is_noise: bool  # True when margin < noise: "too close to call"
    gaps: tuple[tuple[str, float], ...]  # (label, train - test accuracy at the last epoch)
    mismatched: tuple[Mismatch, ...]
    unfinished: tuple[str, ...]  # labels of runs not completed (running, stopped, failed...), diverged ones aside
    report_winner: str | None  # the best of these runs by the report's numbers
    agrees_with_report: bool | None  # None: no report order, or too close to call
    why: str  # when the runs disagree with the report: what differs from the report's setting
    headline: str  # one or two sentences: who won, by how much, the gaps
    qualifier: str  # the flag on the verdict when the runs were not trained alike ('' when they were)

    @property
    def fair(self) -> bool:
        return not self.mismatched

    @property
    def text(self) -> str:
        return " ".join(s for s in (self.headline, self.qualifier, self._report_sentence()) if s)

    def _report_sentence(self) -> str:
        if self.agrees_with_report is None or self.report_winner is None:
            return ""
        if self.agrees_with_report:
            return f"Same winner as the report ({self.report_winner})."
        return f"This contradicts the report, where {self.report_winner} wins. " + self.why


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _points(x: float) -> str:
    return f"{x * 100:.1f} point" + ("" if round(x * 100, 1) == 1.0 else "s")


def noise_of(a: RunFacts, b: RunFacts) -> float:
    """Twice the standard error of the difference of two test accuracies (binomial, each on its own test set),
    never below the lab's NOISE floor: a margin under it could flip with another seed or test sample."""
    var = 0.0
    for r in (a, b):
        if r.best_test_acc is None or not r.test_size:
            return NOISE
        p = min(max(r.best_test_acc, 0.0), 1.0)
        var += p * (1 - p) / r.test_size
    return max(NOISE, 2 * math.sqrt(var))


# a sweep's keys (core.config short names) -> the SETUP_FIELDS they vary
SWEPT_FIELDS = {"lr": "lr", "optim.lr": "lr", "batch_size": "batch", "epochs": "epochs", "subset": "images",
                "data.subset": "images", "optimizer": "optimizer", "optim.name": "optimizer", "dataset": "dataset",
                "flip_p": "augmentation", "crop_padding": "augmentation", "crop_mode": "augmentation",
                "erase_p": "augmentation", "erase_size": "augmentation"}


def mismatches(runs: Sequence[RunFacts], by_design: Sequence[str] = ()) -> tuple[Mismatch, ...]:
    """Settings where two runs agree when their experiments differ, or differ when their experiments agree.
    `by_design`: SETUP_FIELDS the comparison varies on purpose (a sweep's keys), never flagged."""
    out = []
    for name in (f for f in SETUP_FIELDS if f not in by_design):
        pairs = [(r, r.setup.get(name), r.intended.get(name)) for r in runs]
        pairs = [(r, s, i) for r, s, i in pairs if s is not None and i is not None]
        bad = any((s1 == s2) != (i1 == i2) for k, (_, s1, i1) in enumerate(pairs) for _, s2, i2 in pairs[k + 1:])
        if bad:
            out.append(Mismatch(name, tuple((r.label, s) for r, s, _ in pairs)))
    return tuple(out)


def _ordered(values: set[str]) -> list[str]:
    """Numbers by value ('5' before '20'), anything else alphabetically after them."""
    return sorted(values, key=lambda v: (0, float(v.replace(",", ""))) if v.replace(",", "").replace(".", "").isdigit()
                  else (1, v))


def _why(runs: Sequence[RunFacts], expected: RunFacts | None) -> str:
    """What separates these runs from the report's setting, and the experiment's own caveat."""
    reasons = []
    epochs = _ordered({r.setup["epochs"] for r in runs if "epochs" in r.setup})
    report_epochs = _ordered({r.intended["epochs"] for r in runs if "epochs" in r.intended})
    if epochs and report_epochs and epochs != report_epochs:
        reasons.append(f"they trained {' / '.join(epochs)} epochs, the report {' / '.join(report_epochs)}")
    images = _ordered({r.setup["images"] for r in runs if "images" in r.setup})
    if images and images != [f"{REPORT_IMAGES:,}"]:
        reasons.append(f"on {' / '.join(images)} training images, the report on {REPORT_IMAGES:,}")
    datasets = sorted({r.setup["dataset"] for r in runs if "dataset" in r.setup})
    if datasets and datasets != [REPORT_DATASET]:
        reasons.append(f"on {', '.join(datasets)}, not the report's {REPORT_DATASET}")
    text = ("Unlike the report's runs, " + "; ".join(reasons) + ".") if reasons else \
        "The settings match the report's, so this is the seed or the test sample talking."
    if expected is not None and expected.caveat:
        text += " " + expected.caveat
    elif reasons:
        text += " Short runs on few images favour whatever learns fastest, not what generalizes best."
    return text


def compare(runs: Sequence[RunFacts], by_design: Sequence[str] = ()) -> Verdict:
    """The verdict on the runs shown (any number; only those with a result are ranked). `by_design`: settings
    varied on purpose (SETUP_FIELDS names, or a sweep's keys such as "lr"), so not flagged as unlike."""
    design = {SWEPT_FIELDS.get(k, k) for k in by_design}
    # a diverged run is a lesson, never a result: named with where and why, never ranked (nor the winner)
    blown = " ".join(f"{r.label} {r.diverged or 'diverged: the learning rate is too high'} - not ranked."
                     for r in runs if r.status == "diverged")
    ranked = sorted((r for r in runs if r.best_test_acc is not None and r.status != "diverged"),
                    key=lambda r: -r.best_test_acc)
    verdict = _ranked_verdict(ranked, design)
    if not blown:
        return verdict
    return replace(verdict, headline=f"{verdict.headline} {blown}" if ranked else blown)


def _ranked_verdict(ranked: Sequence[RunFacts], design: set[str]) -> Verdict:
    """compare's verdict on the runs with a result, best first."""
    gaps = tuple((r.label, r.train_acc - r.test_acc) for r in ranked
                 if r.train_acc is not None and r.test_acc is not None)
    mism = mismatches(ranked, tuple(design))
    unfinished = tuple(r.label for r in ranked if r.status != "completed")
    if not ranked:
        return Verdict(None, None, None, NOISE, True, (), (), (), None, None, "", "No run has a result yet.", "")
    win = ranked[0]
    if len(ranked) == 1:
        headline = f"Only {win.label} has a result so far: {_pct(win.best_test_acc)}."
        return Verdict(win.label, None, None, NOISE, True, gaps, mism, unfinished, None, None, "", headline,
                       _qualifier(mism, unfinished))
    second = ranked[1]
    margin = win.best_test_acc - second.best_test_acc
    noise = noise_of(win, second)
    close = margin < noise
    if close:
        headline = (f"Too close to call: {win.label} {_pct(win.best_test_acc)} vs {second.label} "
                    f"{_pct(second.best_test_acc)}, {_points(margin)} apart, within the ±{_points(noise)} a "
                    f"different seed or test sample can move it.")
    else:
        headline = (f"In these runs {win.label} wins: {_pct(win.best_test_acc)} vs {_pct(second.best_test_acc)} "
                    f"for {second.label} (+{_points(margin)}, more than the ±{_points(noise)} noise).")
    if len(ranked) > 2:
        headline += " Order: " + " > ".join(f"{r.label} {_pct(r.best_test_acc)}" for r in ranked) + "."
    if gaps:
        widest = max(gaps, key=lambda g: g[1])
        headline += " Train/test gap at the last epoch: " + ", ".join(f"{k} {v * 100:.0f}" for k, v in gaps) \
            + " points" + (f" - {widest[0]} memorizes most." if len(gaps) > 1 and widest[1] >= 0.05 else ".")
    with_report = [r for r in ranked if r.report_acc is not None]
    report_winner = max(with_report, key=lambda r: r.report_acc) if len(with_report) > 1 else None
    agrees = None
    why = ""
    if report_winner is not None and not close:
        # the lab's order among the runs the report has numbers for: same winner?
        agrees = with_report[0].label == report_winner.label
        if not agrees:
            why = _why(ranked, report_winner)
    return Verdict(win.label, second.label, margin, noise, close, gaps, mism, unfinished,
                   report_winner.label if report_winner else None, agrees, why, headline,
                   _qualifier(mism, unfinished))


def _qualifier(mism: Sequence[Mismatch], unfinished: Sequence[str]) -> str:
    bits = []
    if mism:
        bits.append("Not a like-for-like comparison - " + "; ".join(m.text for m in mism)
                    + ": the difference may come from that, not from the experiment.")
    if unfinished:
        bits.append(f"Not finished: {', '.join(unfinished)} - the order can still change.")
    return " ".join(bits)


def setup_of(run: RunRecord) -> dict[str, str]:
    """What a run did, as short strings keyed by SETUP_FIELDS (epochs: those actually trained)."""
    c = run.config
    out = {"dataset": run.dataset, "epochs": str(run.epochs_done), "augmentation": c.data.augment.describe(),
           "optimizer": c.optim.name, "lr": f"{c.optim.lr:g}", "batch": str(c.batch_size)}
    images = run.train_size or c.data.subset  # before its first epoch a run knows only the subset it asked for
    if images:
        out["images"] = f"{images:,}"
    return out


def intended_of(preset: Preset) -> dict[str, str]:
    """What the report's experiment prescribes, in the same terms (its images: all of CIFAR-100's)."""
    c = preset.config
    return {"dataset": c.data.dataset, "images": f"{REPORT_IMAGES:,}", "epochs": str(c.epochs),
            "augmentation": c.data.augment.describe(), "optimizer": c.optim.name, "lr": f"{c.optim.lr:g}",
            "batch": str(c.batch_size)}


def facts_from_run(run: RunRecord, curves: Sequence[EpochRow | Mapping], *, label: str,
                   preset: Preset | None) -> RunFacts:
    """RunFacts of a run-library record and its epoch rows (EpochRow or their dicts). Without a preset, the
    run's own settings stand for the design, so only the other runs can be out of line."""
    last = curves[-1] if curves else None
    get = (lambda k: getattr(last, k, None)) if not isinstance(last, Mapping) else last.get
    setup = setup_of(run)
    # the dataset, images and epochs are the page's budget, not the experiment: the report's apply to all
    intended = intended_of(preset) if preset is not None else {**setup, "dataset": REPORT_DATASET,
                                                               "images": f"{REPORT_IMAGES:,}", "epochs": str(run.epochs)}
    return RunFacts(label=label, best_test_acc=run.best_test_acc, train_acc=get("train_acc") if last else None,
                    test_acc=get("test_acc") if last else None, status=run.status, test_size=run.test_size,
                    report_acc=preset.report_acc if preset else None, setup=setup, intended=intended,
                    caveat=preset.caveat if preset else "", diverged=diverged_summary(run))


def flags_by_label(verdict: Verdict) -> dict[str, str]:
    """For a table's or chart's "setup" column: each run's values of the mismatched settings ('' when fair)."""
    out: dict[str, list[str]] = {}
    for m in verdict.mismatched:
        for label, value in m.values:
            out.setdefault(label, []).append(f"{m.field} {value}")
    return {k: "⚠ " + ", ".join(v) for k, v in out.items()}


def card_findings(facts: Mapping[str, RunFacts], presets: Mapping[str, Preset] = PRESETS) -> list[Finding]:
    """The report card's findings (core.lessons.findings) for {preset: RunFacts of its best completed run}, each
    explained by what its two runs did - fewer epochs, fewer images, another dataset - and flagged when the
    preset and its baseline were not trained alike."""
    why, qualify = {}, {}
    for name, f in facts.items():
        p = presets.get(name)
        if p is None or p.baseline not in facts:
            continue
        pair = [facts[p.baseline], f]
        v = compare(pair)
        why[name] = _why(pair, f)
        if v.mismatched:
            qualify[name] = _qualifier(v.mismatched, ())
    acc = {k: f.best_test_acc for k, f in facts.items() if f.best_test_acc is not None}
    return compare_with_report(acc, presets, why=why, qualify=qualify)


@dataclass(frozen=True)
class EnsembleVerdict:
    gain: float  # ensemble - best member (fraction)
    noise: float
    helps: bool | None  # None: within noise
    text: str


def ensemble_verdict(members: Sequence[tuple[str, float]], ensemble_acc: float, test_size: int,
                     member_epochs: Sequence[int] = ()) -> EnsembleVerdict:
    """What averaging these members did on `test_size` shared test images, against the general lesson that an
    ensemble beats its best member. Members trained for different epochs are named (the weak one may drag)."""
    best_name, best = max(members, key=lambda m: m[1])
    worst_name, worst = min(members, key=lambda m: m[1])
    gain = ensemble_acc - best
    # the same test images for both: the binomial noise of one accuracy, a lower bound for paired results
    p = min(max(best, 0.0), 1.0)
    noise = max(NOISE / 2, 2 * math.sqrt(p * (1 - p) / max(1, test_size)))
    helps = None if abs(gain) < noise else gain > 0
    text = (f"The ensemble of {len(members)} scores {_pct(ensemble_acc)} against {_pct(best)} for its best member "
            f"({best_name}): {gain * 100:+.1f} points, " + ("within" if helps is None else "beyond")
            + f" the ±{noise * 100:.1f} points of noise of {test_size:,} test images.")
    if helps is False or helps is None:
        text += (" That contradicts the general lesson (an ensemble beats its best member)" if helps is False else
                 " No clear gain here")
        spread = best - worst
        text += (f": {worst_name} ({_pct(worst)}) is {spread * 100:.0f} points weaker, and averaging gives its "
                 "mistakes an equal vote." if spread >= 0.03 else
                 ": the members are so alike (same network, same data, few epochs) that they make the same "
                 "mistakes - averaging only helps where they disagree.")
    if len(set(member_epochs)) > 1:
        text += f" Not like-for-like: the members trained {' / '.join(map(str, sorted(set(member_epochs))))} epochs."
    return EnsembleVerdict(gain, noise, helps, text)


@dataclass(frozen=True)
class DataSizeVerdict:
    helped: bool | None  # more images, higher test accuracy (None: too few finished runs)
    gap_narrowed: bool | None  # the train - test gap of the largest set below the smallest's (None: unknown)
    text: str


def data_size_verdict(rows: Sequence[Mapping]) -> DataSizeVerdict:
    """The more-data lesson on finished sweep rows ({value: training images, test_acc, gap}) against the general
    lesson (more data: higher test accuracy, a smaller gap), saying why when the runs do not show it."""
    scored = [r for r in rows if r.get("test_acc") is not None]
    if len(scored) < 2:
        return DataSizeVerdict(None, None, "")
    small = min(scored, key=lambda r: r.get("value") or 0)
    large = max(scored, key=lambda r: r.get("value") or 0)
    if large["test_acc"] <= small["test_acc"]:
        return DataSizeVerdict(False, None, (
            "Here more data did not raise test accuracy, against the general lesson. With a fixed number of epochs "
            "the larger sets also get more optimizer steps - so this usually means the runs were too short to "
            "learn anything much, or the differences are within run-to-run noise: try more epochs."))
    gaps = small.get("gap") is not None and large.get("gap") is not None
    text = (f"From {small['value']:,} to {large['value']:,} images, test accuracy went from {_pct(small['test_acc'])} "
            f"to {_pct(large['test_acc'])}" + (f", and the train - test gap from {small['gap'] * 100:+.1f} to "
                                                f"{large['gap'] * 100:+.1f} points." if gaps else "."))
    narrowed = (large["gap"] < small["gap"]) if gaps else None
    if narrowed is False:
        text += (" The gap did not narrow here - honest, not a contradiction: with the same number of epochs the "
                 "small sets got far fewer optimizer steps, so they are still underfitting (look at their low train "
                 "accuracy) rather than memorizing. Train longer and the small sets race to high train accuracy "
                 "while their test accuracy stays put.")
    return DataSizeVerdict(True, narrowed, text)
