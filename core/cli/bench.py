"""`python -m core bench`: how fast is the lab here, against what a student writes (CPU), or on a GPU (--gpu).

CPU (default): bench/cpu.py - augmentation alone and end-to-end training images/s, lab vs. the PIL +
DataLoader baseline, alternating repetitions, medians and ratios, the machine and its measured matmul rate.
--gpu: bench/gpu.py - CIFAR-100-shaped epochs on the GPU (the same as scripts/gpu_bench.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed of the lab vs. a student's PIL + DataLoader pipeline (--gpu: GPU epochs)")
    p.add_argument("--quick", action="store_true", help="CPU: base CNN only, fewer steps (~2 min on 2 cores); "
                                                        "GPU: a ~30-second smoke run")
    p.add_argument("--tiny", action="store_true", help="seconds: tiny batches, one repetition (checks it works)")
    g = p.add_argument_group("CPU comparison")
    g.add_argument("--models", metavar="A,B", help="base, wide, resnet18 (default all three; --quick: base)")
    g.add_argument("--reps", type=int, metavar="N", help="alternating repetitions per arm (default 3)")
    g.add_argument("--steps", type=int, metavar="N", help="timed training steps per run (default per model)")
    g.add_argument("--batch-size", type=int, metavar="N", help="default: each preset's (256)")
    g.add_argument("--workers", type=int, metavar="N", help="baseline DataLoader workers (default 2)")
    g.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    g.add_argument("--no-bf16", action="store_true", help="skip the lab-with-CPU-bf16 arm")
    g.add_argument("--json", action="store_true", help="print the whole report as one JSON object")
    g.add_argument("--save", metavar="FILE", help="also write the JSON report to FILE")
    g = p.add_argument_group("GPU suite (--gpu; also scripts/gpu_bench.py)")
    g.add_argument("--gpu", action="store_true", help="time CIFAR-100-shaped epochs on the GPU instead")
    g.add_argument("--best-scratch", action="store_true", help="GPU: only the best-scratch preset, all epochs")
    g.add_argument("--budget", type=float, metavar="S", help="GPU: best-scratch wall-time budget, seconds")
    g.add_argument("--items", metavar="A,B", help="GPU: which items (default all)")
    g.add_argument("--no-compile", action="store_true", help="GPU: skip the torch.compile item")
    g.add_argument("--device", default="auto", help="GPU suite device (default auto)")
    g.add_argument("--out", metavar="FILE", help="GPU: JSON path (default $OUT/gpu_bench.json or ./bench-results/)")
    p.set_defaults(func=cmd_bench)


# No OpenMP policy of its own: core/__init__.py sets OMP_WAIT_POLICY=PASSIVE (unless exported) for every
# `python -m core` command, the trainers included, so the bench measures under the policy runs train with. On a
# quiet CPU the passive policy costs nothing measurable on the 128-wide CNN's step (bf16 146 vs 145 img/s, fp32
# 78.5 vs 80.4 img/s ACTIVE, AMD EPYC Zen 4, 2 cores); on a busy one, spinning threads cost up to 40x a batch.


def cmd_bench(args: argparse.Namespace) -> int:
    import torch  # deferred: the torch stack loads only when the command runs (after the OpenMP restart above)

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.gpu:  # bench/ lives outside core: core imports a benchmark only to run it
        from bench import gpu as bench_gpu

        return bench_gpu.main_from_args(args)
    from bench import cpu as bench_cpu  # deferred: as bench.gpu above

    plan = bench_cpu.Plan.named(quick=args.quick, tiny=args.tiny)
    known = tuple(bench_cpu.bench_models())
    if args.models:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        bad = [m for m in models if m not in known]
        if bad or not models:
            raise ConfigError(f"--models: unknown {', '.join(bad) or '(none given)'}; choose from {', '.join(known)}")
        plan.models = models
    for name in ("reps", "batch_size", "workers"):
        value = getattr(args, name)
        if value is not None:
            if value < (0 if name == "workers" else 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be >= {0 if name == 'workers' else 1}, got {value}")
            setattr(plan, name, value)
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {args.steps}")
        plan.steps = {m: args.steps for m in known}
    if args.no_bf16:
        plan.bf16 = False
    report = bench_cpu.run(plan)
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print(bench_cpu.format_report(report))
    return 0
