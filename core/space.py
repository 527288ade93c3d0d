"""Disk space, shared by the engine (is there room for a checkpoint?) and the run library (what do the runs
take?): the free bytes where a folder is or will be, and bytes written as a person reads them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

GB = 10**9


def free_bytes(folder: str | Path) -> int:
    """Bytes free on the disk that holds `folder`, or will hold it (its nearest existing parent). OSError when
    the disk cannot say."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def free_or_none(folder: str | Path) -> int | None:
    """free_bytes, or None when the disk cannot say."""
    try:
        return free_bytes(folder)
    except OSError:
        return None


def size_text(n: int) -> str:
    """Bytes as a person reads them: '850 MB', '12.3 GB'."""
    return f"{n / 1e6:,.0f} MB" if n < GB else f"{n / GB:,.1f} GB"


def free_text(folder: str | Path | None, measure: Callable[[str | Path], int] = free_bytes) -> str:
    """'1.2 GB free in FOLDER', or what can be said instead (`measure`: how the free bytes are read)."""
    if folder is None:
        return "no folder to write to"
    try:
        return f"{size_text(measure(folder))} free in {folder}"
    except OSError:
        return f"the free space in {folder} could not be read"
