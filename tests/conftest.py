"""Suite-wide settings: one intra-op thread per process.

Tests use tiny tensors, and several processes run at once (trainer subprocesses, the app under test); with
more than one OpenMP thread each, they spin against each other and a 1-second test takes 10.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by every subprocess the tests start

import torch  # noqa: E402 - after the environment is set

torch.set_num_threads(1)
