"""The run library: every run of the lab in one SQLite store (store, records), the per-device queue and its
detached trainer processes (queue, trainer), the recorder that writes a run's events, export/import (transfer),
sweeps, what the runs take on disk (disk), and `open_library` (library) that hands out library objects.
"""

from __future__ import annotations

from core import lazy_exports

# Public names by submodule, imported on first use (see core.lazy_exports: keeps `import core.runs.<module>`
# from importing every sibling, torch included).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "disk": (
            "DiskUsage",
            "Room",
            "disk_usage",
            "room_for",
        ),
        "library": (
            "open_library",
            "runs_root",
        ),
        "queue": (
            "HEARTBEAT_S",
            "HOST",
            "LOG_NAME",
            "RECOVER_EVERY_S",
            "REPO_ROOT",
            "RunLibrary",
            "pid_alive",
            "trainer_command",
        ),
        "recorder": (
            "PROGRESS_EVERY_S",
            "STOP_POLL_S",
            "Recorder",
            "attach_worker",
            "cli_recorder",
        ),
        "records": (
            "ACTIVE",
            "EPOCH_FIELDS",
            "RUN_STATUSES",
            "EpochRow",
            "Progress",
            "RunRecord",
            "record_from_row",
        ),
        "store": (
            "BUSY_TIMEOUT_S",
            "DB_NAME",
            "DEFAULT_SETTINGS",
            "MIGRATIONS",
            "SCHEMA_VERSION",
            "STARTED_BY",
            "RunStore",
            "new_run_id",
        ),
        "sweeps": (
            "DATA_FRACTIONS",
            "LESSONS",
            "LR_FACTOR",
            "MAX_RUNS",
            "Lesson",
            "SubmitFn",
            "accuracy_vs",
            "batch_epochs_lesson",
            "curve_rows",
            "data_size_lesson",
            "describe",
            "expand",
            "format_value",
            "lr_scenarios",
            "new_sweep_id",
            "record_from_run",
            "run_name",
            "submit_pairs",
            "submit_sweep",
            "sweep_table",
            "swept_keys",
        ),
        "transfer": (
            "CHECKPOINTS",
            "EXPORTED",
            "FORMAT",
            "VERSION",
            "curves_csv",
            "export_dict",
            "export_run",
            "import_dict",
            "import_run",
        ),
    },
)
