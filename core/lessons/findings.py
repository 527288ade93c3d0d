"""What the lab's own runs say next to the report: for each preset with a baseline, does the change help here
as it did in the report? Pages show these findings, so the lab teaches what the data shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.lessons.presets import PRESETS, REPORT, Preset

NOISE = 0.01  # gains within ±1 point are called "no clear difference": run-to-run noise of short runs


@dataclass(frozen=True)
class Finding:
    preset: str
    baseline: str
    report_gain: float | None  # report accuracy of preset - of baseline (fraction), None if unknown
    lab_gain: float  # lab accuracy of preset - of baseline
    verdict: str  # "agrees" | "disagrees" | "unclear"
    message: str  # one or two sentences for the page


def _word(gain: float) -> str:
    if abs(gain) < NOISE:
        return "no clear difference"
    return f"{gain * 100:+.1f} points"


def compare_with_report(lab_acc: Mapping[str, float], presets: Mapping[str, Preset] = PRESETS, *,
                        why: Mapping[str, str] | None = None, qualify: Mapping[str, str] | None = None
                        ) -> list[Finding]:
    """One Finding per preset whose baseline also has a lab result. `lab_acc`: preset -> best test accuracy.
    `why`: preset -> the explanation of a disagreement measured on the runs (instead of the preset's caveat);
    `qualify`: preset -> a sentence appended to its message (e.g. the two runs were not trained alike)."""
    out = []
    for name, acc in lab_acc.items():
        p = presets.get(name)
        if p is None or p.baseline is None or p.baseline not in lab_acc:
            continue
        base = presets[p.baseline]
        lab_gain = acc - lab_acc[p.baseline]
        report_gain = (p.report_acc - base.report_acc) if p.report_acc is not None and base.report_acc is not None \
            else None
        lead = f"{p.title} vs {base.title}: the report {_word(report_gain) if report_gain is not None else 'has no number'}"
        lead += f", your runs {_word(lab_gain)}."
        if report_gain is None or abs(lab_gain) < NOISE:
            verdict = "unclear"
            message = lead + (" Too close to call: a different seed could change the order." if report_gain
                              is not None else "")
        elif (lab_gain > 0) == (report_gain > 0):
            verdict, message = "agrees", lead + " Same direction as the report."
        else:
            verdict = "disagrees"
            message = lead + " Your data disagrees with the report. " + ((why or {}).get(name) or p.caveat or
                                                                        "Short runs and subsets can reverse small effects.")
        if (qualify or {}).get(name):
            message += " " + qualify[name]
        out.append(Finding(name, p.baseline, report_gain, lab_gain, verdict, message))
    return out


def compares_digits(dataset: str) -> bool:
    """Whether a run on `dataset` may be held against the report's accuracy digit for digit: only on the
    report's own dataset (CIFAR-100). On any other the numbers measure another task (10 classes are easier than
    100; a folder is another problem altogether): only the trend against a baseline run on the same data compares."""
    return dataset == REPORT.data.dataset
