"""CIFAR Lab's engine room: data, augmentation, models, training, runs and analysis — pure Python + PyTorch.

Nothing in this package imports streamlit (tests/core/test_purity.py enforces it), so every piece can be
driven from the CLI (`python -m core`), from a notebook, or from a test.
"""

__version__ = "0.1.0"
