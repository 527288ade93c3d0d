"""Training: `train(config) -> Iterator[Event]` and `evaluate` (engine), a run's set-up (setup: devices,
precision, fused optimizers, layout, model and data on the device), the one batch iterator (batches: seeded data
order and augmentation), learning-rate schedules, checkpoints, the frozen event dataclasses and the
learning-rate range test.
"""

from __future__ import annotations

from core import lazy_exports

# Public names by submodule, imported on first use (see core.lazy_exports: keeps `import core.train.<module>`
# from importing every sibling, torch included).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "batches": (
            "AUG_SEED_OFFSET",
            "PERM_SEED_STRIDE",
            "Batch",
            "TrainBatches",
            "augmentation_generator",
            "augmentation_seed",
            "epoch_permutation",
            "permutation_seed",
        ),
        "checkpoint": (
            "FORMAT",
            "is_disk_full",
            "keep_as",
            "latest_checkpoint",
            "load_checkpoint",
            "load_model",
            "save_checkpoint",
        ),
        "engine": (
            "COMPILE_DEVICES",
            "EvalResult",
            "Forward",
            "RunState",
            "evaluate",
            "finish_epoch",
            "per_class_accuracy",
            "train",
            "train_one_epoch",
        ),
        "events": (
            "STATUSES",
            "EpochEnd",
            "Event",
            "Finished",
            "Note",
            "RunStarted",
            "Step",
            "from_dict",
            "to_dict",
        ),
        "lr_finder": (
            "MODES",
            "NON_FINITE",
            "REACHED_END",
            "BatchFn",
            "LRFinder",
            "Point",
            "check_range",
            "lr_at_step",
            "lr_schedule",
            "schedule_for_suggestion",
            "smooth",
        ),
        "lr_recommend": (
            "RECOMMENDED",
            "Recommendation",
            "all_suggestions",
            "recommend",
        ),
        "lr_suggest": (
            "FASTAI",
            "MIN_FALL",
            "MIN_POINTS",
            "SUGGESTIONS",
            "Suggestion",
            "default_skips",
            "fastai_suggestions",
            "suggest",
        ),
        "schedule": (
            "ONECYCLE_END_DIV",
            "ONECYCLE_START_DIV",
            "lr_at",
            "run_steps_per_epoch",
            "schedule_curve",
            "steps_per_epoch",
        ),
        "setup": (
            "CPU_BF16_ENV",
            "RunSetup",
            "available_devices",
            "build_optimizer",
            "cpu_bf16_requested",
            "cpu_has_native_bf16",
            "has_fused_kernel",
            "input_stats",
            "prepare",
            "resolve_device",
            "run_dataset",
            "use_amp",
            "use_channels_last",
        ),
    },
)
