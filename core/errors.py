"""The one exception type for problems a user can fix, with a message that says what to do."""

from __future__ import annotations


class LabError(Exception):
    """A problem the user can fix: wrong input, missing data, an impossible configuration.

    The message is shown as-is (`st.error` in the app, one line on the CLI), so it must say what is wrong
    and what to do about it. Bugs are not LabErrors: they keep their tracebacks.
    """


class ConfigError(LabError, ValueError):
    """An invalid configuration value (a LabError that is also a ValueError)."""


class DataError(LabError):
    """Data that is missing, corrupt or unreadable."""
