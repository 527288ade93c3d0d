"""The report's lessons: its experiments as named presets (with the report's accuracy, lesson, note and caveat)
and the findings that compare the lab's runs with the report.
"""

from __future__ import annotations

from core.lessons.findings import (  # noqa: F401
    NOISE,
    Finding,
    compare_with_report,
)
from core.lessons.presets import (  # noqa: F401
    FLIP,
    FLIP_CROP,
    PRESETS,
    REPORT,
    SECTIONS,
    W128,
    Preset,
    get_preset,
    preset_config,
    presets_in,
)
