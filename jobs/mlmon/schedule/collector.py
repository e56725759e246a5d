"""The cyclic garbage collector paused while a round computes a batch of windows.

A batch allocates ~10^5 short-lived objects (metric documents and their details, metric values, binned
statistics); reference counting frees them, and they hold no cycles. Each time CPython's allocation
thresholds fire meanwhile, the collector walks the young objects and, every few times, every object of the
process (numpy, scipy, pandas, duckdb and the batch itself): about a tenth of a first round's time, for
nothing to free. Paused while a schedule's jobs run (a round's due windows, a backfill's batch), what cyclic
garbage they make (a caught exception's traceback) waits for the collections that resume after: bounded by
one run, never by a backfill's history.
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
