"""Turn scripts/measure_lessons.py's JSON lines into core/lessons/class_budgets.json and print docs/LESSONS.md's
table: one row per comparison of the report and budget, with the seeds, the measured ordering and whether it
matches the report.

    python scripts/lessons_table.py lessons-2000x3.jsonl [lessons-5000x6.jsonl ...] > table.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.lessons.class_budgets import (  # noqa: E402
    COMPARISONS,
    DATA,
    first_budget_showing,
    from_measurements,
    judgements,
    reload,
)


def main(paths: list[str]) -> int:
    lines = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    DATA.write_text(json.dumps(from_measurements(lines), indent=1) + "\n", encoding="utf-8")
    reload()
    print("| comparison (page) | the report | budget (images × epochs) | seeds | baseline → the report's winner "
          "(best test acc, mean ± sd) | gap | noise | measured ordering | matches the report? | train acc |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in COMPARISONS:
        js = [j for j in judgements(c) if j.epochs in (1, 3, 6) or j.epochs == max(k.epochs for k in judgements(c))]
        if not js:
            print(f"| {c.title} ({c.page}) | {c.report} | not measured | | | | | | | |")
        for j in js:
            print(f"| {c.title} ({c.page}) | {c.report} | {j.train_images:,} × {j.epochs} | {j.seeds} | "
                  f"{c.first} {j.first_mean:.1%} → {c.second} {j.second_mean:.1%} (sd ≤ {j.spread:.1%}) | "
                  f"{j.gap * 100:+.1f} | ±{j.noise * 100:.1f} | {j.verdict} | {'yes' if j.matches_report else 'no'} | "
                  f"{j.first_train:.0%} → {j.second_train:.0%} |")
        shows = first_budget_showing(c)
        print(f"| | | **first budget showing the report's order:** "
              f"{f'{shows.train_images:,} × {shows.epochs}' if shows else 'none measured'} | | | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
