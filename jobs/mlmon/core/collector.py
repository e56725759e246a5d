"""The cyclic garbage collector paused while a batch's short-lived objects pile up.

Ingesting a batch of lines, or computing a round's windows, makes tens of thousands of objects (parsed
events; metric documents, metric values, binned statistics) that reference counting frees and that hold no
cycles. Each time CPython's allocation thresholds fire meanwhile, the collector walks the young objects and,
every few times, every object of the process (numpy, scipy, pandas, duckdb and the batch itself), for
nothing to free: it tripled the ingest's per-line checker and took about a tenth of a first round. What
cyclic garbage a paused batch makes (a caught exception's traceback) waits for the collections that resume
after it: bounded by one batch, never by a backfill's history.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cyclic collection inside; the collector's state (on, or off by the caller) restored after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
