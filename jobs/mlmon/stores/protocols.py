"""Every store protocol in one place: what the jobs, the alert engine and the outputs ask of a store.

A new store (DuckDB, Elasticsearch, ...) is a subpackage of :mod:`mlmon.stores` implementing these.

A store answers in sufficient statistics (histograms over given edges,
category counts, missing counts, row counts, min/max), never in rows, so what
leaves the store per window depends on features and bins, not on traffic.
It also keeps the jobs' documents: metric documents (upserts by id), reference
profiles, and checkpoints of finished windows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from mlmon.core.alerts import Alert, Delivery, LastNotification, SeriesWindow
from mlmon.core.documents import MetricDocument
from mlmon.core.job_runs import JobHealth, JobRun
from mlmon.core.labels import LabelQuery, OrphanFeedback, SegmentedWindows
from mlmon.core.perf_stats import AttributionSums
from mlmon.core.queries import WindowBatch, WindowInputs, WindowQuery
from mlmon.core.reference import ReferenceProfile
from mlmon.core.stats import WindowStatistics


class StoreError(RuntimeError):
    """The store failed after retries (unavailable, rejected writes, bad answer), or could not be
    opened (bad URL, missing file, not a database); the message says what, on one line."""

    def __str__(self) -> str:
        # DuckDB's and the client's messages may span lines; commands print this as one line.
        return " ".join(part.strip() for part in super().__str__().splitlines() if part.strip())


class MetricPage(list[dict[str, Any]]):
    """Metric documents read, newest first; ``total``: how many matched the filters, which is more
    than ``len(page)`` when the limit cut the answer (commands say so)."""

    def __init__(self, docs: Iterable[dict[str, Any]] = (), total: int | None = None) -> None:
        super().__init__(docs)
        self.total = len(self) if total is None else total


@runtime_checkable
class Store(Protocol):
    def window_statistics(self, query: WindowQuery) -> WindowStatistics:
        """Row count and per-field statistics of the window (fields absent from the store count as missing)."""

    def quantiles(self, model: str, start: datetime, end: datetime, fields: Sequence[str],
                  levels: Sequence[float], version: str | None = None) -> dict[str, list[float]]:
        """Quantiles of numeric fields over a window (to build a reference profile from production)."""

    def fields(self, model: str, version: str | None = None) -> list[str]:
        """Feature and prediction fields present in the store for the model."""

    def versions(self, model: str, start: datetime | None = None, end: datetime | None = None) -> list[str]:
        """Model versions with prediction events in ``[start, end)`` (default: ever), sorted."""

    def data_range(self, model: str, version: str | None = None) -> tuple[datetime, datetime] | None:
        """First and last prediction event time of the model (and version); None when it has none."""

    def models(self) -> list[str]:
        """Model names with prediction events, sorted."""

    def write_metrics(self, docs: Sequence[MetricDocument]) -> None:
        """Upsert by ``doc.id``; raises StoreError unless every document was written."""

    def read_metrics(self, model: str | None = None, limit: int = 1000,
                     start: datetime | None = None, end: datetime | None = None, *,
                     version: str | None = None, families: Sequence[str] = (), features: Sequence[str] = (),
                     statuses: Sequence[str] = ()) -> MetricPage:
        """Stored metric documents (``to_source()`` shape) matching every filter given, newest window
        first (then feature, metric name, id): the filters apply before ``limit``, in the store's query.
        A window matches [start, end) when it overlaps it. ``.total`` counts every match."""

    def put_reference(self, profile: ReferenceProfile) -> str:
        """Store a profile (idempotent: its id is content-addressed); returns its id."""

    def get_reference(self, model: str, version: str | None = None,
                      reference_id: str | None = None) -> ReferenceProfile | None:
        """A profile by id, or the newest for model (and version)."""

    def list_references(self, model: str | None = None) -> list[dict[str, Any]]:
        """Header fields of the stored profiles, newest first."""

    def get_checkpoint(self, key: str) -> datetime | None:
        """End of the last window finished under ``key``."""

    def set_checkpoint(self, key: str, window_end: datetime) -> None: ...

    def record_job_runs(self, runs: Sequence[JobRun]) -> None:
        """Fold each run into its (model, family) health record."""

    def job_health(self) -> list[JobHealth]:
        """The health record of every (model, family) that ever ran (none on a store no round ran on)."""
        ...

    # The other jobs' queries over the same connection or client (never a second one).
    def labels(self) -> LabelledStore: ...

    def explain_queries(self) -> ExplainBackend: ...

    def alert_store(self) -> AlertStore: ...

    def close(self) -> None: ...


@runtime_checkable
class CachingStore(Protocol):
    def release_cache(self) -> None:
        """Let go of what the store keeps cached from the work just done (a backfill calls it after each batch
        of windows, so its memory follows the batch, not the history it walked)."""
        ...


# One pass over many windows (backfills, look-backs): optional; a store without them is asked window by window.
@runtime_checkable
class WindowBatchStatistics(Protocol):
    def window_statistics_batch(self, query: WindowQuery, batch: WindowBatch) -> list[WindowStatistics]:
        """``window_statistics`` of each window of ``batch`` (``query``'s own bounds are not used), in order."""
        ...


@runtime_checkable
class BatchLabelledStore(Protocol):
    def labelled_windows(self, query: LabelQuery, batch: WindowBatch) -> list[SegmentedWindows]:
        """``labelled_window`` of each window of ``batch`` (``query``'s own bounds are not used), in order."""
        ...

    def orphan_feedback_batch(self, model: str, batch: WindowBatch,
                              version: str | None = None) -> list[OrphanFeedback]:
        """``orphan_feedback`` of each window of ``batch``, in order."""
        ...


@runtime_checkable
class BatchExplainBackend(Protocol):
    def attribution_sums_batch(self, model: str, batch: WindowBatch, *, version: str | None = None,
                               method: str | None = None, features: Sequence[str] = (),
                               segment: tuple[str, str] | None = None) -> list[dict[str, AttributionSums]]:
        """``attribution_sums`` of each window of ``batch``, in order."""
        ...


@runtime_checkable
class LabelledStore(Protocol):
    def labelled_window(self, query: LabelQuery) -> SegmentedWindows:
        """Join the latest feedback to the window's predictions; statistics per segment value."""

    def orphan_feedback(self, model: str, start: datetime, end: datetime,
                        version: str | None = None) -> OrphanFeedback:
        """Feedback stamped in [start, end) whose prediction id is unknown to the store."""

    def put_performance_reference(self, key: str, document: Mapping[str, Any]) -> None:
        """Store a performance reference (CBPE calibration, reference metrics) under ``key`` (upsert)."""

    def get_performance_reference(self, key: str) -> dict[str, Any] | None:
        """The performance reference stored under ``key``, or None."""


def labelled_store(store: Any) -> LabelledStore:
    """The label join of a jobs ``Store`` (on its connection or client), or a LabelledStore as it is."""
    if isinstance(store, Store):
        return store.labels()
    if isinstance(store, LabelledStore):
        return store
    raise TypeError(f"no label join for a store of type {type(store).__name__}")


class ExplainBackend(Protocol):
    """What the explainability job asks of a store (implemented for DuckDB and Elasticsearch)."""

    def attribution_features(self, model: str, version: str | None = None) -> list[str]: ...

    def attribution_sums(self, model: str, start: datetime, end: datetime, *, version: str | None = None,
                         method: str | None = None, features: Sequence[str] = (),
                         segment: tuple[str, str] | None = None) -> dict[str, AttributionSums]: ...

    def put_attribution_reference(self, reference_id: str, model: str, version: str, created_at: datetime,
                                  source: str, rows: int, document: Mapping[str, Any]) -> str: ...

    def get_attribution_reference(self, model: str, version: str | None = None,
                                  reference_id: str | None = None) -> dict[str, Any] | None: ...


class AlertStore(Protocol):
    def series_windows(self, model: str, model_version: str, families: Sequence[str], since: datetime,
                       until: datetime, skip: Collection[str] = frozenset()) -> Sequence[SeriesWindow]:
        """Status per series and window of one model version's ``families``, for the windows ending in
        [since, until]: the context of the "N of M" rules, without building metric documents. Documents
        whose id is in ``skip`` (the round's own, which the caller holds) need not be returned."""
        ...

    def metric_documents(self, ids: Iterable[str]) -> Sequence[MetricDocument]:
        """The stored metric documents with these ids (those that exist)."""
        ...

    def last_notifications(self, series_ids: Iterable[str]) -> dict[str, LastNotification]:
        """Newest jobs-engine alert per ``alert.series_id`` among those asked for."""
        ...

    def write_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Store alerts not stored yet (by id); return those newly written."""
        ...

    def write_alerts_and_outbox(self, alerts: Sequence[Alert], deliveries: Sequence[Delivery]) -> list[Alert]:
        """As :meth:`write_alerts`, and queue the ``deliveries`` of the newly written alerts in the outbox
        so that no crash leaves a new alert stored but never queued."""
        ...

    def claim_deliveries(self, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Up to ``limit`` pending outbox entries due at ``now``, oldest first, each held until ``until``
        (a lease: another round does not take them meanwhile; a crashed round's come back after it)."""
        ...

    def record_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Store the outbox entries' new state (delivered, retried later, expired)."""
        ...

    def recent_alerts(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Stored alert documents (nested, as written), newest first; for reports and `mlmon alerts`."""
        ...


@runtime_checkable
class WindowFingerprints(Protocol):
    """A store that keeps, per window of a label job, the fingerprint of the inputs its documents came from
    (the embedded store; a store without it has every window of the look-back recomputed each round)."""

    def window_inputs(self, model: str, batch: WindowBatch, version: str | None = None) -> list[WindowInputs]: ...

    def stored_fingerprints(self, key: str, batch: WindowBatch) -> dict[datetime, str]: ...

    def put_fingerprints(self, key: str, fingerprints: Sequence[tuple[datetime, str]]) -> None: ...
