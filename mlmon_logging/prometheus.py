"""Request-level Prometheus metrics of a model service, fed by the same ``ModelLogger`` calls.

Opt-in, with the extra ``mlmon[prometheus]`` (``prometheus_client``)::

    from prometheus_client import start_http_server
    from mlmon_logging import ModelLogger
    from mlmon_logging.prometheus import PrometheusMetrics

    mlog = ModelLogger("churn", "3", sink="file:///var/log/mlmon/events.jsonl", metrics=PrometheusMetrics())
    start_http_server(9108)  # or serve prometheus_client.generate_latest() from the app's /metrics

Nothing is added to the request path: the caller still only queues its tuple, and the
writer thread turns each batch into samples, a few updates per batch rather than several
per event. So the metrics follow the event stream: a call whose event was sampled out
counts only in ``mlmon_events_sampled_out_total``; one the full queue refused still counts
in ``mlmon_predictions_total`` / ``mlmon_feedback_total`` / ``mlmon_prediction_errors_total``
(and in ``mlmon_events_dropped_total{reason="queue_full"}``) but not in the histograms.

Metrics (labels ``model``, ``model_version`` on every one):

* ``mlmon_predictions_total`` - predictions logged;
* ``mlmon_prediction_duration_seconds`` - histogram of ``latency_ms`` / 1000, buckets 1 ms to 2.5 s;
* ``mlmon_prediction_score`` - histogram of ``score``, buckets 0.05 to 1;
* ``mlmon_predictions_by_class_total{class}`` - classification predictions per predicted
  class; at most ``max_classes`` distinct classes per process (or exactly ``classes``, when
  given), the rest under ``class="__other__"``;
* ``mlmon_feedback_total`` - ground truths logged;
* ``mlmon_prediction_errors_total`` - failed predictions (``ModelLogger.log_prediction_error``);
* ``mlmon_events_dropped_total{reason}`` - events lost, ``reason`` one of
  ``mlmon_logging.emitter.DROP_REASONS``;
* ``mlmon_events_sampled_out_total`` - calls not logged because of ``sample_rate``;
* ``mlmon_emitter_queue_events`` - events waiting in the queue (gauge; summed over live
  processes in multiprocess mode).

Pre-fork servers (gunicorn, uWSGI): prometheus_client's multiprocess mode. Point
``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before the server starts (each
process writes its samples to files there), serve ``/metrics`` from a registry that
reads them all, and tell the library when a worker dies so its gauge samples go::

    # gunicorn.conf.py
    from prometheus_client import multiprocess

    def child_exit(server, worker):
        multiprocess.mark_process_dead(worker.pid)

    # the app's /metrics
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    body = generate_latest(registry)

Counters and histograms of dead workers stay in the sums (that is what keeps totals
monotonic); empty the directory when the whole server restarts.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any, Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from mlmon_logging.emitter import DROP_REASONS, EmitterStats
from mlmon_logging.events import ModelIdentity
from mlmon_logging.items import (
    FEEDBACK,
    PREDICTION,
    PREDICTION_ERROR,
    PREDICTION_LATENCY,
    PREDICTION_OUTPUT,
    PREDICTION_SCORE,
)
from mlmon_logging.values import NOT_FINITE, MISSING, Unrepresentable, to_label, to_number

#: Upper bounds of ``mlmon_prediction_duration_seconds`` (seconds): 1 ms to 2.5 s.
DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Upper bounds of ``mlmon_prediction_score``.
SCORE_BUCKETS: Final = tuple(round(0.05 * i, 2) for i in range(1, 21))
#: The ``class`` label of predictions past the class cap.
OTHER_CLASS: Final = "__other__"
DEFAULT_MAX_CLASSES: Final = 50
_LABELS: Final = ("model", "model_version")


class _Families:
    """The metric families, registered once per registry and shared by every logger using it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = Counter("mlmon_predictions", "Predictions logged.", _LABELS, registry=registry)
        self.duration = Histogram("mlmon_prediction_duration_seconds", "Time the model took per prediction.",
                                  _LABELS, buckets=DURATION_BUCKETS, registry=registry)
        self.score = Histogram("mlmon_prediction_score", "Model score of the predictions.", _LABELS,
                               buckets=SCORE_BUCKETS, registry=registry)
        self.by_class = Counter("mlmon_predictions_by_class", "Classification predictions per predicted class "
                                f"(past the class cap: class=\"{OTHER_CLASS}\").", (*_LABELS, "class"),
                                registry=registry)
        self.feedback = Counter("mlmon_feedback", "Ground truths logged.", _LABELS, registry=registry)
        self.errors = Counter("mlmon_prediction_errors", "Predictions the model failed to make.", _LABELS,
                              registry=registry)
        self.dropped = Counter("mlmon_events_dropped", "Events lost before reaching the sink, by reason.",
                               (*_LABELS, "reason"), registry=registry)
        self.sampled_out = Counter("mlmon_events_sampled_out", "Calls not logged because of sample_rate.", _LABELS,
                                   registry=registry)
        self.queue = Gauge("mlmon_emitter_queue_events", "Events waiting in the emitter's queue.", _LABELS,
                           multiprocess_mode="livesum", registry=registry)


_families: weakref.WeakKeyDictionary[CollectorRegistry, _Families] = weakref.WeakKeyDictionary()
_families_lock = threading.Lock()


def _families_of(registry: CollectorRegistry) -> _Families:
    with _families_lock:
        families = _families.get(registry)
        if families is None:
            families = _families[registry] = _Families(registry)
        return families


class _BatchHistogram:
    """Many observations of one histogram child in one update per bucket.

    prometheus_client has no bulk observe; ``observe`` takes a lock and writes the sum and
    a bucket per value (two mmap writes each in multiprocess mode). Its children keep one
    non-cumulative count per bucket (``_buckets``) and the ``_sum``; tests/emitter_prometheus
    checks that this gives exactly what ``observe`` does, value by value.
    """

    def __init__(self, child: Any, bounds: tuple[float, ...]) -> None:
        self._child = child
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: +Inf
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect_left(self._bounds, value)] += 1  # `value <= bound`, as observe() picks
        self.total += value

    def apply(self) -> None:
        if not any(self.counts):
            return
        buckets = self._child._buckets
        for index, count in enumerate(self.counts):
            if count:
                buckets[index].inc(count)
        self._child._sum.inc(self.total)
        self.counts = [0] * len(self.counts)
        self.total = 0.0


class PrometheusMetrics:
    """Prometheus metrics of one ``ModelLogger`` (pass it as ``ModelLogger(..., metrics=...)``).

    Args:
        registry: where the metric families live (default: prometheus_client's global
            ``REGISTRY``). Loggers sharing a registry share the families, told apart by
            their ``model`` / ``model_version`` labels.
        classes: the predicted classes to count by name; any other class counts as
            ``__other__``. Left out, the first ``max_classes`` classes seen are kept.
        max_classes: the cap on distinct ``class`` label values when ``classes`` is not given.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, classes: Iterable[Any] | None = None,
                 max_classes: int = DEFAULT_MAX_CLASSES) -> None:
        if max_classes < 1:
            raise ValueError(f"max_classes must be >= 1, got {max_classes!r}")
        self._families = _families_of(REGISTRY if registry is None else registry)
        self._fixed_classes = None if classes is None else frozenset(str(to_label(c)) for c in classes)
        self._max_classes = max_classes
        self._bound = False
        self._task: Callable[[], str] = lambda: "classification"
        self._missed_lock = threading.Lock()
        self._missed: dict[int, int] = {}
        self._last_dropped: dict[str, int] = {}
        self._last_sampled_out = 0
        _live.add(self)

    def bind(self, identity: ModelIdentity, task: Callable[[], str]) -> None:
        if self._bound:
            raise ValueError("a PrometheusMetrics serves one ModelLogger: make one per logger")
        self._bound = True
        self._task = task
        f, labels = self._families, (identity.model, identity.version)
        self._predictions = f.predictions.labels(*labels)
        self._feedback = f.feedback.labels(*labels)
        self._errors = f.errors.labels(*labels)
        self._sampled_out = f.sampled_out.labels(*labels)
        self._queue = f.queue.labels(*labels)
        self._dropped = {reason: f.dropped.labels(*labels, reason) for reason in DROP_REASONS}
        self._class_children: dict[str, Any] = {}
        self._class_of = lambda name: f.by_class.labels(*labels, name)
        self._duration = _BatchHistogram(f.duration.labels(*labels), DURATION_BUCKETS)
        self._score = _BatchHistogram(f.score.labels(*labels), SCORE_BUCKETS)
        for reason in DROP_REASONS:  # every reason exported from the start: a rate() needs the zero
            self._dropped[reason].inc(0)

    # --- caller thread, only when the queue refused items -------------------------------------
    def refused(self, items: list[Any]) -> None:
        """Calls the queue refused still count as calls (their kinds, added at the next report)."""
        with self._missed_lock:
            for item in items:
                self._missed[item[0]] = self._missed.get(item[0], 0) + 1

    # --- writer thread ----------------------------------------------------------------------
    def batch(self, items: list[Any]) -> None:
        predictions = feedback = errors = 0
        classes: dict[str, int] = {}
        classification = self._task() == "classification"
        duration, score = self._duration, self._score
        for item in items:
            kind = item[0]
            if kind == PREDICTION:
                predictions += 1
                seconds = _finite(item[PREDICTION_LATENCY])
                if seconds is not None and seconds >= 0.0:
                    duration.add(seconds / 1000.0)
                value = _finite(item[PREDICTION_SCORE])
                if value is not None:
                    score.add(value)
                if classification:
                    label = to_label(item[PREDICTION_OUTPUT])
                    if isinstance(label, str) and not isinstance(label, Unrepresentable):
                        classes[label] = classes.get(label, 0) + 1
            elif kind == FEEDBACK:
                feedback += 1
            elif kind == PREDICTION_ERROR:
                errors += 1
        self._count(predictions, feedback, errors)
        for label, count in classes.items():
            self._class_child(label).inc(count)
        duration.apply()
        score.apply()

    def report(self, stats: EmitterStats) -> None:
        with self._missed_lock:
            missed, self._missed = self._missed, {}
        if missed:
            self._count(missed.get(PREDICTION, 0), missed.get(FEEDBACK, 0), missed.get(PREDICTION_ERROR, 0))
        for reason, count in stats.dropped_by_reason.items():
            delta = count - self._last_dropped.get(reason, 0)
            if delta > 0:
                self._dropped[reason].inc(delta)
            self._last_dropped[reason] = count
        delta = stats.sampled_out - self._last_sampled_out
        if delta > 0:
            self._sampled_out.inc(delta)
        self._last_sampled_out = stats.sampled_out
        self._queue.set(stats.queued)

    def _count(self, predictions: int, feedback: int, errors: int) -> None:
        if predictions:
            self._predictions.inc(predictions)
        if feedback:
            self._feedback.inc(feedback)
        if errors:
            self._errors.inc(errors)

    def _class_child(self, label: str) -> Any:
        child = self._class_children.get(label)
        if child is None:
            known = (label in self._fixed_classes if self._fixed_classes is not None
                     else len(self._class_children) < self._max_classes)
            if not known:
                label = OTHER_CLASS
                child = self._class_children.get(label)
            if child is None:
                child = self._class_children[label] = self._class_of(label)
        return child

    def _after_fork_in_child(self) -> None:
        # The child's emitter counts from zero again (and prometheus_client writes its own
        # files): deltas start afresh, and a lock held by a parent thread must not be inherited.
        self._missed_lock = threading.Lock()
        self._missed = {}
        self._last_dropped = {}
        self._last_sampled_out = 0


_live: weakref.WeakSet[PrometheusMetrics] = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    for metrics in list(_live):
        metrics._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_all_after_fork)


def _finite(value: Any) -> float | None:
    """A finite float of an int/float/numpy scalar, else None (a missing or bad value is not observed)."""
    if type(value) is float:
        return value if value - value == 0.0 else None
    if value is None:
        return None
    number = to_number(value)
    if number is MISSING or number is NOT_FINITE or isinstance(number, Unrepresentable):
        return None
    assert isinstance(number, float)
    return number if math.isfinite(number) else None
