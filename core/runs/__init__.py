"""The run library: every run of the lab in one SQLite store (store, records), the per-device queue and its
detached trainer processes (queue, trainer), the recorder that writes a run's events, export/import (transfer),
sweeps, and `open_library` (library) that hands out library objects.
"""

from __future__ import annotations

from core.runs.library import (  # noqa: F401
    open_library,
    runs_root,
)
from core.runs.queue import (  # noqa: F401
    HEARTBEAT_S,
    HOST,
    LOG_NAME,
    RECOVER_EVERY_S,
    REPO_ROOT,
    RunLibrary,
    pid_alive,
    trainer_command,
)
from core.runs.recorder import (  # noqa: F401
    PROGRESS_EVERY_S,
    STOP_POLL_S,
    Recorder,
    attach_worker,
    cli_recorder,
)
from core.runs.records import (  # noqa: F401
    ACTIVE,
    EPOCH_FIELDS,
    RUN_STATUSES,
    EpochRow,
    Progress,
    RunRecord,
    record_from_row,
)
from core.runs.store import (  # noqa: F401
    BUSY_TIMEOUT_S,
    DB_NAME,
    DEFAULT_SETTINGS,
    MIGRATIONS,
    SCHEMA_VERSION,
    STARTED_BY,
    RunStore,
    new_run_id,
)
from core.runs.sweeps import (  # noqa: F401
    DATA_FRACTIONS,
    LESSONS,
    LR_FACTOR,
    MAX_RUNS,
    Lesson,
    SubmitFn,
    accuracy_vs,
    batch_epochs_lesson,
    curve_rows,
    data_size_lesson,
    describe,
    expand,
    format_value,
    lr_scenarios,
    new_sweep_id,
    record_from_run,
    run_name,
    submit_pairs,
    submit_sweep,
    sweep_table,
    swept_keys,
)
from core.runs.transfer import (  # noqa: F401
    CHECKPOINTS,
    EXPORTED,
    FORMAT,
    VERSION,
    curves_csv,
    export_dict,
    export_run,
    import_dict,
    import_run,
)
