"""Polling for a condition another process or thread brings about."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], timeout: float = 30.0, every: float = 0.1) -> bool:
    """True as soon as ``check()`` is; False if it never is within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False
