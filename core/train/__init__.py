"""Training: `train(config) -> Iterator[Event]` and `evaluate` (engine), a run's set-up (setup: devices,
precision, fused optimizers, layout, model and data on the device), the one batch iterator (batches: seeded data
order and augmentation), learning-rate schedules, checkpoints, the frozen event dataclasses and the
learning-rate range test.
"""
