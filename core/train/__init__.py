"""Training: `train(config) -> Iterator[Event]` and `evaluate` (engine), the choices around the step loop (setup:
devices, precision, fused optimizers, layout, data order), learning-rate schedules, checkpoints, the frozen
event dataclasses and the learning-rate range test.
"""

from __future__ import annotations

from core.train.checkpoint import (  # noqa: F401
    FORMAT,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from core.train.engine import (  # noqa: F401
    COMPILE_DEVICES,
    EvalResult,
    evaluate,
    input_stats,
    log,
    per_class_accuracy,
    train,
)
from core.train.events import (  # noqa: F401
    STATUSES,
    EpochEnd,
    Event,
    Finished,
    Note,
    RunStarted,
    Step,
    from_dict,
    to_dict,
)
from core.train.lr_finder import (  # noqa: F401
    MIN_FALL,
    MIN_POINTS,
    MODES,
    NON_FINITE,
    REACHED_END,
    SUGGESTIONS,
    Batch,
    BatchFn,
    EngineBatches,
    LRFinder,
    Point,
    Suggestion,
    check_range,
    default_skips,
    lr_at_step,
    lr_schedule,
    schedule_for_suggestion,
    smooth,
    suggest,
)
from core.train.schedule import (  # noqa: F401
    ONECYCLE_END_DIV,
    ONECYCLE_START_DIV,
    lr_at,
    run_steps_per_epoch,
    schedule_curve,
    steps_per_epoch,
)
from core.train.setup import (  # noqa: F401
    CPU_BF16_ENV,
    available_devices,
    build_optimizer,
    cpu_bf16_requested,
    cpu_has_native_bf16,
    epoch_permutation,
    resolve_device,
    use_amp,
    use_channels_last,
)
