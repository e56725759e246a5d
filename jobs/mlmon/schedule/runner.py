"""Scheduling: one round, ``--every`` until stopped, and backfills.

Windows are aligned to the epoch (an hourly window is [10:00, 11:00)), so two
runs, a restart and a backfill all compute the same windows and their
documents get the same ids. A window is checkpointed only after all of its
documents were written; a restart resumes after the last checkpoint.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import FrameType

from mlmon.alerts.local import alert_round
from mlmon.config.alerts import AlertsConfig
from mlmon.stores.protocols import AlertStore
from mlmon.config.model import Config, ModelConfig
from mlmon.core.documents import MetricDocument
from mlmon.jobs.drift import DriftWindowJob
from mlmon.jobs.explainability import ExplainabilityJob, explainability_job
from mlmon.jobs.fairness import FairnessJob, fairness_job
from mlmon.jobs.performance import PerformanceReport, performance_job, run_performance
from mlmon.core.reference import ReferenceProfile
from mlmon.stores.protocols import Store, StoreError
from mlmon.core.windows import floor_time

log = logging.getLogger("mlmon.schedule.runner")
#: Missed windows caught up by one round after downtime; older ones are left to `mlmon backfill`.
MAX_CATCH_UP = 1000


class RunnerError(RuntimeError):
    """A model cannot be monitored (e.g. no reference profile); the message says what to do."""


def parse_time(value: str) -> datetime:
    """ISO 8601 time for the command line; naive times are taken as UTC, 'now' is now."""
    if value.strip().lower() == "now":
        return datetime.now(timezone.utc)
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"{value!r} is not an ISO 8601 time like 2025-01-31T10:00:00Z") from err
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)



def windows(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Aligned windows covering [start, end): starts at the window containing ``start``."""
    s = floor_time(start, size)
    while s < end:
        yield s, s + size
        s += size


def run_every(config: Config, open_store: Callable[[], Store], interval: timedelta, stop: threading.Event,
              clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> int:
    """A round every ``interval`` until ``stop`` is set (a round in progress finishes its current
    window); returns the rounds done.

    Each round opens the store and closes it after: the embedded store is a file one process
    holds at a time, and between rounds it is ``mlmon ingest --follow``'s. A store that cannot
    be opened (held by another process past the wait) skips that round with a warning; the
    service carries on. Errors inside a round end it, as in a single round.
    """
    rounds = 0
    while not stop.is_set():
        try:
            store = open_store()
        except StoreError as err:
            log.warning("round skipped: %s", err)
        else:
            try:
                report = Runner(config, store, clock=clock).round(stop=stop)
            finally:
                store.close()
            rounds += 1
            log.info("round done", extra={"windows": report.windows, "documents": report.documents})
        stop.wait(interval.total_seconds())
    return rounds


def checkpoint_key(model: ModelConfig) -> str:
    return f"drift:{model.name}:{model.version or '*'}"


@dataclass
class RoundReport:
    windows: int = 0
    documents: int = 0
    alerts: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass
class Runner:
    config: Config
    store: Store
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    _references: dict[str, ReferenceProfile] = field(default_factory=dict)
    #: Per model, built once (they load references and model files); run_id is set per round.
    _explain: dict[str, ExplainabilityJob | None] = field(default_factory=dict)
    _fairness: dict[str, FairnessJob | None] = field(default_factory=dict)
    #: The alert adapter over ``store``, made on first use (it prepares its table once).
    _alert_store: AlertStore | None = None

    def reference(self, model: ModelConfig) -> ReferenceProfile:
        if model.name not in self._references:
            profile = self.store.get_reference(model.name, model.version, model.reference)
            if profile is None:
                what = f"reference profile {model.reference!r}" if model.reference else "reference profile"
                raise RunnerError(
                    f"model {model.name}: no {what} in the store; build one with "
                    f"`mlmon reference build --model {model.name} --version V --data train.parquet`")
            self._references[model.name] = profile
        return self._references[model.name]

    def _explain_job(self, model: ModelConfig, run_id: str) -> ExplainabilityJob | None:
        if model.name not in self._explain:
            self._explain[model.name] = explainability_job(
                self.store, model, run_id, default_version=self.reference(model).version, file=self.config.path)
        job = self._explain[model.name]
        if job is not None:
            job.run_id = run_id
        return job

    def _fairness_job(self, model: ModelConfig, run_id: str) -> FairnessJob | None:
        if model.name not in self._fairness:
            self._fairness[model.name] = fairness_job(
                self.store, model, run_id, default_version=self.reference(model).version, file=self.config.path)
        job = self._fairness[model.name]
        if job is not None:
            job.run_id = run_id
        return job

    def _alerts(self, docs: list[MetricDocument]) -> int:
        """Evaluate the alert rules on freshly written documents; returns the alerts written."""
        if not docs:
            return 0
        if self._alert_store is None:
            self._alert_store = self.store.alert_store()
        configs = {m.name: m.sections.get("alerts") or AlertsConfig() for m in self.config.models}
        return len(alert_round(self._alert_store, docs, configs, now=self.clock()).written)

    def run_window(self, model: ModelConfig, start: datetime, end: datetime, run_id: str,
                   advance_checkpoint: bool = True) -> RoundReport:
        """Compute and write one window; checkpoint it only once every document is written.

        Drift and explainability follow this (event-time) schedule; performance and
        fairness depend on labels that arrive late and follow the look-back schedule
        of :meth:`label_round`.
        """
        docs = DriftWindowJob(self.store, model, self.reference(model), run_id).run(start, end)
        explain = self._explain_job(model, run_id)
        if explain is not None:
            docs += explain.run(start, end)
        self.store.write_metrics(docs)  # raises StoreError unless all were written
        if advance_checkpoint:
            done = self.store.get_checkpoint(checkpoint_key(model))
            if done is None or end > done:
                self.store.set_checkpoint(checkpoint_key(model), end)
        alerts = self._alerts(docs)
        log.info("window done", extra={"model": model.name, "start": start.isoformat(), "end": end.isoformat(),
                                       "documents": len(docs), "alerts": alerts})
        return RoundReport(windows=1, documents=len(docs), alerts=alerts)

    def label_round(self, model: ModelConfig, at: datetime, run_id: str) -> RoundReport:
        """Performance (with late-label recomputation) and fairness over the same windows."""
        perf = run_performance(self.store, model, at, run_id)
        return RoundReport() if perf is None else self._label_windows(model, perf, run_id)

    def due_windows(self, model: ModelConfig, at: datetime) -> list[tuple[datetime, datetime]]:
        """Complete windows not yet done: after the checkpoint (or just the latest) up to ``at - lateness``."""
        last_end = floor_time(at - model.lateness, model.window)
        done = self.store.get_checkpoint(checkpoint_key(model))
        if done is None:
            return [(last_end - model.window, last_end)]
        due = list(windows(done, last_end, model.window))
        if len(due) > MAX_CATCH_UP:
            log.warning("model %s: %d windows missed; computing the last %d, backfill the rest",
                        model.name, len(due), MAX_CATCH_UP)
            due = due[-MAX_CATCH_UP:]
        return due

    def round(self, at: datetime | None = None, stop: threading.Event | None = None) -> RoundReport:
        """One round for every configured model: the windows that are due at ``at`` (default: now)."""
        at = at or self.clock()
        run_id = uuid.uuid4().hex
        total = RoundReport()
        for model in self.config.models:
            for start, end in self.due_windows(model, at):
                if stop is not None and stop.is_set():
                    return total
                r = self.run_window(model, start, end, run_id)
                total.windows += r.windows
                total.documents += r.documents
                total.alerts += r.alerts
            r = self.label_round(model, at, run_id)
            total.documents += r.documents
            total.alerts += r.alerts
        return total

    def backfill(self, start: datetime, end: datetime, progress: bool = True) -> RoundReport:
        """Every aligned window in [start, end) for every model, with a progress bar.

        Drift and explainability as in a round; for a model with a ``performance`` section also
        performance and fairness, however old the window (the rounds only revisit the look-back),
        with maturity judged now. Re-running overwrites (deterministic ids). Checkpoints only move
        forward, so a backfill never makes a round redo or skip a window.
        """
        from tqdm import tqdm

        run_id = uuid.uuid4().hex
        at = self.clock()
        plan = [(m, s, e) for m in self.config.models for s, e in windows(start, end, m.window)]
        perf_jobs = {m.name: performance_job(self.store, m, run_id) for m in self.config.models}
        total = RoundReport()
        for model, s, e in tqdm(plan, desc="backfill", unit="window", disable=not progress):
            r = self.run_window(model, s, e, run_id)
            total.windows += 1
            total.documents += r.documents
            total.alerts += r.alerts
            job = perf_jobs[model.name]
            if job is not None:
                labels = self._label_windows(model, job.run_windows([(s, e)], at), run_id)
                total.documents += labels.documents
                total.alerts += labels.alerts
        return total

    def _label_windows(self, model: ModelConfig, perf: PerformanceReport, run_id: str) -> RoundReport:
        """Fairness over the windows performance just wrote, then alerts on both (as in :meth:`label_round`)."""
        docs = list(perf.docs)
        fair = self._fairness_job(model, run_id)
        if fair is not None:
            fair_docs = [d for start, end in perf.spans for d in fair.run(start, end)]
            self.store.write_metrics(fair_docs)
            docs += fair_docs
        return RoundReport(windows=perf.windows, documents=len(docs), alerts=self._alerts(docs))


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM / SIGINT set ``stop``: the runner finishes the window it is on, then exits cleanly."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current window, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
