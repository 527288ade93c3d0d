"""Does the LR finder's recommendation train better? For each optimizer: one range test on the `cnn` preset, then
a short training run at each suggestion (the lab's recommendation, the lab's own rules, fastai 2.8's four) beside
the report's fixed 1e-4, all with the same budget (images, epochs, schedule, seed); optionally a grid of LRs for
context. Writes a markdown table (docs/LR_FINDER.md keeps one).

    nice -n 10 python3 scripts/lr_bench.py --data folder:/work/cifar10 --subset 2000 --epochs 3
    python3 scripts/lr_bench.py --data synthetic --subset 200 --test-subset 100 --epochs 1 --num-iter 30  # seconds

Training results are cached in --cache (JSON, keyed by everything that defines a run), so a rerun after a change
to the rules only trains the LRs it has not trained yet. Runs train in this process through core.train.engine
(no run library), at the LR the page would apply: the suggestion rounded to 2 significant digits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.loading import load_dataset  # noqa: E402
from core.lessons.presets import preset_config  # noqa: E402
from core.train.engine import train  # noqa: E402
from core.train.events import Finished  # noqa: E402
from core.train.lr_finder import LRFinder  # noqa: E402
from core.train.lr_recommend import all_suggestions, recommend  # noqa: E402

REPORT_LR = 1e-4


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_key(args: argparse.Namespace, opt: str, lr: float, schedule: str, seed: int) -> str:
    return f"{args.preset}|{args.data}|{args.subset}|{args.test_subset}|{args.epochs}|{opt}|{schedule}|{lr:.3g}|{seed}"


def train_once(args: argparse.Namespace, ds, opt: str, lr: float, schedule: str, seed: int,
               cache: dict) -> dict:
    key = run_key(args, opt, lr, schedule, seed)
    if key in cache:
        return cache[key]
    cfg = preset_config(args.preset, dataset=args.data, subset=args.subset, test_subset=args.test_subset,
                        epochs=args.epochs, optimizer=opt, lr=lr, schedule=schedule, seed=seed)
    t0 = time.perf_counter()
    end: Finished | None = None
    for event in train(cfg, dataset=ds):
        if isinstance(event, Finished):
            end = event
    assert end is not None
    result = {"final": end.test_acc, "best": end.best_test_acc, "status": end.status,
              "seconds": round(time.perf_counter() - t0, 1)}
    cache[key] = result
    Path(args.cache).write_text(json.dumps(cache, indent=1))
    print(f"  trained {opt} lr {lr:.3g} {schedule} seed {seed}: best {result['best']} ({result['status']}, "
          f"{result['seconds']} s)", file=sys.stderr, flush=True)
    return result


def range_test(args: argparse.Namespace, ds, opt: str) -> dict:
    cfg = preset_config(args.preset, dataset=args.data, subset=args.subset, test_subset=args.test_subset,
                        optimizer=opt, batch_size=args.finder_batch)
    t0 = time.perf_counter()
    finder = LRFinder.from_config(cfg, ds, num_iter=args.num_iter, start_lr=args.start_lr, end_lr=args.end_lr)
    finder.run()
    rec = recommend(finder.lrs, finder.smoothed, losses=finder.losses, beta=finder.beta, num_iter=finder.num_iter,
                    stop_reason=finder.stop_reason)
    sugg = all_suggestions(finder.lrs, finder.smoothed, finder.num_iter)
    print(f"  range test {opt}: {len(finder.points)} steps, {finder.stop_reason}, {time.perf_counter() - t0:.0f} s",
          file=sys.stderr, flush=True)
    return {"lrs": finder.lrs, "smoothed": finder.smoothed, "stop_reason": finder.stop_reason, "rec": rec,
            "suggestions": sugg}


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def bench_optimizer(args: argparse.Namespace, ds, opt: str, cache: dict, seeds: list[int]) -> list[str]:
    test = range_test(args, ds, opt)
    json_path = Path(args.cache).with_suffix(f".{opt}.curve.json")
    json_path.write_text(json.dumps({k: test[k] for k in ("lrs", "smoothed", "stop_reason")}))
    rows: list[tuple[str, float | None, str]] = []
    rec = test["rec"]
    rows.append((f"**recommended** ({rec.name})", rec.lr, args.schedule))
    rows += [(name, s.lr, args.schedule) for name, s in test["suggestions"].items()]
    rows.append(("report's 1e-4", REPORT_LR, args.schedule))
    rows.append(("report's 1e-4, constant (as the report)", REPORT_LR, "constant"))
    rows += [(f"grid {lr:g}", lr, args.schedule) for lr in (args.grid_sgd if opt == "sgd" else args.grid_adam)]
    lines = [f"| {opt} | pick | LR | " + " | ".join(f"best test acc, seed {s}" for s in seeds) + " | mean |",
             "|---|---|---|" + "---|" * len(seeds) + "---|"]
    for name, lr, schedule in rows:
        if lr is None:
            reason = rec.reason if name.startswith("**recommended") else test["suggestions"][name].reason
            lines.append(f"| {opt} | {name} | none | {reason} |" + " |" * len(seeds))
            continue
        lr = float(f"{lr:.2g}")  # what "apply & queue" trains
        accs = [train_once(args, ds, opt, lr, schedule, s, cache) for s in seeds]
        best = [a["best"] for a in accs]
        mean = sum(b or 0.0 for b in best) / len(best)
        flag = "" if all(a["status"] == "completed" for a in accs) else " (" + ", ".join(a["status"] for a in accs) + ")"
        lines.append(f"| {opt} | {name}{' · ' + schedule if schedule != args.schedule else ''} | {lr:g} | "
                     + " | ".join(fmt(b) for b in best) + f" | {fmt(mean)}{flag} |")
    if rec.advice:
        lines.append(f"\n{opt}: the recommendation's advice: {rec.advice}")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="folder:/work/cifar10")
    p.add_argument("--preset", default="cnn")
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--test-subset", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--schedule", default="onecycle", help="the training runs' schedule (the page's default)")
    p.add_argument("--optimizers", default="adam,sgd")
    p.add_argument("--seeds", default="0")
    p.add_argument("--num-iter", type=int, default=100)
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--finder-batch", type=int, default=128, help="the page's default batch for the range test")
    p.add_argument("--grid-adam", type=lambda s: [float(v) for v in s.split(",") if v], default=[])
    p.add_argument("--grid-sgd", type=lambda s: [float(v) for v in s.split(",") if v], default=[])
    p.add_argument("--cache", default="bench-results/lr_bench.json")
    p.add_argument("--out", help="write the markdown table here too")
    p.add_argument("--threads", type=int)
    args = p.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    cache = json.loads(Path(args.cache).read_text()) if Path(args.cache).exists() else {}
    ds = load_dataset(args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    out = [f"`{' '.join(['python3', 'scripts/lr_bench.py', *sys.argv[1:]])}` on {cpu_name()}; {args.preset} preset, "
           f"{args.subset} training / {args.test_subset} test images of {args.data}, {args.epochs} epochs, "
           f"{args.schedule} schedule peaking at the LR, batch from the preset; range test {args.num_iter} steps "
           f"{args.start_lr:g} → {args.end_lr:g} at batch {args.finder_batch}.", ""]
    for opt in args.optimizers.split(","):
        out += bench_optimizer(args, ds, opt, cache, seeds) + [""]
    out.append(f"({time.perf_counter() - t0:.0f} s in all, cached runs not retrained)")
    text = "\n".join(out)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
