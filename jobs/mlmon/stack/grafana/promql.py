"""Metric names and the label selectors the dashboards' PromQL shares.

The names are the contract with the model service's metrics (``mlmon_logging``) and
the jobs' exporter (``mlmon serve-metrics``); the tests check that every query uses
only these. Grafana replaces ``$model`` and ``$model_version`` (dashboard variables)
and ``$__rate_interval``, ``$__interval``, ``$__range`` before Prometheus sees a query.
"""

from __future__ import annotations

from mlmon.outputs.prometheus import series

# Model service (labels model, model_version).
PREDICTIONS = "mlmon_predictions_total"
PREDICTION_DURATION = "mlmon_prediction_duration_seconds"   # histogram
PREDICTION_SCORE = "mlmon_prediction_score"                 # histogram
PREDICTIONS_BY_CLASS = "mlmon_predictions_by_class_total"   # + class
FEEDBACK = "mlmon_feedback_total"
PREDICTION_ERRORS = "mlmon_prediction_errors_total"
EVENTS_DROPPED = "mlmon_events_dropped_total"               # + reason
EVENTS_SAMPLED_OUT = "mlmon_events_sampled_out_total"
EMITTER_QUEUE = "mlmon_emitter_queue_events"                # gauge

# Jobs exporter: model, model_version, family, metric, feature, class, segment, window.
SEVERITY = series.SEVERITY_GAUGE
DRIFT_STATISTIC = "mlmon_drift_statistic"
PERFORMANCE_RATIO = series.PERFORMANCE_GAUGE                # + estimated="true|false"
LABEL_COVERAGE = "mlmon_label_coverage_ratio"
FAIRNESS_GAP = "mlmon_fairness_gap"
ATTRIBUTION_DRIFT = "mlmon_attribution_drift"
WINDOW_END = series.FRESHNESS_GAUGE
JOB_LAST_SUCCESS = "mlmon_job_last_success_timestamp_seconds"  # model, family
JOB_DURATION = "mlmon_job_duration_seconds"                     # model, family
EXPORTER_SERIES_DROPPED = "mlmon_exporter_series_dropped_total"

#: Every series name a dashboard may query (histograms through their _bucket/_sum/_count).
METRIC_NAMES: frozenset[str] = frozenset({
    PREDICTIONS, f"{PREDICTION_DURATION}_bucket", f"{PREDICTION_SCORE}_bucket", PREDICTIONS_BY_CLASS,
    FEEDBACK, PREDICTION_ERRORS, EVENTS_DROPPED, EVENTS_SAMPLED_OUT, EMITTER_QUEUE,
    # The exporter's own list, so a gauge renamed there fails the dashboards' checks.
    *series.GAUGES, EXPORTER_SERIES_DROPPED,
})

#: The exporter's `window` label: the newest window, and the newest one whose labels have matured.
LATEST = "latest"
LATEST_FINAL = "latest_final"

RATE = "$__rate_interval"


def selector(metric: str, *matchers: str, versions: bool = True) -> str:
    """``metric{model=~"$model", model_version=~"$model_version", <matchers>}``.

    ``=~`` because Grafana renders a multi-value variable as a regex alternation.
    """
    labels = ['model=~"$model"'] + (['model_version=~"$model_version"'] if versions else []) + list(matchers)
    return f"{metric}{{{', '.join(labels)}}}"


def all_traffic(metric: str, family: str, window: str = LATEST) -> str:
    """A job metric for all traffic: an empty label matches series without it, as the exporter writes ""."""
    return selector(metric, f'family="{family}"', f'window="{window}"', 'segment=""')


def rate(metric: str, *matchers: str) -> str:
    return f"rate({selector(metric, *matchers)}[{RATE}])"


def quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({selector(histogram + '_bucket')}[{RATE}])))"
