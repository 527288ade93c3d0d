"""GPU benchmark of the lab's engine: CIFAR-100-shaped epochs (base CNN, wide CNN, ResNet18 at 32 and 224, LR
finder, best-scratch, torch.compile), table on stdout, JSON in $OUT/gpu_bench.json (else ./bench-results/).

    PYTHONUNBUFFERED=1 python3 scripts/gpu_bench.py            # everything, ~3 minutes on one H100
    python3 scripts/gpu_bench.py --quick                         # ~30-second smoke run
    python3 scripts/gpu_bench.py --best-scratch --budget 150     # can best-scratch do all its epochs in 2 min?
    python3 scripts/gpu_bench.py --tiny --device cpu             # seconds: does every item still work?

Imports only core modules that need nothing beyond torch/torchvision (see bench/gpu.py for what is timed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: `core` is next to scripts/

from bench import gpu as bench_gpu  # noqa: E402 - after the path is set


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_bench.py", description=__doc__.split("\n\n")[0])
    bench_gpu.add_args(p)
    return bench_gpu.main_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
