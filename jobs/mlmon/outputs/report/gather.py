"""Read what a report shows from a store: metric documents and alerts of a range, reference vs the
latest evaluated window per feature, and the label joins behind the standard performance plots.

Only existing store questions are asked (``read_metrics``, ``recent_alerts``, ``get_reference``,
``window_statistics``, ``labels().labelled_window``): sufficient statistics, never rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from mlmon.config.model import Config, ModelConfig
from mlmon.config.performance import PerformanceConfig
from mlmon.core.documents import iso
from mlmon.core.labels import LabelQuery
from mlmon.core.perf_stats import uniform_edges
from mlmon.core.queries import WindowQuery
from mlmon.core.reference import ReferenceProfile
from mlmon.jobs.drift import display_name
from mlmon.jobs.performance import PerformanceReference, reference_key
from mlmon.outputs.report.data import (CategoricalDistribution, LabelledPeriod, ModelReport, NumericDistribution,
                                       Report)
from mlmon.outputs.report.series import JUDGED, segment_of, ts
from mlmon.stores.protocols import Store

#: Metric documents read per report (newest windows first); more are counted and stated in the header.
MAX_METRICS = 200_000
MAX_ALERTS = 5_000


def gather(store: Store, store_url: str, model: str | None = None, title: str = "mlmon model monitoring report", *,
           start: datetime | None = None, end: datetime | None = None, config: Config | None = None) -> Report:
    """Everything a report of ``[start, end)`` (windows overlapping it; open ends: all) shows.

    ``config`` (the ``mlmon.yaml`` the jobs ran with) tells the performance reference period, task
    and positive label; without it they are inferred from the documents and the reference plots
    are left out, with a note saying so.
    """
    page = store.read_metrics(model=model, limit=MAX_METRICS, start=start, end=end)
    by_model: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for m in page:
        by_model[(m["mlmon"]["model"]["name"], m["mlmon"]["model"]["version"])].append(m)
    newest = store.alert_store().recent_alerts(model=model, limit=MAX_ALERTS)
    alerts = [a for a in newest if _in_range(a, start, end)]
    # The newest MAX_ALERTS are read, then the range: when they were all there were to read, none is missing;
    # else older alerts of the range may be, and the report says so rather than showing fewer in silence.
    capped = len(newest) >= MAX_ALERTS and (start is None or min(str(a.get("@timestamp", "")) for a in newest)
                                             > iso(start))
    reports = []
    for (name, version), docs in sorted(by_model.items()):
        mr = ModelReport(model=name, version=version, metrics=docs,
                         alerts=[a for a in alerts if a.get("mlmon", {}).get("model", {}).get("name") == name
                                 and a.get("mlmon", {}).get("model", {}).get("version") == version])
        if capped:
            mr.notes.append(f"only the newest {MAX_ALERTS:,} alerts in the store were read: older alerts of the "
                            "range may be missing from the alerts table")
        _add_distributions(store, mr)
        _add_labelled(store, mr, _model_config(config, name))
        reports.append(mr)
    return Report(title=title, generated_at=datetime.now(timezone.utc), store=store_url, models=reports,
                  start=start, end=end, metrics_left_out=page.total - len(page))


def _in_range(alert: dict[str, Any], start: datetime | None, end: datetime | None) -> bool:
    at = alert.get("@timestamp")
    if not at:
        return True
    t = ts(at)
    return (start is None or t > start) and (end is None or t <= end)


def _model_config(config: Config | None, name: str) -> ModelConfig | None:
    if config is None:
        return None
    return next((m for m in config.models if m.name == name), None)


def _add_distributions(store: Store, mr: ModelReport) -> None:
    """Every feature's reference vs the newest drift window that could be judged (not an empty one)."""
    drift = [m for m in mr.metrics if m["metric"]["family"] in ("drift", "prediction_drift")
             and m["metric"]["feature"] and not segment_of(m) and m["metric"]["status"] in JUDGED]
    if not drift:
        return
    last_end = max(m["window"]["end"] for m in drift)
    chosen = sorted({m["metric"]["feature"] for m in drift if m["window"]["end"] == last_end})
    reference = store.get_reference(mr.model, mr.version)
    if reference is None:
        mr.notes.append(f"no reference profile of {mr.model} v{mr.version} in the store: distributions not drawn")
        return
    fields = _fields_by_display_name(reference)
    numeric = {fields[f]: reference.numeric[fields[f]].edges for f in chosen if fields.get(f) in reference.numeric}
    categorical = {fields[f]: tuple(reference.categorical[fields[f]].counts) for f in chosen
                   if fields.get(f) in reference.categorical}
    start = ts(next(m["window"]["start"] for m in drift if m["window"]["end"] == last_end))
    end = ts(last_end)
    stats = store.window_statistics(WindowQuery(model=mr.model, version=mr.version, start=start, end=end,
                                                numeric=numeric, categorical=categorical))
    for f in chosen:
        name = fields.get(f)
        if name is None:
            continue
        if name in stats.numeric:
            ref, cur = reference.numeric[name], stats.numeric[name]
            mr.distributions.append(NumericDistribution(f, list(ref.edges), [float(c) for c in ref.counts],
                                                        [float(c) for c in cur.counts]))
        elif name in stats.categorical:
            refc, curc = reference.categorical[name], stats.categorical[name]
            mr.distributions.append(CategoricalDistribution(
                f, {k: float(v) for k, v in refc.counts.items()},
                {**{k: float(v) for k, v in curc.counts.items()}, **({"(other)": float(curc.other)} if curc.other else {})}))
    mr.distribution_window = (start, end)


def _fields_by_display_name(reference: ReferenceProfile) -> dict[str, str]:
    return {display_name(f): f for f in reference.fields()}


def _add_labelled(store: Store, mr: ModelReport, model: ModelConfig | None) -> None:
    """The label joins of the newest judged performance window and of the reference period."""
    perf = [m for m in mr.metrics if m["metric"]["family"] == "performance" and not segment_of(m)]
    if not perf:
        return
    cfg = model.sections.get("performance") if model is not None else None
    query = _query_shape(perf, cfg if isinstance(cfg, PerformanceConfig) else None)
    judged = [m for m in perf if m["metric"]["status"] in JUDGED]
    labels = store.labels()
    if judged:
        newest = max(judged, key=lambda m: m["window"]["end"])
        start, end = ts(newest["window"]["start"]), ts(newest["window"]["end"])
        mr.labelled.append(_period(labels.labelled_window(LabelQuery(model=mr.model, start=start, end=end,
                                                                     version=mr.version, **query)),
                                   "latest", start, end))
    if model is None or not isinstance(cfg, PerformanceConfig) or cfg.reference is None:
        mr.notes.append("performance reference period unknown (give the report the mlmon.yaml the jobs ran with, "
                        "--config): reference confusion matrix, curves and values left out")
        return
    stored = labels.get_performance_reference(reference_key(model, cfg))
    if stored is not None:
        mr.reference_metrics = dict(PerformanceReference.from_document(stored).metrics)
    start, end = cfg.reference
    mr.labelled.append(_period(labels.labelled_window(LabelQuery(model=mr.model, start=start, end=end,
                                                                 version=mr.version, **query)),
                               "reference", start, end))


def _query_shape(perf: list[dict[str, Any]], cfg: PerformanceConfig | None) -> dict[str, Any]:
    """Task, positive label, classes and bins of the label join: from the config, else from the documents."""
    if cfg is not None:
        eh = cfg.error_histogram
        return {"task": cfg.task, "positive_label": cfg.positive_label, "classes": cfg.classes,
                "score_edges": uniform_edges(cfg.score_bins),
                "error_edges": uniform_edges(eh.bins, eh.low, eh.high) if eh else None}
    names = {m["metric"]["name"] for m in perf}
    if "accuracy" not in names and "confusion_matrix" not in names:
        return {"task": "regression"}
    auc_classes = sorted({m["metric"]["class"] for m in perf if m["metric"]["name"] == "roc_auc" and m["metric"]["class"]})
    matrix_classes = sorted({m["metric"]["class"] for m in perf if m["metric"]["name"] == "confusion_matrix"})
    if len(matrix_classes) >= 3:
        return {"task": "classification", "classes": tuple(matrix_classes)}
    return {"task": "classification", "positive_label": auc_classes[0] if auc_classes else "1"}


def _period(windows: Any, name: str, start: datetime, end: datetime) -> LabelledPeriod:
    w = windows.get("")
    if w is None:
        return LabelledPeriod(name, start, end)
    return LabelledPeriod(name, start, end, classification=w.classification, regression=w.regression)
