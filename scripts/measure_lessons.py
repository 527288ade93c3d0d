"""Measure the report's comparisons at a class's budget on real data: each preset trained per seed with the
report's own settings cut to `--subset` images x `--epochs`, its per-epoch curves appended to a JSON-lines file.

    nice -n 19 python scripts/measure_lessons.py --data folder:/path/to/cifar10 --subset 2000 --test-subset 1000 \
        --epochs 3 --seeds 0 1 2 --out lessons-2000x3.jsonl

Runs are trained in a child `python -m core train --json --no-record` each (one at a time, nothing recorded in
the run library); a run already in --out (same preset, seed, subset, epochs) is skipped, so an interrupted
measurement goes on where it stopped. core/lessons/budgets.py keeps the results as data; docs/LESSONS.md
tabulates them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every preset a comparison of the report uses (core/lessons/budgets.py: COMPARISONS), cheapest first.
PRESETS = ("mlp", "cnn", "cnn-128", "cnn-bn", "cnn-flip", "cnn-flip-crop", "cnn-bn-fc8192", "cnn-bn-dropout",
           "cnn-sgd")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def done_keys(out: Path) -> set[tuple]:
    if not out.exists():
        return set()
    keys = set()
    for line in out.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            keys.add((r["preset"], r["seed"], r["subset"], r["epochs"]))
    return keys


def train_one(preset: str, seed: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "core", "train", "--preset", preset, "--dataset", args.data, "--subset",
           str(args.subset), "--test-subset", str(args.test_subset), "--epochs", str(args.epochs), "--seed",
           str(seed), "--json", "--no-record"]
    started = time.time()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    epochs = [e for e in events if e.get("event") == "epoch"]
    finished = next((e for e in events if e.get("event") == "finished"), {})
    return {"preset": preset, "seed": seed, "subset": args.subset, "test_subset": args.test_subset,
            "epochs": args.epochs, "status": finished.get("status", f"exit {out.returncode}"),
            "test_acc": [e.get("test_acc") for e in epochs], "train_acc": [e.get("train_acc") for e in epochs],
            "train_loss": [e.get("train_loss") for e in epochs], "wall_s": round(time.time() - started, 1),
            "cpu": cpu_name(), "command": " ".join(cmd[1:]), "stderr_tail": out.stderr[-300:] if out.returncode else ""}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--test-subset", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    done = done_keys(args.out)
    for seed in args.seeds:  # a seed of every preset before the next seed: a partial file is still balanced
        for preset in args.presets:
            if (preset, seed, args.subset, args.epochs) in done:
                continue
            row = train_one(preset, seed, args)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{preset} seed {seed}: {row['status']} test {row['test_acc']} ({row['wall_s']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
