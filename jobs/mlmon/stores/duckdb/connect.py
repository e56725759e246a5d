"""Opening a DuckDB store file that another process may be using.

DuckDB lets one process at a time open a database file (a file lock; see
https://duckdb.org/docs/current/connect/concurrency). The embedded store is
shared by separate commands - ``mlmon ingest --follow`` storing events,
``mlmon run --every`` computing metrics, ``mlmon metrics`` / ``report`` reading -
so each holds the file only while it works (a batch, a round, a query) and a
command that finds it locked waits for its turn instead of failing, and says so
once (a warning of the ``mlmon.stores`` logger: on stderr when nothing else is set up).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from mlmon.stores.protocols import StoreError

log = logging.getLogger("mlmon.stores")

#: How long a command waits for another process to release the store (seconds).
LOCK_WAIT_ENV = "MLMON_STORE_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 300.0
_FIRST_DELAY, _MAX_DELAY = 0.02, 1.0


class StoreLocked(StoreError):
    """Another process held the store for longer than the wait allowed (or the wait was given up)."""


def lock_wait_from_env() -> float:
    raw = os.environ.get(LOCK_WAIT_ENV)
    if raw is None:
        return DEFAULT_LOCK_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        raise StoreError(f"{LOCK_WAIT_ENV}={raw!r}: expected a number of seconds") from None
    if not seconds >= 0:
        raise StoreError(f"{LOCK_WAIT_ENV}={raw!r}: expected a number of seconds >= 0")
    return seconds


def _is_lock_conflict(err: duckdb.Error) -> bool:
    text = str(err)
    return isinstance(err, duckdb.IOException) and ("Could not set lock" in text or "Conflicting lock" in text)


def _announce(message: str) -> None:
    log.warning("mlmon: the store is in use by another process; waiting for it (%s)", message)


def connect(path: str | Path, *, read_only: bool = False, wait: float | None = None,
            on_wait: Callable[[str], None] = _announce, give_up: Callable[[], bool] = lambda: False,
            sleep: Callable[[float], None] = time.sleep) -> duckdb.DuckDBPyConnection:
    """A connection to ``path``, waiting up to ``wait`` seconds (default: the environment's
    ``MLMON_STORE_LOCK_WAIT``, else 300; ``math.inf`` waits for good) while another process holds it.

    ``on_wait`` is told once, with DuckDB's message (it names the holder's PID), when the
    wait begins; ``give_up`` is asked between attempts (e.g. a stop flag) and ends the wait
    with :class:`StoreLocked`. Other errors (a corrupt file, a missing directory) are raised at once.
    """
    limit = lock_wait_from_env() if wait is None else wait
    deadline = time.monotonic() + limit
    delay = _FIRST_DELAY
    told = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as err:
            if not _is_lock_conflict(err):
                raise
            left = deadline - time.monotonic()
            if give_up():
                raise StoreLocked(f"{path} is in use by another process; stopped while waiting for it: {err}") from err
            if left <= 0:
                raise StoreLocked(f"{path} is in use by another process and was not released within {limit:g} s "
                                  f"(set {LOCK_WAIT_ENV} to wait longer): {err}") from err
            if not told:
                on_wait(str(err))
                told = True
            sleep(min(delay, left))
            delay = min(delay * 2, _MAX_DELAY)
