"""One shape for every job: what is due, and a window in, metric documents out.

A job never writes. It yields one :class:`WindowOutput` per window: the window's
documents and the checkpoints that may move once they are stored. The scheduler
(:mod:`mlmon.schedule.runner`) is the only writer of documents and checkpoints,
so every job gets the same guarantees: a window is checkpointed only after all
of its documents were written, and checkpoints only move forward.

Jobs run on one of two schedules, shared by the jobs that follow it:

- :class:`EventSchedule` (drift, explainability): event-time windows after the
  schedule's checkpoint, each computed once when it is complete;
- :class:`LabelSchedule` (performance, fairness): every window of the label
  look-back that is not final yet, recomputed each round as labels arrive.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from mlmon.config.model import ModelConfig
from mlmon.core.documents import Family, Maturity, MetricDocument, Status, Threshold, assembled, shared_fields
from mlmon.core.windows import floor_time
from mlmon.core.labels import LabelQuery, OrphanFeedback, SegmentedWindows
from mlmon.core.queries import WindowBatch, WindowInputs
from mlmon.stores.protocols import BatchLabelledStore, LabelledStore, Store, WindowFingerprints

log = logging.getLogger("mlmon.jobs")
T = TypeVar("T")

#: An aligned window ``[start, end)``.
Window = tuple[datetime, datetime]
#: Missed event windows caught up by one round after downtime; older ones are left to `mlmon backfill`.
MAX_CATCH_UP = 1000


DEFAULT_BATCH_WINDOWS = 168


def _batch_setting() -> int:
    raw = os.environ.get("MLMON_BATCH_WINDOWS")
    if raw is None:
        return DEFAULT_BATCH_WINDOWS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        log.warning("MLMON_BATCH_WINDOWS=%r is not a whole number of windows >= 1 (1 asks the store window by "
                    "window); using %d", raw, DEFAULT_BATCH_WINDOWS)
        return DEFAULT_BATCH_WINDOWS
    return value


#: Windows whose statistics a job asks the store for in one pass (a week of hourly windows); each store
#: bounds the rows of a pass itself. ``MLMON_BATCH_WINDOWS=1`` asks window by window (the previous design).
BATCH_WINDOWS = _batch_setting()


def window_chunks(windows: Sequence[Window], size: int | None = None) -> Iterator[list[Window]]:
    """Sorted, distinct ``windows`` in runs of at most ``size`` (default :data:`BATCH_WINDOWS`, read at call time)."""
    size = size or BATCH_WINDOWS
    ordered = sorted(set(windows))
    for i in range(0, len(ordered), size):
        yield ordered[i:i + size]


@dataclass(frozen=True)
class WindowOutput:
    """What a job computed for one window (nothing of it is written yet)."""

    start: datetime
    end: datetime
    documents: list[MetricDocument]
    #: Checkpoints to move to the given window ends once ``documents`` are stored (forward only).
    checkpoints: tuple[tuple[str, datetime], ...] = ()
    #: The window had documents before and was computed again (e.g. with late labels).
    recomputed: bool = False
    #: The window's documents will not change any more (all labels in, or too old to wait for).
    final: bool = False
    #: (key, fingerprint) of the inputs ``documents`` were computed from, stored with them by the runner.
    fingerprint: tuple[str, str] | None = None
    #: Not computed again: its inputs are those of its stored documents (``documents`` is empty).
    unchanged: bool = False


@dataclass(frozen=True)
class DocumentContext:
    """What the documents of one job's window share; :meth:`document` is how every job makes one."""

    model: str
    version: str
    start: datetime
    end: datetime
    run_id: str
    code_version: str
    reference_id: str = ""
    n_reference: int | None = None
    #: (segment field, value) of every document of the window, unless a document names its own.
    segment: tuple[str, str] | None = None
    maturity: Maturity | None = None
    #: One time for the window's documents (computed together): the store converts each distinct time once.
    computed_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def document(self, family: Family, metric: str, value: float | None, status: Status, *, n_current: int,
                 method: str = "", feature: str = "", class_label: str = "", threshold: Threshold | None = None,
                 details: Mapping[str, Any] | None = None,
                 segment: tuple[str, str] | None = None) -> MetricDocument:
        segment_field, segment_value = segment or self.segment or ("", "")
        return assembled(self._shared, family, metric, value, status, n_current, method, feature, class_label,
                         threshold, cast(dict[str, Any], details or {}),  # the document copies it
                         segment_field, segment_value)

    @cached_property
    def _shared(self) -> dict[str, Any]:
        return shared_fields(model=self.model, model_version=self.version, window_start=self.start,
                             window_end=self.end, run_id=self.run_id, code_version=self.code_version,
                             n_reference=self.n_reference, reference_id=self.reference_id, maturity=self.maturity,
                             computed_at=self.computed_at)


class Schedule(Protocol):
    def due(self, at: datetime) -> list[Window]:
        """Complete windows to compute at ``at``, oldest first."""
        ...


class Job(Protocol):
    """A periodic job: its schedule says what is due; ``run_windows`` computes those windows."""

    @property
    def name(self) -> str: ...

    @property
    def schedule(self) -> Schedule: ...

    def run_windows(self, windows: Sequence[Window], at: datetime) -> Iterator[WindowOutput]:
        """One output per window, in the order given (sorted, no duplicates)."""
        ...


def aligned_windows(start: datetime, end: datetime, size: timedelta) -> Iterator[Window]:
    """Aligned windows covering [start, end): starts at the window containing ``start``."""
    s = floor_time(start, size)
    while s < end:
        yield s, s + size
        s += size


class VersionLookup(Protocol):
    """The store question behind per-version windows (a :class:`Store` answers it)."""

    def versions(self, model: str, start: datetime | None = None, end: datetime | None = None) -> list[str]: ...


def window_versions(lookup: VersionLookup | None, model: ModelConfig, start: datetime, end: datetime) -> list[str]:
    """The versions whose traffic a window's documents describe, one set of documents each.

    The configured version; else every version with events in the window, so no document mixes
    versions or carries another version's name. Empty for a window without events (the jobs then
    write their zero-count documents as before) or when there is no store to ask.
    """
    if model.version is not None:
        return [model.version]
    return list(lookup.versions(model.name, start, end)) if lookup is not None else []


def versions_by_window(lookup: VersionLookup | None, model: ModelConfig,
                       windows: Sequence[Window]) -> dict[Window, list[str | None]]:
    """:func:`window_versions` of each window; ``[None]`` for a window without events (its documents are
    computed with the model as configured, as a job does for one window)."""
    return {w: [*window_versions(lookup, model, w[0], w[1])] or [None] for w in windows}


def by_version(versions: Mapping[Window, Sequence[str | None]]) -> dict[str | None, list[Window]]:
    """Version -> its windows, in order: one batch per version."""
    out: dict[str | None, list[Window]] = {}
    for window, found in sorted(versions.items()):
        for version in found:
            out.setdefault(version, []).append(window)
    return out


def labelled_windows(labels: LabelledStore, query: LabelQuery, batch: WindowBatch) -> list[SegmentedWindows]:
    """The label join of each window of ``batch``: in one pass when the store answers batches."""
    if isinstance(labels, BatchLabelledStore):
        return labels.labelled_windows(query, batch)
    return [labels.labelled_window(replace(query, start=s, end=e)) for s, e in batch.windows]


#: Segment -> the values asked of it (None: every value).
SegmentsAsked = Mapping[str, tuple[str, ...] | None]


@runtime_checkable
class SegmentBatchLabelledStore(Protocol):
    """A store that answers all traffic and several segments of a batch from one label join (the embedded
    store); another store is asked once per segment (:func:`segmented_windows`)."""

    def labelled_windows_by_segment(self, query: LabelQuery, batch: WindowBatch,
                                    segments: SegmentsAsked) -> Mapping[str | None, list[SegmentedWindows]]: ...


def segmented_windows(labels: LabelledStore, query: LabelQuery, batch: WindowBatch,
                      segments: SegmentsAsked) -> dict[str | None, list[SegmentedWindows]]:
    """:func:`labelled_windows` of ``query`` over all traffic (key None) and of each of ``segments`` (its key):
    from one join when the store can, else one per segment."""
    if isinstance(labels, SegmentBatchLabelledStore):
        return dict(labels.labelled_windows_by_segment(query, batch, segments))
    out: dict[str | None, list[SegmentedWindows]] = {None: labelled_windows(labels, query, batch)}
    for segment, values in segments.items():
        out[segment] = labelled_windows(labels, replace(query, segment=segment, segment_values=values), batch)
    return out


#: A label join asked by a job: (model, version, batch, segment or None for all traffic, the values asked).
JoinKey = tuple[str, str | None, WindowBatch, str | None, tuple[str, ...] | None]
#: Label joins of one label round shared by its jobs, reduced to what the fairness job reads (counts, confusion,
#: predicted labels: :func:`mlmon.core.labels.counts_only`): it takes the performance job's joins of the same
#: windows instead of joining them again. An entry is taken out when read.
JoinCache = dict[JoinKey, list[SegmentedWindows]]


def digest(*parts: object) -> str:
    """A stable digest of values whose ``repr`` is deterministic (frozen config dataclasses, strings, numbers)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class WindowPlan:
    """Whether a label job's window must be computed, and the fingerprint to store with its documents."""

    #: None when the store keeps no fingerprints.
    fingerprint: str | None = None
    #: Predictions in the window (None: not asked).
    predictions: int | None = None
    unchanged: bool = False
    #: The window's orphan feedback, when the store counted it with the inputs.
    orphans: OrphanFeedback | None = None


#: Window inputs asked in one label round or backfill, shared by its jobs (the data does not change meanwhile);
#: None for a window asked without (one the round settles: see ``plan_windows``).
InputsCache = dict[tuple[str, str | None, WindowBatch], list[WindowInputs | None]]


def plan_windows(labels: object, key: str, model: ModelConfig, batch: WindowBatch, salts: Sequence[str],
                 reuse: bool, cache: InputsCache | None = None,
                 settling: Collection[Window] = ()) -> list[WindowPlan]:
    """Per window of ``batch``: its fingerprint (the store's digest of the window's inputs and ``salts``, the
    job's own inputs for that window: config, reference, maturity) and, when ``reuse``, whether the stored
    fingerprint equals it, so its stored documents are what a computation would give again.

    A window of ``settling`` without a stored fingerprint to compare gets none, and its inputs are not read:
    it settles in this pass (the final checkpoint moves past it), so no round computes it again and reads its
    fingerprint. A job of the same round finding the batch in ``cache`` plans as the first one did."""
    if not isinstance(labels, WindowFingerprints):
        return [WindowPlan() for _ in batch.windows]
    stored = labels.stored_fingerprints(key, batch) if reuse else {}
    asked = (model.name, model.version, batch)
    inputs = cache.get(asked) if cache is not None else None
    if inputs is None:
        skipped = {w for w in batch.windows if w in settling and w[0] not in stored}
        wanted = [w for w in batch.windows if w not in skipped]
        read = iter(labels.window_inputs(model.name, WindowBatch.of(wanted), model.version) if wanted else [])
        inputs = [None if w in skipped else next(read) for w in batch.windows]
        if cache is not None:
            cache[asked] = inputs
    plans = []
    for (start, _), found, salt in zip(batch.windows, inputs, salts):
        if found is None:
            plans.append(WindowPlan())
            continue
        fingerprint = digest(salt, found.digest)
        plans.append(WindowPlan(fingerprint, found.predictions, stored.get(start) == fingerprint, found.orphans))
    return plans


def reuse_or_compute(plans: Sequence[WindowPlan], windows: Sequence[Window],
                     compute: Callable[[Sequence[Window]], Sequence[T]]) -> list[T | None]:
    """``compute`` over the windows not planned as unchanged (in one batch); None for the unchanged ones."""
    todo = [w for w, p in zip(windows, plans) if not p.unchanged]
    done = dict(zip(todo, compute(todo))) if todo else {}
    return [done.get(w) for w in windows]


def per_version_batches(lookup: VersionLookup | None, model: ModelConfig, windows: Sequence[Window],
                        batch: Callable[[str | None, WindowBatch], list[list[MetricDocument]]]
                        ) -> list[list[MetricDocument]] | None:
    """No version configured and the windows hold versioned traffic: each version's windows in one batch
    (``batch(version, its windows)``, version None for a window without events), documents regrouped per
    window in order. None when a version is configured or no window has versioned traffic."""
    if model.version is not None:
        return None
    versions = versions_by_window(lookup, model, windows)
    if all(found == [None] for found in versions.values()):
        return None
    parts: dict[tuple[Window, str | None], list[MetricDocument]] = {}
    for version, mine in by_version(versions).items():
        parts.update(zip(((w, version) for w in mine), batch(version, WindowBatch.of(mine))))
    return [[d for v in found for d in parts[(w, v)]] for w, found in sorted(versions.items())]


def for_version(model: ModelConfig, version: str | None) -> ModelConfig:
    """The model as the jobs see one version's traffic: queries and documents of ``version`` only.

    Checkpoint keys are taken from the configured model, never from this view, so they stay stable.
    """
    return model if version is None or version == model.version else replace(model, version=version)


def event_checkpoint_key(model: ModelConfig) -> str:
    """The event-time schedule's checkpoint (named after drift, its first job, as stores already hold it)."""
    return f"drift:{model.name}:{model.version or '*'}"


@dataclass(frozen=True)
class EventSchedule:
    """Windows after the checkpoint (or just the latest one, on a first run) up to ``at - lateness``."""

    store: Store
    model: ModelConfig

    @property
    def checkpoint(self) -> str:
        return event_checkpoint_key(self.model)

    def due(self, at: datetime) -> list[Window]:
        model = self.model
        last_end = floor_time(at - model.lateness, model.window)
        done = self.store.get_checkpoint(self.checkpoint)
        if done is None:
            return [(last_end - model.window, last_end)]
        due = list(aligned_windows(done, last_end, model.window))
        if len(due) > MAX_CATCH_UP:
            log.warning("model %s: %d windows missed; computing the last %d, backfill the rest",
                        model.name, len(due), MAX_CATCH_UP)
            due = due[-MAX_CATCH_UP:]
        return due


@dataclass(frozen=True)
class LabelSchedule:
    """Windows ending within the look-back and after the last final one, up to ``at - lateness``."""

    store: Store
    model: ModelConfig
    lookback: timedelta

    @property
    def final_checkpoint(self) -> str:
        return f"performance-final:{self.model.name}:{self.model.version or '*'}"

    @property
    def computed_checkpoint(self) -> str:
        return f"performance:{self.model.name}:{self.model.version or '*'}"

    def due(self, at: datetime) -> list[Window]:
        size = self.model.window
        last_end = floor_time(at - self.model.lateness, size)
        first = floor_time(at - self.lookback, size)
        final = self.store.get_checkpoint(self.final_checkpoint)
        if final is not None and final > first:
            first = final
        return list(aligned_windows(first, last_end, size))
