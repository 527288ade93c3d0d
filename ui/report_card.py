"""The report card's rows as one markdown table per section: the report's number beside the lab's best run.

One element per section instead of a grid of columns: a fresh browser draws it quickly (a class of students
opening the lab at once shares the server's CPU with nobody but its own devices; see docs/PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.lessons.presets import Preset
from core.runs.records import RunRecord
from ui.layout import pct
from ui.run_panel import STATUS_ICON, fmt_seconds


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: no pipes, no line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")


def run_summary(run: RunRecord | None) -> str:
    if run is None:
        return ":gray[not run yet on this dataset]"
    return (f"{STATUS_ICON.get(run.status, '')} {run.status} · {run.epochs_done}/{run.epochs} epochs · "
            f"{run.train_size or 0:,} images · {run.device} · {fmt_seconds(run.seconds)}")


def report_card_table(presets: Sequence[Preset], best: Mapping[str, RunRecord]) -> str:
    """A markdown table: experiment (and its lesson), the report's accuracy, the lab's best, the lab's run."""
    lines = ["| experiment | report | lab best | the lab's run |", "|:---|---:|---:|:---|"]
    for p in presets:
        run = best.get(p.name)
        lab = pct(run.best_test_acc, 0) if run else "—"
        lines.append(f"| **{_cell(p.title)}** :small[{_cell(p.lesson)}] | **{_cell(p.report_label)}** | "
                     f"**{lab}** | {_cell(run_summary(run))} |")
    return "\n".join(lines)
