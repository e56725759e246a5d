"""One read of the store for the exporter: the newest documents of each model, and job health.

The store is opened read-only for the read and closed right after, so the exporter never
holds an embedded store's lock between refreshes (and never during a scrape): ``mlmon run``
and ``mlmon ingest --follow`` wait at most one short read for their turn, and a refresh
that finds the file held waits at most ``lock_wait`` seconds before giving up until the next.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlmon.core.job_runs import JobHealth
from mlmon.outputs.prometheus.series import window_end
from mlmon.config.prometheus import ExporterSettings
from mlmon.stores.protocols import Store, StoreError
from mlmon.stores.url import duckdb_file, open_store

#: Documents read per model and refresh at most; more are counted (mlmon_exporter_documents_not_read).
READ_LIMIT = 200_000


@dataclass
class StoreRead:
    docs: list[dict[str, Any]] = field(default_factory=list)
    health: list[JobHealth] = field(default_factory=list)
    #: Documents inside the history that the read limit left unread (the oldest ones).
    not_read: int = 0


def open_read_only(url: str, lock_wait: float) -> Store:
    path = duckdb_file(url)
    if path is None:
        return open_store(url, read_only=True)
    from mlmon.stores.duckdb.store import DuckDBStore

    return DuckDBStore(path, read_only=True, lock_wait=lock_wait)


def read_store(url: str, settings: ExporterSettings, *, models: Sequence[str] | None = None,
               lock_wait: float = 5.0, read_limit: int = READ_LIMIT) -> StoreRead:
    """The documents whose window ended within ``settings.history`` of the newest one, newest first, and
    the job health records. ``models``: only these, each measured from its own newest window; else every
    model with documents, measured from the newest window in the store (a model whose jobs stopped
    longer ago than the history has no series left; its job health says so)."""
    store = open_read_only(url, lock_wait)
    try:
        out = StoreRead()
        for model in (models if models is not None else [None]):
            newest = store.read_metrics(model, limit=1)
            if not newest:
                continue
            page = store.read_metrics(model, limit=read_limit, start=window_end(newest[0]) - settings.history)
            out.docs.extend(page)
            out.not_read += page.total - len(page)
        wanted = None if models is None else set(models)
        out.health = [h for h in store.job_health() if wanted is None or h.model in wanted]
        return out
    finally:
        store.close()


def failure_reason(err: StoreError) -> str:
    """``store_locked`` when another process held the embedded store past the wait, else ``store_error``."""
    # Only an embedded store raises StoreLocked: when its module was never imported the error is not one
    # (and an Elasticsearch-only install need not have duckdb at all).
    connect = sys.modules.get("mlmon.stores.duckdb.connect")
    return "store_locked" if connect is not None and isinstance(err, connect.StoreLocked) else "store_error"
