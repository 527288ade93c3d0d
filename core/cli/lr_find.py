"""`python -m core lr-find`: run the learning-rate range test on a preset and print the curve and suggestions."""

from __future__ import annotations

import argparse
import ctypes
import math
import sys
import time

from core.cli.common import add_config_args, config_from_args, print_json
from core.errors import ConfigError

# under the sketch's axis: the lab's rules in lower case, fastai's in upper case, the recommendation last (on top)
MARKS = {"steepest": "s", "minimum/10": "m", "descent 2/3": "d", "fastai valley": "V", "fastai slide": "S",
         "fastai minimum": "M", "fastai steep": "T", "recommended": "R"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lr-find", help="learning-rate range test: the loss while the LR grows, and suggested LRs")
    add_config_args(p)
    g = p.add_argument_group("range test")
    g.add_argument("--num-iter", type=int, default=100, metavar="N", help="steps (default 100)")
    g.add_argument("--start-lr", type=float, default=1e-7, metavar="X", help="first LR (default 1e-7)")
    g.add_argument("--end-lr", type=float, default=10.0, metavar="X", help="last LR (default 10)")
    g.add_argument("--mode", choices=["exp", "linear"], default="exp", help="LR growth (default exp: log-spaced)")
    g.add_argument("--beta", type=float, default=0.98, metavar="X", help="loss smoothing, in [0, 1) (default 0.98)")
    g.add_argument("--diverge", type=float, default=4.0, metavar="X",
                   help="stop when the smoothed loss exceeds X × the best (default 4)")
    g.add_argument("--val", action="store_true", help="record the loss on held-out test batches, not the training batch")
    g.add_argument("--val-batches", type=int, default=2, metavar="N", help="held-out batches for --val (default 2)")
    g.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU too, where it has bf16 in hardware (AMX: ~2x faster; other numerics)")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_lr_find)


def cmd_lr_find(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    import torch  # deferred, like the finder: the torch stack loads only when the command runs

    from core.train.lr_finder import LRFinder, check_range
    from core.train.lr_recommend import all_suggestions, recommend

    check_range(args.start_lr, args.end_lr, args.num_iter, args.mode)  # before loading any data
    _keep_freed_memory()
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    finder = LRFinder.from_config(config, start_lr=args.start_lr, end_lr=args.end_lr, num_iter=args.num_iter,
                                  mode=args.mode, beta=args.beta, diverge_factor=args.diverge, val_mode=args.val,
                                  val_batches=args.val_batches, data_root=args.data_dir, cpu_bf16=args.bf16)
    setup = time.perf_counter() - t0
    tty = sys.stderr.isatty() and not args.json
    try:
        while not finder.done:
            for p in finder.step(1):
                if tty:
                    sys.stderr.write(f"\rstep {p.step + 1}/{finder.num_iter}  lr {p.lr:.2e}  loss {p.loss:.4g}  "
                                     f"smoothed {p.smoothed:.4g}   ")
    finally:
        finder.close()
        if tty:
            sys.stderr.write("\r" + " " * 78 + "\r")
    suggestions = all_suggestions(finder.lrs, finder.smoothed, finder.num_iter)
    rec = recommend(finder.lrs, finder.smoothed, losses=finder.losses, beta=finder.beta, num_iter=finder.num_iter,
                    stop_reason=finder.stop_reason)
    if args.json:
        print_json({"lrs": finder.lrs, "losses": finder.smoothed, "raw_losses": finder.losses,
                    "suggestions": {k: {"lr": s.lr, "loss": s.loss, "reason": s.reason} for k, s in suggestions.items()},
                    "recommended": rec.to_dict(),
                    "stop_reason": finder.stop_reason, "seconds": finder.seconds, "setup_seconds": setup,
                    "steps": len(finder.points), "num_iter": finder.num_iter, "model": config.model.name,
                    "optimizer": config.optim.name, "config_lr": config.optim.lr, "batch_size": config.batch_size,
                    "dataset": finder.dataset_name, "device": str(finder.device), "val": args.val})
        return 0
    print(f"{config.model.name} on {finder.dataset_name}, {config.optim.name}, batch {config.batch_size}, "
          f"device {finder.device}: {finder.num_iter} steps, lr {args.start_lr:g} → {args.end_lr:g} ({args.mode})"
          + (", held-out loss" if args.val else ""))
    print(_table(finder.points))
    print(_sketch(finder.lrs, finder.smoothed, [*suggestions.values(), rec.as_suggestion()]))
    print(f"{finder.stop_reason} after {len(finder.points)} steps in {finder.seconds:.1f} s "
          f"(+{setup:.1f} s setup, {finder.seconds / max(1, len(finder.points)):.2f} s/step)")
    print(f"suggestions (the config's lr: {config.optim.lr:g}):")
    for name, s in suggestions.items():
        lr = f"{s.lr:.2e}" if s.lr is not None else "none"
        print(f"  {MARKS[name]} {name:<15}{lr:>10}  {s.reason}")
    if rec.lr is None:
        print(f"recommended: none - {rec.reason}")
    else:
        print(f"recommended: {rec.lr:.2g} ({rec.name}) - {rec.reason}")
    if rec.advice:
        print(f"  to do better: {rec.advice}")
    if rec.lr is not None and not args.config:
        data = "".join(f" --{flag.replace('_', '-')} {getattr(args, flag)}" for flag in ("dataset", "subset")
                       if getattr(args, flag) is not None)
        print(f"try: python -m core train --preset {args.preset}{data} --lr {rec.lr:.2g} --schedule onecycle")
    return 0


def _keep_freed_memory() -> None:
    """glibc: serve big tensors from the heap and keep freed memory, instead of mmap + munmap per tensor.

    A CPU step of the cnn preset frees and re-allocates ~120 MB (the 16.8M-weight FC layer's gradient,
    activations); as fresh mmap pages that is ~30,000 page faults per step, 15-25% of the step's time on the
    2-core machine it was measured on. The CLI is a short-lived process, so keeping its peak memory costs
    nothing; library code (the app's process) leaves the allocator alone. Elsewhere (no mallopt) a no-op."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
        m_mmap_max, m_trim_threshold = -4, -1  # from glibc's malloc.h
        mallopt(m_mmap_max, 0)
        mallopt(m_trim_threshold, 2**30)
    except Exception:  # noqa: BLE001 - a speed-up only; any platform without it just runs slower
        pass


def _table(points: list, rows: int = 12) -> str:
    """Every k-th point (the last one always), as lr / raw loss / smoothed loss."""
    if not points:
        return "(no points)"
    k = max(1, math.ceil(len(points) / rows))
    chosen = points[::k] + ([points[-1]] if (len(points) - 1) % k else [])
    lines = [f"{'step':>5} {'lr':>10} {'loss':>10} {'smoothed':>10}"]
    lines += [f"{p.step:>5} {p.lr:>10.2e} {p.loss:>10.4g} {p.smoothed:>10.4g}" for p in chosen]
    return "\n".join(lines)


def _sketch(lrs: list[float], smoothed: list[float], suggestions: list, width: int = 64, height: int = 12) -> str:
    """An ASCII plot of the smoothed loss against log10(LR); suggestions marked under the axis (MARKS; a later
    one in the list wins a shared column)."""
    if len(lrs) < 2:
        return ""
    x0, x1 = math.log10(lrs[0]), math.log10(lrs[-1])
    lo = min(smoothed)
    hi = max(smoothed[0], lo) + 0.25 * (max(smoothed[0], lo) - lo)  # the blow-up at the end is clipped
    hi = hi if hi > lo else lo + 1.0

    def col(lr: float) -> int:
        return min(width - 1, max(0, round((math.log10(lr) - x0) / max(1e-12, x1 - x0) * (width - 1))))

    grid = [[" "] * width for _ in range(height)]
    for lr, v in zip(lrs, smoothed, strict=True):
        row = round((hi - min(v, hi)) / (hi - lo) * (height - 1))
        grid[row][col(lr)] = "^" if v > hi else "*"
    axis = [" "] * width
    for s in suggestions:
        if s.lr is not None and lrs[0] <= s.lr <= lrs[-1]:
            axis[col(s.lr)] = MARKS[s.name]
    label = [f"{hi:>9.3g} |", *(["          |"] * (height - 2)), f"{lo:>9.3g} |"]
    lines = [lab + "".join(r) for lab, r in zip(label, grid, strict=True)]
    lines.append("          +" + "-" * width)
    lines.append("           " + "".join(axis))
    left, right = f"{lrs[0]:.0e}", f"{lrs[-1]:.0e}"
    lines.append("           " + left + " " * max(1, width - len(left) - len(right)) + right + "  (lr, log scale)")
    return "\n".join(lines)
