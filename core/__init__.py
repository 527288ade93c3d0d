"""CIFAR Lab's engine room: data, augmentation, models, training, runs and analysis — pure Python + PyTorch.

Nothing in this package imports streamlit (tests/core/test_purity.py enforces it), so every piece can be
driven from the CLI (`python -m core`), from a notebook, or from a test. Names are imported from the module that
defines them (`from core.runs.library import open_library`); package __init__s hold only their docstring.
"""

import os

# OpenMP threads that spin while waiting steal the CPU from everything else on the machine (the Streamlit server,
# a second trainer, the teacher's browser): on a busy 2-core box a batch took 118 ms spinning, 2.7 ms sleeping.
# Set before torch is imported by any core module; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
