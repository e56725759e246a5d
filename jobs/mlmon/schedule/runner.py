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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import FrameType

from mlmon.alerts.local import alert_round
from mlmon.config.alerts import AlertsConfig
from mlmon.config.model import Config, ModelConfig
from mlmon.core.documents import MetricDocument
from mlmon.core.reference import ReferenceProfile
from mlmon.jobs.base import EventSchedule, Job, Window, aligned_windows, event_checkpoint_key
from mlmon.jobs.drift import DriftJob
from mlmon.jobs.explainability import ExplainabilityJob, explainability_job
from mlmon.jobs.fairness import FairnessJob, fairness_job
from mlmon.jobs.performance import performance_job
from mlmon.stores.protocols import AlertStore, Store, StoreError

log = logging.getLogger("mlmon.runner")


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
    """The checkpoint of the model's event-time schedule (drift and explainability)."""
    return event_checkpoint_key(model)


@dataclass
class RoundReport:
    windows: int = 0
    documents: int = 0
    alerts: int = 0
    #: Windows computed again (late labels) and windows whose documents are final.
    recomputed: int = 0
    final: int = 0
    #: The documents written by :func:`run_jobs`, for the alert engine (rounds do not keep them).
    docs: list[MetricDocument] = field(default_factory=list)

    def add(self, other: RoundReport) -> None:
        self.windows += other.windows
        self.documents += other.documents
        self.alerts += other.alerts
        self.recomputed += other.recomputed
        self.final += other.final


def run_jobs(store: Store, jobs: Sequence[Job], due: Sequence[Window], at: datetime,
             stop: threading.Event | None = None) -> RoundReport:
    """Jobs of one schedule over its due windows; the only place documents and checkpoints are written.

    Window by window: every job's documents of the window are written first (``write_metrics``
    raises unless all were), then the checkpoints the jobs moved, forward only. A stop request
    ends the run between windows.
    """
    report = RoundReport()
    ordered = sorted(set(due))
    for outputs in zip(*(job.run_windows(ordered, at) for job in jobs), strict=True):
        docs = [d for out in outputs for d in out.documents]
        store.write_metrics(docs)
        for out in outputs:
            for key, end in out.checkpoints:
                done = store.get_checkpoint(key)
                if done is None or end > done:
                    store.set_checkpoint(key, end)
        lead = outputs[0]
        report.windows += 1
        report.documents += len(docs)
        report.recomputed += lead.recomputed
        report.final += lead.final
        report.docs += docs
        if stop is not None and stop.is_set():
            break
    return report


@dataclass
class Runner:
    config: Config
    store: Store
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    _references: dict[str, ReferenceProfile] = field(default_factory=dict)
    #: Per model, built once (they load references and model files); their run_id is set per round.
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

    def event_jobs(self, model: ModelConfig, run_id: str) -> list[Job]:
        """The jobs of the event-time schedule: drift, then explainability when configured."""
        reference = self.reference(model)
        jobs: list[Job] = [DriftJob(self.store, model, reference, run_id)]
        if model.name not in self._explain:
            self._explain[model.name] = explainability_job(self.store, model, run_id,
                                                           default_version=reference.version, file=self.config.path)
        explain = self._explain[model.name]
        if explain is not None:
            explain.run_id = run_id
            jobs.append(explain)
        return jobs

    def label_jobs(self, model: ModelConfig, run_id: str) -> list[Job]:
        """The jobs of the label schedule: performance, then fairness (none without a performance section)."""
        perf = performance_job(self.store, model, run_id)
        if perf is None:
            return []
        jobs: list[Job] = [perf]
        if model.name not in self._fairness:
            self._fairness[model.name] = fairness_job(self.store, model, run_id,
                                                      default_version=self.reference(model).version,
                                                      file=self.config.path)
        fair = self._fairness[model.name]
        if fair is not None:
            fair.run_id = run_id
            jobs.append(fair)
        return jobs

    def _alerts(self, docs: list[MetricDocument]) -> int:
        """Evaluate the alert rules on freshly written documents; returns the alerts written."""
        if not docs:
            return 0
        if self._alert_store is None:
            self._alert_store = self.store.alert_store()
        configs = {m.name: m.sections.get("alerts") or AlertsConfig() for m in self.config.models}
        return len(alert_round(self._alert_store, docs, configs, now=self.clock()).written)

    def _run(self, jobs: Sequence[Job], due: Sequence[Window], at: datetime,
             stop: threading.Event | None = None) -> RoundReport:
        """Run one schedule's jobs, then the alert rules over what they wrote."""
        if not jobs or not due:
            return RoundReport()
        report = run_jobs(self.store, jobs, due, at, stop)
        report.alerts = self._alerts(report.docs)
        report.docs = []
        return report

    def event_round(self, model: ModelConfig, due: Sequence[Window], run_id: str, at: datetime,
                    stop: threading.Event | None = None) -> RoundReport:
        """Drift and explainability, window by window, each followed by its alert round."""
        jobs = self.event_jobs(model, run_id)
        total = RoundReport()
        for window in due:
            if stop is not None and stop.is_set():
                break
            r = self._run(jobs, [window], at)
            log.info("window done", extra={"model": model.name, "start": window[0].isoformat(),
                                           "end": window[1].isoformat(), "documents": r.documents,
                                           "alerts": r.alerts})
            total.add(r)
        return total

    def label_round(self, model: ModelConfig, at: datetime, run_id: str) -> RoundReport:
        """Performance (with late-label recomputation) and fairness over the look-back, then alerts on both."""
        jobs = self.label_jobs(model, run_id)
        return self._run(jobs, jobs[0].schedule.due(at), at) if jobs else RoundReport()

    def round(self, at: datetime | None = None, stop: threading.Event | None = None) -> RoundReport:
        """One round for every configured model: the windows that are due at ``at`` (default: now)."""
        at = at or self.clock()
        run_id = uuid.uuid4().hex
        total = RoundReport()
        for model in self.config.models:
            due = EventSchedule(self.store, model).due(at)
            total.add(self.event_round(model, due, run_id, at, stop))
            if stop is not None and stop.is_set():
                return total
            labels = self.label_round(model, at, run_id)
            # A round counts its event windows; the look-back's recomputations are counted apart.
            total.documents += labels.documents
            total.alerts += labels.alerts
            total.recomputed += labels.recomputed
            total.final += labels.final
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
        plan = [(m, s, e) for m in self.config.models for s, e in aligned_windows(start, end, m.window)]
        event_jobs = {m.name: self.event_jobs(m, run_id) for m in self.config.models}
        label_jobs = {m.name: self.label_jobs(m, run_id) for m in self.config.models}
        total = RoundReport()
        for model, s, e in tqdm(plan, desc="backfill", unit="window", disable=not progress):
            events = self._run(event_jobs[model.name], [(s, e)], at)
            labels = self._run(label_jobs[model.name], [(s, e)], at)
            total.documents += events.documents + labels.documents
            total.alerts += events.alerts + labels.alerts
            total.windows += 1
        return total


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM / SIGINT set ``stop``: the runner finishes the window it is on, then exits cleanly."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current window, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
