"""Where a training step's time goes: torch.profiler over the engine's own steps, grouped into op families.

`profile_steps(config, dataset)` runs core.train.engine.train unchanged (as bench.common.time_engine does), starts
the profiler at the Step event that ends the warm-up and stops it after `steps` more, so the set-up, the first
step's one-off costs and the end-of-epoch evaluation stay out. `family_shares` groups the ops' self time: the
matmul-shaped work the CPU is fast at (convolution, linear) against element-wise work, casts and the optimizer.
The table `core bench` prints from it says where the next speed-up has to come from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from torch.profiler import ProfilerActivity, profile

from bench.common import cpu_bf16
from core.config import TrainConfig
from core.data.dataset import Dataset
from core.train import engine
from core.train import events as ev

# (family, substrings of the op name), first match wins: the order matters ("convolution_backward" is a
# convolution, not an autograd wrapper; "max_pool2d_with_indices_backward" is pooling).
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("convolution forward + backward", ("aten::convolution", "aten::mkldnn_convolution", "conv2d", "cudnn_conv")),
    ("linear (mm, addmm)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul")),
    ("ReLU forward + backward", ("clamp_min", "threshold_backward", "aten::relu")),
    ("dtype copies (casts, layout)", ("aten::copy_", "aten::_to_copy", "aten::to", "aten::contiguous")),
    ("pooling forward + backward", ("pool",)),
    ("batch norm", ("batch_norm",)),
    ("optimizer", ("adam", "sgd", "_foreach", "Optimizer.step")),
    ("zeroing (fill_, zero_grad)", ("fill_", "zero_")),
    ("augmentation and loss", ("index", "flip", "cross_entropy", "log_softmax", "nll_loss", "gather", "where")),
)
OTHER = "everything else (autograd, bookkeeping)"


def family(op: str) -> str:
    """The family of one profiler key, e.g. 'aten::threshold_backward' -> 'ReLU forward + backward'."""
    low = op.lower()
    for name, needles in FAMILIES:
        if any(n.lower() in low for n in needles):
            return name
    return OTHER


def family_shares(ops: Iterable[tuple[str, float]]) -> dict[str, float]:
    """(op name, self time) pairs -> {family: share of the total}, largest first; empty when nothing was timed."""
    totals: dict[str, float] = {}
    for op, t in ops:
        totals[family(op)] = totals.get(family(op), 0.0) + max(0.0, t)
    whole = sum(totals.values())
    if whole <= 0:
        return {}
    return dict(sorted(((k, v / whole) for k, v in totals.items()), key=lambda kv: -kv[1]))


def profile_steps(config: TrainConfig, dataset: Dataset, *, bf16_on_cpu: bool | None, warmup: int = 1,
                  steps: int = 2) -> dict[str, float]:
    """Profile `steps` steps of the engine's training loop after `warmup` untimed ones; the family shares."""
    config = replace(config, log_every=1)  # a Step event after every step: the profiler starts and stops there
    prof = profile(activities=[ProfilerActivity.CPU])
    started = False
    with cpu_bf16(bf16_on_cpu):
        run = engine.train(config, dataset=dataset)
        try:
            for e in run:
                if isinstance(e, ev.Step) and e.step == warmup:
                    prof.start()
                    started = True
                elif isinstance(e, ev.Finished) or (isinstance(e, ev.Step) and started and e.step >= warmup + steps):
                    break
        finally:
            if started:
                prof.stop()
            run.close()
    if not started:
        return {}
    return family_shares((k.key, float(k.self_cpu_time_total)) for k in prof.key_averages())


def format_profile(shares_by_arm: dict[str, dict[str, float]]) -> list[str]:
    """A table: one row per family, one column per arm ('fp32', 'bf16'), shares in percent."""
    arms = list(shares_by_arm)
    if not arms:
        return []
    fams = list(dict.fromkeys(f for arm in arms for f in shares_by_arm[arm]))
    rows = [("op family (share of the step's CPU time)", *arms)]
    rows += [(f, *(f"{shares_by_arm[a].get(f, 0.0):.0%}" for a in arms)) for f in fams]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows]


def matmul_share(shares: dict[str, float]) -> float:
    """The convolution and linear families together: the part of the step that runs at the matmul rate."""
    return shares.get(FAMILIES[0][0], 0.0) + shares.get(FAMILIES[1][0], 0.0)
