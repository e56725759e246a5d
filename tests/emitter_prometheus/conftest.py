"""Helpers for the Prometheus metrics tests."""

from __future__ import annotations

import threading


class CountingSink:
    """Takes every chunk and counts its lines (thread-safe)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def write(self, data: bytes | bytearray) -> None:
        with self._lock:
            self.count += data.count(b"\n")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def after_fork(self) -> None:
        pass
