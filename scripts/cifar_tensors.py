"""Convert an image-folder dataset (CIFAR-10's JPEG copy) into one tensor file of uint8 tensors.

    python3 scripts/cifar_tensors.py folder:/work/cifar10 cifar10.pt

What the file holds and how it is read back: bench/cifar_tensors.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: `core` is next to scripts/

from bench.cifar_tensors import main  # noqa: E402 - after the path is set

if __name__ == "__main__":
    sys.exit(main())
