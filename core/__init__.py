"""CIFAR Lab's engine room: data, augmentation, models, training, runs and analysis — pure Python + PyTorch.

Nothing in this package imports streamlit (tests/core/test_purity.py enforces it), so every piece can be
driven from the CLI (`python -m core`), from a notebook, or from a test.
"""

import os

# OpenMP threads that spin while waiting steal the CPU from everything else on the machine (the Streamlit server,
# a second trainer, the teacher's browser): on a busy 2-core box a batch took 118 ms spinning, 2.7 ms sleeping.
# Set before torch is imported by any core module; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]):
    """(__getattr__, __dir__) for a package whose public names live in its submodules, imported on first use.

    `exports` maps a submodule ("engine") to the names it defines. A package __init__ that imported every
    submodule eagerly made `import core.runs.store` pay for torch (10 s on a loaded 2-core box) because Python
    runs the package's __init__ first; this keeps `from core.runs import open_library` working without that.
    """
    import importlib

    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # cached: the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(where) | set(importlib.import_module(package).__dict__))

    return __getattr__, __dir__
