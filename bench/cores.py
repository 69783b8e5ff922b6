"""How many CPU cores a run may use, and the "auto" setting of the config keys that size
thread pools by them (dlib_hog's `threads`)."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; os.cpu_count() where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_count(value, key: str = "threads") -> int:
    """A pool size from config: "auto" = usable_cores(); an int >= 1 as it is.

    Raises:
        ValueError: neither "auto" nor an integer >= 1 (the message names `key`).
    """
    if str(value).lower() == "auto":
        return usable_cores()
    count = int(value)
    if count < 1:
        raise ValueError(f"{key} must be >= 1 or auto, not {value!r}")
    return count
