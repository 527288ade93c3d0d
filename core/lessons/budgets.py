"""The budget at which the report's ordering appears, measured rather than asserted: per-epoch test accuracy of
two presets trained on the same data with the report's optimizer, and where the second overtakes the first.

MEASURED holds curves recorded on real CIFAR-10 (the command and CPU are kept with them); `crossover` reads any
pair of curves, so a page can use the measurement or the runs on screen alike. With a constant learning rate
(the report's Adam 1e-4), epoch k of a 20-epoch run is a k-epoch run, so one run per preset gives every budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.lessons.findings import NOISE


@dataclass(frozen=True)
class Measured:
    first: str  # preset that wins small budgets
    second: str  # preset the report says wins
    dataset: str
    train_images: int
    test_images: int
    first_test: tuple[float, ...]  # test accuracy after epoch 1, 2, ...
    second_test: tuple[float, ...]
    first_train: tuple[float, ...]
    second_train: tuple[float, ...]
    command: str
    machine: str


@dataclass(frozen=True)
class Crossover:
    epoch: int | None  # first budget (epochs) at which `second`'s best so far beats `first`'s; None: never here
    clear_epoch: int | None  # first budget at which it beats it by more than the noise
    noise: float
    first_best: float  # first's best within the measured epochs, and when
    first_best_epoch: int
    second_at_end: float
    epochs: int


def _best_so_far(curve: Sequence[float]) -> list[float]:
    out, best = [], -math.inf
    for x in curve:
        best = max(best, x)
        out.append(best)
    return out


def crossover(first: Sequence[float], second: Sequence[float], test_images: int) -> Crossover:
    """Where a run reporting its best test accuracy so far (as the lab's runs do) for `second` first beats
    `first` at the same number of epochs; and where the lead first exceeds twice the standard error of the
    difference on `test_images` (never under the lab's 1-point NOISE)."""
    n = min(len(first), len(second))
    a, b = _best_so_far(first[:n]), _best_so_far(second[:n])
    epoch = clear = None
    noise = NOISE
    for k in range(n):
        se = math.sqrt(a[k] * (1 - a[k]) / test_images + b[k] * (1 - b[k]) / test_images)
        noise = max(NOISE, 2 * se)
        if epoch is None and b[k] > a[k]:
            epoch = k + 1
        if clear is None and b[k] - a[k] > noise:
            clear = k + 1
    top = max(range(n), key=lambda k: first[k]) if n else 0
    return Crossover(epoch, clear, noise, first[top] if n else math.nan, top + 1, b[-1] if n else math.nan, n)


# Measured with `nice -n 10 python -m core train --preset {mlp,cnn} --dataset folder:/work/cifar10 --subset 5000
# --epochs 20 --json` (the report's Adam 1e-4, batch 256, no augmentation; all 10,000 test images) on the
# 2-core Intel Xeon (AMX bf16) development machine, load 8-15 from other work, CPU bf16 on.
MLP_VS_CNN = Measured(
    first="mlp", second="cnn", dataset="CIFAR-10 (JPEG image folder)", train_images=5000, test_images=10000,
    first_test=(0.383, 0.4089, 0.4222, 0.4301, 0.4409, 0.4354, 0.422, 0.422, 0.4279, 0.4222, 0.4109, 0.4289, 0.4235,
                0.4247, 0.413, 0.4205, 0.4287, 0.4242, 0.4116, 0.4221),
    second_test=(0.2948, 0.342, 0.3772, 0.3946, 0.4113, 0.429, 0.4393, 0.4538, 0.4679, 0.4606, 0.4799, 0.4877,
                 0.4827, 0.4942, 0.4902, 0.5088, 0.4958, 0.4948, 0.5138, 0.5162),
    first_train=(0.3034, 0.4396, 0.514, 0.5856, 0.6524, 0.704, 0.7532, 0.7952, 0.8432, 0.884, 0.9128, 0.9412,
                 0.9538, 0.9736, 0.9746, 0.9836, 0.9912, 0.9936, 0.9944, 0.9962),
    second_train=(0.1812, 0.2982, 0.3528, 0.393, 0.422, 0.438, 0.4592, 0.4794, 0.4934, 0.5026, 0.5194, 0.517,
                  0.534, 0.5528, 0.5618, 0.573, 0.569, 0.5812, 0.5932, 0.6),
    command="nice -n 10 python -m core train --preset mlp|cnn --dataset folder:/work/cifar10 --subset 5000 "
            "--epochs 20 --json",
    machine="2-core Intel Xeon (AMX bf16), shared, CPU bf16",
)
MEASURED = {("mlp", "cnn"): MLP_VS_CNN}
