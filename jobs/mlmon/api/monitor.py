"""``connect(url)``: a :class:`Monitor` over one store, with the CLI's commands as methods."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mlmon.api.frames import alerts_frame, metrics_frame
from mlmon.api.report import ReportView, build_report
from mlmon.api.views import FeatureView
from mlmon.config import model as cfg
from mlmon.core.reference import DEFAULT_BINS, build_from_frame
from mlmon.schedule.runner import RoundReport, Runner, parse_time
from mlmon.stores.protocols import Store
from mlmon.stores.url import duckdb_file, open_store

#: Metric documents read by default: a notebook asks for a model's history, not the first page.
DEFAULT_LIMIT = 100_000
Time = datetime | str | None


class APIError(ValueError):
    """A call the API cannot make as asked; the message names the argument and the fix."""


@dataclass(frozen=True)
class ReferenceInfo:
    id: str
    rows: int
    numeric: int
    categorical: int


def connect(url: str, config: str | Path | cfg.Config | None = None) -> Monitor:
    """A monitor over the store at ``url`` (``duckdb:///mlmon.duckdb``, ``https://host:9200``).

    ``config``: the ``mlmon.yaml`` (a path, or a parsed :class:`~mlmon.config.model.Config`), needed by
    ``run``/``backfill``; the report uses it for the performance reference period. Nothing is opened yet:
    every call opens the store and closes it after (the embedded store is one process's at a time).
    """
    duckdb_file(url)  # a malformed URL fails here, on one line, not at the first call
    parsed = cfg.load(config) if isinstance(config, str | Path) else config
    return Monitor(url, parsed)


class Monitor:
    def __init__(self, url: str, config: cfg.Config | None = None) -> None:
        self.url = url
        self.config = config

    def __repr__(self) -> str:
        models = ", ".join(m.name for m in self.config.models) if self.config else "no config"
        return f"<Monitor {self.url} ({models})>"

    @contextmanager
    def _store(self, read_only: bool) -> Iterator[Store]:
        store = open_store(self.url, read_only=read_only)
        try:
            yield store
        finally:
            store.close()

    def _config(self, what: str) -> cfg.Config:
        if self.config is None:
            raise APIError(f"{what} needs the configuration: connect(url, config='mlmon.yaml')")
        return self.config

    # --- what the CLI writes ---------------------------------------------------------------

    def ingest(self, source: str | Path | Iterable[bytes | str]) -> dict[str, int]:
        """Store JSON-lines events (a file, or lines) in the embedded store, as ``mlmon ingest`` does;
        returns counts: stored per dataset, duplicates and dead letters."""
        from mlmon.ingest import ingest_lines

        path = duckdb_file(self.url)
        if path is None:
            raise APIError(f"ingest writes the embedded store; {self.url} is Elasticsearch (ship events with Logstash)")
        if isinstance(source, str | Path):
            with open(source, "rb") as fh:
                report = ingest_lines(fh, path, source_path=str(source))
        else:
            report = ingest_lines(source, path)
        return {**{f"stored.{k}": int(v) for k, v in report.stored.items()},
                "duplicates": int(sum(report.duplicates.values())), "dead_letters": int(sum(report.dead_lettered.values()))}

    def build_reference(self, frame: pd.DataFrame, model: str, version: str, *, exclude: Sequence[str] = (),
                        numeric: Sequence[str] = (), categorical: Sequence[str] = (), bins: int = DEFAULT_BINS,
                        source: str = "python api") -> ReferenceInfo:
        """Profile training data (one column per feature) and store it, as ``mlmon reference build --data``."""
        profile = build_from_frame(frame, model, version, bins=bins, numeric=numeric, categorical=categorical,
                                   exclude=exclude, source=source)
        with self._store(read_only=False) as store:
            ref_id = store.put_reference(profile)
        return ReferenceInfo(ref_id, profile.rows, len(profile.numeric), len(profile.categorical))

    def run(self, at: Time = None) -> RoundReport:
        """One round of every configured model's due windows, as ``mlmon run`` (``at``: default now)."""
        config = self._config("run")
        with self._store(read_only=False) as store:
            return Runner(config, store).round(_time(at, "at"))

    def backfill(self, start: Time, end: Time) -> RoundReport:
        """Every window in ``[start, end)``, as ``mlmon backfill`` (re-running overwrites)."""
        config = self._config("backfill")
        t0, t1 = _time(start, "start"), _time(end, "end")
        if t0 is None or t1 is None or not t0 < t1:
            raise APIError(f"backfill needs start < end, got {start!r} and {end!r}")
        with self._store(read_only=False) as store:
            return Runner(config, store).backfill(t0, t1, progress=False)

    # --- what the CLI reads ------------------------------------------------------------------

    def metrics(self, model: str | None = None, *, version: str | None = None, family: str | Sequence[str] = (),
                feature: str | Sequence[str] = (), status: str | Sequence[str] = (), start: Time = None,
                end: Time = None, limit: int = DEFAULT_LIMIT) -> pd.DataFrame:
        """Metric documents as a flat DataFrame (see :mod:`mlmon.api.frames`), newest window first."""
        t0, t1 = _time(start, "start"), _time(end, "end")  # argument errors before the store is opened
        with self._store(read_only=True) as store:
            page = store.read_metrics(model, limit=limit, start=t0, end=t1, version=version, families=_list(family), features=_list(feature),
                                      statuses=_list(status))
        frame = metrics_frame(page)
        frame.attrs["total"] = page.total  # how many matched; more than len(frame) when the limit cut
        return frame

    def alerts(self, model: str | None = None, limit: int = 1000) -> pd.DataFrame:
        """Alert documents (fired, escalated, renotified, recovered) as a flat DataFrame, newest first."""
        with self._store(read_only=True) as store:
            return alerts_frame(store.alert_store().recent_alerts(model=model, limit=limit))

    def references(self, model: str | None = None) -> pd.DataFrame:
        with self._store(read_only=True) as store:
            return pd.DataFrame(store.list_references(model))

    def report(self, model: str | None = None, *, start: Time = None, end: Time = None,
               title: str = "mlmon model monitoring report") -> ReportView:
        """The HTML report of ``[start, end)``; displays inline in Jupyter, ``.save(path)`` writes the file."""
        return build_report(self.url, model=model, start=_time(start, "start"), end=_time(end, "end"),
                            config=self.config, title=title)

    def feature_drift(self, model: str, feature: str, *, version: str | None = None, start: Time = None,
                      end: Time = None) -> FeatureView:
        """One feature's drift over time, all traffic and each segment (a smaller view than the report)."""
        t0, t1 = _time(start, "start"), _time(end, "end")
        with self._store(read_only=True) as store:
            docs = store.read_metrics(model, limit=DEFAULT_LIMIT, start=t0, end=t1, version=version, families=("drift", "prediction_drift"), features=(feature,))
        if not docs:
            raise APIError(f"no drift documents of feature {feature!r} of model {model!r} in {self.url}; "
                           "list the features with mon.metrics(model, family='drift').feature.unique()")
        return FeatureView(model, feature, docs, total=docs.total)


def _time(value: Time, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise APIError(f"{name}={value!r} is naive: pass an aware datetime (mlmon works in UTC)")
        return value
    try:
        return parse_time(value)
    except ValueError as err:
        raise APIError(f"{name}: {err}") from None


def _list(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


