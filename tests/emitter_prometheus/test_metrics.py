"""mlmon_logging.prometheus in one process: the metrics the dashboards and rules read, from ModelLogger calls."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram

from mlmon_logging import ModelLogger
from mlmon_logging.prometheus import DURATION_BUCKETS, OTHER_CLASS, PrometheusMetrics, _BatchHistogram
from mlmon_logging.sampling import keep

from .conftest import CountingSink as ListSink

LABELS = {"model": "churn", "model_version": "3"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def loggers() -> Iterator[list[ModelLogger]]:
    made: list[ModelLogger] = []
    yield made
    for mlog in made:
        mlog.close()


def _logger(loggers: list[ModelLogger], registry: CollectorRegistry, sink: Any = None, **options: Any) -> ModelLogger:
    metrics = PrometheusMetrics(registry, **{k: options.pop(k) for k in ("classes", "max_classes") if k in options})
    mlog = ModelLogger("churn", "3", sink=sink or ListSink(), stats_interval=None, metrics=metrics, **options)
    loggers.append(mlog)
    return mlog


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, {**LABELS, **labels})
    return 0.0 if value is None else value


def test_predictions_feedback_errors_and_histograms(registry: CollectorRegistry, loggers: list[ModelLogger]) -> None:
    mlog = _logger(loggers, registry, task="classification")
    latencies = [0.5, 3.0, 7.0, 40.0, 2000.0, 9000.0]  # ms
    for i, latency in enumerate(latencies):
        mlog.log_prediction({"x": 1.0}, ("yes", "no")[i % 2], 0.1 + 0.15 * i, latency_ms=latency)
    mlog.log_prediction({"x": 1.0}, "yes")  # no score, no latency: counted, not observed
    mlog.log_feedback("p", "yes")
    mlog.log_prediction_error(TimeoutError("model server timed out"), latency_ms=30.0)
    mlog.log_prediction_error("invalid_input")
    assert mlog.flush(timeout=10)
    assert _value(registry, "mlmon_predictions_total") == 7
    assert _value(registry, "mlmon_feedback_total") == 1
    assert _value(registry, "mlmon_prediction_errors_total") == 2
    assert _value(registry, "mlmon_predictions_by_class_total", **{"class": "yes"}) == 4
    assert _value(registry, "mlmon_predictions_by_class_total", **{"class": "no"}) == 3
    assert _value(registry, "mlmon_prediction_duration_seconds_count") == 6
    assert _value(registry, "mlmon_prediction_duration_seconds_sum") == pytest.approx(sum(latencies) / 1000)
    assert _value(registry, "mlmon_prediction_duration_seconds_bucket", le="0.001") == 1
    assert _value(registry, "mlmon_prediction_duration_seconds_bucket", le="0.005") == 2
    assert _value(registry, "mlmon_prediction_duration_seconds_bucket", le="0.01") == 3
    assert _value(registry, "mlmon_prediction_duration_seconds_bucket", le="2.5") == 5
    assert _value(registry, "mlmon_prediction_duration_seconds_bucket", le="+Inf") == 6
    assert _value(registry, "mlmon_prediction_score_count") == 6
    assert _value(registry, "mlmon_prediction_score_bucket", le="0.25") == 2  # 0.1, 0.25
    assert _value(registry, "mlmon_emitter_queue_events") == 0


def test_the_class_list_is_capped_and_the_overflow_counted(registry: CollectorRegistry,
                                                           loggers: list[ModelLogger]) -> None:
    mlog = _logger(loggers, registry, task="classification", max_classes=3)
    for i in range(10):
        mlog.log_prediction({"x": 1.0}, f"c{i}")
    fixed = _logger(loggers, CollectorRegistry(), task="classification", classes=["a", 1])
    for label in ("a", 1, "1", "b", "c"):
        fixed.log_prediction({"x": 1.0}, label)
    assert mlog.flush(timeout=10) and fixed.flush(timeout=10)
    counted = {f"c{i}": _value(registry, "mlmon_predictions_by_class_total", **{"class": f"c{i}"}) for i in range(10)}
    assert counted == {"c0": 1, "c1": 1, "c2": 1, **{f"c{i}": 0 for i in range(3, 10)}}
    assert _value(registry, "mlmon_predictions_by_class_total", **{"class": OTHER_CLASS}) == 7
    fixed_registry = fixed._metrics._families.by_class  # type: ignore[union-attr]
    samples = {s.labels["class"]: s.value for m in fixed_registry.collect() for s in m.samples
               if s.name.endswith("_total")}
    assert samples == {"a": 1, "1": 2, OTHER_CLASS: 2}


def test_a_regression_counts_no_classes(registry: CollectorRegistry, loggers: list[ModelLogger]) -> None:
    mlog = _logger(loggers, registry, task="regression")
    for value in (1.5, 2.5):
        mlog.log_prediction({"x": 1.0}, value, latency_ms=1.0)
    assert mlog.flush(timeout=10)
    assert _value(registry, "mlmon_predictions_total") == 2
    assert not [s for m in registry.collect() if m.name == "mlmon_predictions_by_class" for s in m.samples]


def test_drops_by_reason_sampling_and_calls_the_full_queue_refused(registry: CollectorRegistry,
                                                                    loggers: list[ModelLogger]) -> None:
    mlog = _logger(loggers, registry, task="classification", queue_size=10, sample_rate=0.5)
    pids = [f"p{i}" for i in range(200)]
    bad = next(pid for pid in pids if keep(pid, 0.5))
    mlog.log_prediction({"x": 1.0}, math.nan, prediction_id=bad)  # refused at the writer: reason "invalid"
    assert mlog.flush(timeout=10)
    emitter = mlog._emitter
    emitter._closing = True  # hold the worker so the queue overflows
    emitter._wake.set()
    emitter._thread.join()  # type: ignore[union-attr]
    emitter._closing, emitter._thread = False, None
    for pid in pids:
        mlog.log_prediction({"x": 1.0}, 1, prediction_id=pid)
        mlog.log_feedback(pid, 1)
        mlog.log_prediction_error("timeout")  # never sampled out
    emitter.start()
    mlog.close()
    stats = mlog.stats
    for reason in ("queue_full", "invalid", "closed", "render_failed", "close_timeout", "sink_gone"):
        assert _value(registry, "mlmon_events_dropped_total", reason=reason) == stats.dropped_by_reason.get(reason, 0)
    assert stats.dropped_by_reason["queue_full"] > 0 and stats.dropped_by_reason["invalid"] == 1
    kept = sum(keep(pid, 0.5) for pid in pids)
    assert 0 < kept < 200
    assert _value(registry, "mlmon_events_sampled_out_total") == stats.sampled_out == 2 * (200 - kept)
    # every kept prediction counts, those the full queue refused and the refused NaN included
    assert _value(registry, "mlmon_predictions_total") == kept + 1
    assert _value(registry, "mlmon_feedback_total") == kept
    assert _value(registry, "mlmon_prediction_errors_total") == 200
    assert _value(registry, "mlmon_prediction_score_count") == 0


@pytest.mark.parametrize("values", [
    [0.0005, 0.001, 0.0011, 0.0025, 0.3, 2.5, 2.6, 100.0],
    [i / 997 for i in range(3000)],
    [],
])
def test_batched_histogram_updates_equal_observe_value_by_value(values: list[float]) -> None:
    """_BatchHistogram writes prometheus_client's private per-bucket counts: pin it to observe()."""
    batched_registry, observed_registry = CollectorRegistry(), CollectorRegistry()
    batched = Histogram("h", "h", buckets=DURATION_BUCKETS, registry=batched_registry)
    observed = Histogram("h", "h", buckets=DURATION_BUCKETS, registry=observed_registry)
    batch = _BatchHistogram(batched, DURATION_BUCKETS)
    for value in values:
        batch.add(value)
        observed.observe(value)
    batch.apply()

    def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, round(s.value, 9)) for m in registry.collect() for s in m.samples
                if not s.name.endswith("_created")]

    assert samples(batched_registry) == samples(observed_registry)


def test_one_metrics_object_per_logger(registry: CollectorRegistry, loggers: list[ModelLogger]) -> None:
    metrics = PrometheusMetrics(registry)
    loggers.append(ModelLogger("a", "1", sink=ListSink(), stats_interval=None, metrics=metrics))
    with pytest.raises(ValueError, match="one ModelLogger"):
        ModelLogger("b", "1", sink=ListSink(), stats_interval=None, metrics=metrics)


def test_an_inferred_regression_counts_no_classes(registry: CollectorRegistry, loggers: list[ModelLogger]) -> None:
    """Without task=, the first event decides; its batch must not be counted as classes first."""
    mlog = _logger(loggers, registry)
    for value in (3.7, 4.7, 5.7):
        mlog.log_prediction({"x": 1.0}, value, latency_ms=1.0)
    assert mlog.flush(timeout=10)
    assert _value(registry, "mlmon_predictions_total") == 3
    assert not [s for m in registry.collect() if m.name == "mlmon_predictions_by_class" for s in m.samples]
