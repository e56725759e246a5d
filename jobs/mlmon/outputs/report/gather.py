"""Read what a report shows from a store: metric documents, alerts, reference vs latest window."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from mlmon.core.documents import SEVERITY
from mlmon.jobs.drift import display_name
from mlmon.core.reference import ReferenceProfile
from mlmon.outputs.report.data import CategoricalDistribution, ModelReport, NumericDistribution, Report
from mlmon.stores.protocols import Store
from mlmon.core.queries import WindowQuery

#: Features whose distributions the report draws: the most drifted ones in the latest window.
MAX_DISTRIBUTIONS = 8
#: Metric documents read per report (newest windows first).
MAX_METRICS = 200_000


def gather(store: Store, store_url: str, model: str | None = None, title: str = "mlmon model monitoring report") -> Report:
    metrics = store.read_metrics(model=model, limit=MAX_METRICS)
    by_model: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for m in metrics:
        by_model[(m["mlmon"]["model"]["name"], m["mlmon"]["model"]["version"])].append(m)
    alerts = store.alert_store().recent_alerts(model=model, limit=500)
    reports = []
    for (name, version), docs in sorted(by_model.items()):
        mr = ModelReport(model=name, version=version, metrics=docs,
                         alerts=[a for a in alerts if a.get("mlmon", {}).get("model", {}).get("name") == name
                                 and a.get("mlmon", {}).get("model", {}).get("version") == version])
        _add_distributions(store, mr)
        reports.append(mr)
    return Report(title=title, generated_at=datetime.now(timezone.utc), store=store_url, models=reports)


def _add_distributions(store: Store, mr: ModelReport) -> None:
    drift = [m for m in mr.metrics if m["metric"]["family"] == "drift" and m["metric"]["feature"]
             and not m["metric"]["segment"]["field"]]
    if not drift:
        return
    last_end = max(m["window"]["end"] for m in drift)
    latest = [m for m in drift if m["window"]["end"] == last_end]
    worst: dict[str, tuple[int, float]] = {}
    for m in latest:
        key = (SEVERITY.get(m["metric"]["status"], 0), abs(m["metric"]["value"] or 0.0))
        worst[m["metric"]["feature"]] = max(worst.get(m["metric"]["feature"], (0, 0.0)), key)
    chosen = sorted(worst, key=lambda f: worst[f], reverse=True)[:MAX_DISTRIBUTIONS]
    reference = store.get_reference(mr.model, mr.version)
    if reference is None:
        return
    fields = _fields_by_display_name(reference)
    numeric = {fields[f]: reference.numeric[fields[f]].edges for f in chosen if fields.get(f) in reference.numeric}
    categorical = {fields[f]: tuple(reference.categorical[fields[f]].counts) for f in chosen
                   if fields.get(f) in reference.categorical}
    start = _ts(latest[0]["window"]["start"])
    end = _ts(last_end)
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


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
