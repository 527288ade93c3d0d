"""Where does the base CNN's GPU epoch go? Times the same CIFAR-100-shaped epoch of the `cnn-flip-crop` preset
under a few engine variants, profiles 30 steps of the default, and times best-scratch at 40 epochs.

    PYTHONUNBUFFERED=1 python3 scripts/gpu_variants.py           # on a GPU machine, ~1.5 minutes
    python3 scripts/gpu_variants.py --tiny --device cpu          # seconds: does it still run?

Results: a table on stdout and $OUT/gpu_variants.json (else ./bench-results/). docs/PERFORMANCE.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench import common as bench  # noqa: E402
from core.lessons.presets import preset_config  # noqa: E402
from core.train import engine, setup


def epoch_seconds(cfg, ds) -> dict:
    """Run cfg for its epochs on ds; the last epoch's seconds (training + evaluation) and training img/s."""
    t = bench.time_engine(cfg, ds, warmup_steps=cfg.log_every, steps=None)
    last = t.epochs[-1] if t.epochs else {}
    return {"status": t.status, "epoch_s": last.get("seconds"), "train_img_s": last.get("images_per_s"),
            "first_epoch_s": t.epochs[0]["seconds"] if t.epochs else None, "notes": t.notes}


def profile_steps(cfg, ds, steps: int) -> list[dict]:
    """The top CUDA (or CPU) ops of `steps` training steps of the default engine."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    cfg = replace(cfg, epochs=1)
    run = engine.train(cfg, dataset=ds)
    seen = 0
    with profile(activities=acts) as prof:
        for e in run:
            if getattr(e, "event", "") == "step":
                seen = e.step
                if seen >= steps:
                    break
    run.close()
    def self_time(a) -> float:  # device time where there is a GPU (the attribute was renamed across versions)
        if torch.cuda.is_available():
            return float(getattr(a, "self_device_time_total", None) or getattr(a, "self_cuda_time_total", 0) or 0)
        return float(a.self_cpu_time_total)

    rows = []
    for a in sorted(prof.key_averages(), key=self_time, reverse=True)[:15]:
        rows.append({"op": a.key[:60], "count": a.count, "self_ms": self_time(a) / 1e3,
                     "cpu_total_ms": a.cpu_time_total / 1e3})
    steps_ms = sum(float(a.self_cpu_time_total) for a in prof.key_averages()) / 1e3
    rows.append({"op": "(all ops, CPU self time)", "count": steps, "self_ms": steps_ms, "cpu_total_ms": steps_ms})
    return rows


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    dev = setup.resolve_device(args.device)
    n_train, n_test, epochs = (512, 256, 2) if args.tiny else (50_000, 10_000, 2)
    ds = bench.synthetic_dataset(n_train, n_test, 100, seed=0, name="cifar100-shaped")
    base = replace(preset_config("cnn-flip-crop"), device=str(dev), epochs=epochs)
    out: dict = {"device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
                 "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "variants": {}}
    variants = {
        "default (bf16, channels-last, log every 10)": {},
        "log every 100 steps": {"log_every": 100},
        "no channels-last": {"channels_last": False},
        "fp32 (no autocast)": {"amp": False},
        "batch 512 (not the report's)": {"batch_size": 512},
    }
    for name, change in variants.items():
        t0 = time.perf_counter()
        try:
            out["variants"][name] = epoch_seconds(replace(base, **change), ds)
        except Exception as e:  # noqa: BLE001 - one broken variant must not cost the others
            out["variants"][name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"[{time.perf_counter() - t0:5.1f} s] {name}: {out['variants'][name]}", flush=True)
    try:
        out["profile"] = profile_steps(replace(base, log_every=10), ds, steps=30 if not args.tiny else 4)
        for r in out["profile"]:
            print(f"  {r['op']:<60} x{r['count']:<5} self {r['self_ms']:8.2f} ms  cpu {r['cpu_total_ms']:8.2f} ms")
    except Exception as e:  # noqa: BLE001
        out["profile_error"] = f"{type(e).__name__}: {e}"
        print("profile failed:", out["profile_error"])
    try:
        bs = replace(preset_config("best-scratch"), device=str(dev), epochs=40 if not args.tiny else 1)
        t0 = time.perf_counter()
        r = bench.time_engine(bs, ds, warmup_steps=bs.log_every, steps=None)
        out["best_scratch_40"] = {"wall_s": time.perf_counter() - t0, "epochs": len(r.epochs), "status": r.status,
                                  "epoch_s": r.epochs[-1]["seconds"] if r.epochs else None}
        print("best-scratch, 40 epochs:", out["best_scratch_40"], flush=True)
    except Exception as e:  # noqa: BLE001
        out["best_scratch_error"] = f"{type(e).__name__}: {e}"
        print("best-scratch failed:", out["best_scratch_error"])
    folder = Path(os.environ.get("OUT") or "bench-results")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpu_variants.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
