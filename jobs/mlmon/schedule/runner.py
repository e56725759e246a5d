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
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import FrameType

from mlmon.alerts.local import alert_round
from mlmon.alerts.outbox import DeliveryReport, alert_store_of, deliver_outbox
from mlmon.config.alerts import AlertsConfig
from mlmon.config.model import Config, ModelConfig
from mlmon.core.collector import collector_paused
from mlmon.core.alerts import Alert
from mlmon.core.documents import SEVERITY, MetricDocument
from mlmon.core.job_runs import JobRun
from mlmon.core.reference import ReferenceProfile
from mlmon.jobs import base
from mlmon.jobs.base import (EventSchedule, InputsCache, Job, JoinCache, Window, WindowOutput,
                             aligned_windows, event_checkpoint_key, window_chunks)
from mlmon.jobs.drift import DriftJob
from mlmon.jobs.explainability import ExplainabilityJob, explainability_job
from mlmon.jobs.fairness import FairnessJob, fairness_job
from mlmon.jobs.performance import performance_job
from mlmon.schedule.summary import JobFailure, ModelSummary, explain_idle, explain_nothing
from mlmon.stores.protocols import AlertStore, CachingStore, Store, StoreError, WindowFingerprints

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
    service carries on. A failing job is logged and the other jobs and models run on; a store
    error ends the round, as in a single round.
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
            log.info("round done", extra={"windows": report.windows, "documents": report.documents,
                                          "failures": len(report.failures)})
            try:  # after the store is closed: a slow receiver never holds it
                deliver_alerts(config, open_store, clock)
            except StoreError as err:
                log.warning("alert deliveries left for the next round: %s", err)
            for summary in report.models.values():
                if summary.failures or summary.thin or summary.notes:
                    for line in summary.lines():
                        log.warning("%s", line)
        stop.wait(interval.total_seconds())
    return rounds


def alert_configs(config: Config) -> dict[str, AlertsConfig]:
    """Each model's ``alerts:`` section (the defaults when it has none)."""
    return {m.name: m.sections.get("alerts") or AlertsConfig() for m in config.models}


def deliver_alerts(config: Config, open_store: Callable[[], Store],
                   clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> DeliveryReport:
    """Send the alerts queued in the outbox; the store is opened only to take them and to record the outcomes."""
    report = deliver_outbox(alert_store_of(open_store), alert_configs(config), clock=clock)
    if report.any:
        log.info("%s", report.line())
    return report


def checkpoint_key(model: ModelConfig) -> str:
    """The checkpoint of the model's event-time schedule (drift and explainability)."""
    return event_checkpoint_key(model)


def drift_requested(model: ModelConfig) -> bool:
    """Whether the config asks for drift explicitly (else it is skipped when there is no reference profile)."""
    return model.drift_configured


@dataclass
class RoundReport:
    windows: int = 0
    documents: int = 0
    alerts: int = 0
    #: Windows computed again (late labels) and windows whose documents are final.
    recomputed: int = 0
    final: int = 0
    #: Look-back windows not computed again: their inputs are those of their stored documents.
    unchanged: int = 0
    #: The documents written by :func:`run_jobs`, for the alert engine (rounds do not keep them).
    docs: list[MetricDocument] = field(default_factory=list)
    #: Per model: what was evaluated, failures, and why it was nothing or little.
    models: dict[str, ModelSummary] = field(default_factory=dict)
    #: Written documents and fired alerts per status (for ``--fail-on``).
    statuses: Counter[str] = field(default_factory=Counter)
    #: Per job name: seconds spent in the job, windows it computed, documents it wrote.
    job_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    job_windows: Counter[str] = field(default_factory=Counter)
    job_documents: Counter[str] = field(default_factory=Counter)

    def add(self, other: RoundReport, *, windows: bool = True) -> None:
        """Add ``other``'s counts; ``windows=False``: not its windows (a round counts its event windows only)."""
        self.windows += other.windows if windows else 0
        self.documents += other.documents
        self.alerts += other.alerts
        self.recomputed += other.recomputed
        self.final += other.final
        self.unchanged += other.unchanged
        self.statuses.update(other.statuses)
        self.add_job_tallies(other)

    def add_job_tallies(self, other: RoundReport) -> None:
        for name, seconds in other.job_seconds.items():
            self.job_seconds[name] += seconds
        self.job_windows.update(other.job_windows)
        self.job_documents.update(other.job_documents)

    def summary(self, model: str) -> ModelSummary:
        return self.models.setdefault(model, ModelSummary(model))

    @property
    def failures(self) -> list[JobFailure]:
        return [f for s in self.models.values() for f in s.failures]

    def reached(self, status: str) -> int:
        """Documents (and fired alerts) whose status is ``status`` (a key of SEVERITY) or worse."""
        return sum(n for s, n in self.statuses.items() if SEVERITY[s] >= SEVERITY[status])


#: Called when a job fails on a window: the job, the window, the error. The job runs no further windows.
OnError = Callable[[Job, Window, Exception], None]


def run_jobs(store: Store, jobs: Sequence[Job], due: Sequence[Window], at: datetime,
             stop: threading.Event | None = None, on_error: OnError | None = None) -> RoundReport:
    """Jobs of one schedule over its due windows; the only place documents and checkpoints are written.

    Window by window the jobs' outputs are collected; a run of up to :data:`BATCH_WINDOWS` windows is then
    stored with one write of all its documents (``write_metrics`` raises unless all were), then the
    checkpoints the jobs moved (forward only, so one move per key, to the latest end, is the same as
    each in turn), then the fingerprints: per-window writes cost more than the rest of a backfill. A stop
    request ends the run between windows (what was computed is stored). With ``on_error``, a job that
    fails (anything but a StoreError, which concerns every job) is reported and dropped, and the others
    go on; without, it raises.
    """
    report = RoundReport()
    windows = sorted(set(due))
    running = [(job, iter(job.run_windows(windows, at))) for job in jobs]
    pending: list[WindowOutput] = []
    for i, window in enumerate(windows):
        outputs: list[WindowOutput] = []
        for job, outs in list(running):
            began = time.perf_counter()
            try:
                out = next(outs)
            except StoreError:
                raise
            except Exception as err:
                if on_error is None:
                    raise
                on_error(job, window, err)
                running.remove((job, outs))
                continue
            finally:
                report.job_seconds[job.name] += time.perf_counter() - began
            outputs.append(out)
            report.job_windows[job.name] += 1
            report.job_documents[job.name] += len(out.documents)
        if not outputs:
            break  # every job failed
        pending += outputs
        docs = [d for out in outputs for d in out.documents]
        lead = outputs[0]
        report.windows += 1
        report.unchanged += all(out.unchanged for out in outputs)
        report.documents += len(docs)
        report.recomputed += lead.recomputed
        report.final += lead.final
        report.docs += docs
        report.statuses.update(d.status for d in docs)
        stopping = stop is not None and stop.is_set()
        if stopping or (i + 1) % base.BATCH_WINDOWS == 0:
            _store_outputs(store, pending)
            pending = []
        if stopping:
            break
    _store_outputs(store, pending)
    return report


def _store_outputs(store: Store, outputs: Sequence[WindowOutput]) -> None:
    """The documents of ``outputs`` in one write, then the checkpoints they move, then their fingerprints."""
    if not outputs:
        return
    store.write_metrics([d for out in outputs for d in out.documents])
    latest: dict[str, datetime] = {}
    for out in outputs:
        for key, end in out.checkpoints:
            latest[key] = max(end, latest.get(key, end))
    for key, end in latest.items():
        done = store.get_checkpoint(key)
        if done is None or end > done:
            store.set_checkpoint(key, end)
    _store_fingerprints(store, outputs)


def _store_fingerprints(store: Store, outputs: Sequence[WindowOutput]) -> None:
    """After the windows' documents are written: the fingerprints of the inputs they were computed from."""
    computed: dict[str, list[tuple[datetime, str]]] = {}
    for out in outputs:
        if out.fingerprint and not out.unchanged:
            key, fp = out.fingerprint
            computed.setdefault(key, []).append((out.start, fp))
    if not computed:
        return
    labels = store.labels()
    if isinstance(labels, WindowFingerprints):
        for key, fingerprints in computed.items():
            labels.put_fingerprints(key, fingerprints)


@dataclass
class Runner:
    config: Config
    store: Store
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    _references: dict[str, ReferenceProfile | None] = field(default_factory=dict)
    #: Per model, built once (they load references and model files); their run_id is set per round.
    _explain: dict[str, ExplainabilityJob | None] = field(default_factory=dict)
    _fairness: dict[str, FairnessJob | None] = field(default_factory=dict)
    #: The alert adapter over ``store``, made on first use (it prepares its table once).
    _alert_store: AlertStore | None = None
    #: Per model, the jobs set up in this round or backfill (their health is recorded at its end).
    _attempted: dict[str, set[str]] = field(default_factory=dict)
    #: Rounds skip look-back windows whose inputs did not change (False: recompute all, as a backfill does).
    reuse_unchanged: bool = True

    def reference(self, model: ModelConfig) -> ReferenceProfile | None:
        """The drift reference profile: the configured one, else the newest for the model (and version)."""
        if model.name not in self._references:
            self._references[model.name] = self.store.get_reference(model.name, model.version, model.reference)
        return self._references[model.name]

    def _no_reference(self, model: ModelConfig) -> str:
        what = f"reference profile {model.reference!r}" if model.reference else "reference profile"
        version = f" of version {model.version}" if model.version and not model.reference else ""
        return (f"no {what}{version} in the store; build one with `mlmon reference build --model {model.name} "
                f"--version V --data train.parquet`")

    def event_jobs(self, model: ModelConfig, run_id: str, summary: ModelSummary | None = None) -> list[Job]:
        """The jobs of the event-time schedule: drift (when it has a reference profile), then explainability.

        Without a reference profile drift is skipped with a note when the config does not ask for it,
        and fails (a RunnerError, reported as the model's drift failure) when it does.
        """
        summary = summary or ModelSummary(model.name)
        reference = self.reference(model)
        jobs: list[Job] = []
        if reference is not None:
            jobs.append(DriftJob(self.store, model, reference, run_id))
        elif drift_requested(model):
            self._failed(summary, "drift", RunnerError(f"model {model.name}: {self._no_reference(model)}"))
        else:
            note = f"drift skipped: {self._no_reference(model)}"
            if note not in summary.notes:
                log.info("model %s: %s", model.name, note)
                summary.notes.append(note)
        if model.name not in self._explain:
            try:
                self._explain[model.name] = explainability_job(
                    self.store, model, run_id, default_version=reference.version if reference else "",
                    file=self.config.path)
            except StoreError:
                raise
            except Exception as err:  # reported; retried next round (a failed set-up is not kept)
                self._failed(summary, "explainability", err)
        explain = self._explain.get(model.name)
        if explain is not None:
            explain.run_id = run_id
            jobs.append(explain)
        self._attempted.setdefault(model.name, set()).update(j.name for j in jobs)
        return jobs

    def label_jobs(self, model: ModelConfig, run_id: str, summary: ModelSummary | None = None, *,
                   reuse_unchanged: bool = False) -> list[Job]:
        """The jobs of the label schedule: performance, then fairness (on performance's windows, or its own);
        with ``reuse_unchanged`` (rounds) they skip windows whose inputs did not change."""
        summary = summary or ModelSummary(model.name)
        jobs: list[Job] = []
        inputs: InputsCache = {}
        try:
            perf = performance_job(self.store, model, run_id)
        except StoreError:
            raise
        except Exception as err:
            self._failed(summary, "performance", err)
            perf = None
        if perf is not None:
            perf.reuse_unchanged, perf.inputs_cache = reuse_unchanged, inputs
            jobs.append(perf)
        if model.name not in self._fairness:
            try:
                reference = self.reference(model)
                self._fairness[model.name] = fairness_job(self.store, model, run_id,
                                                          default_version=reference.version if reference else "",
                                                          file=self.config.path)
            except StoreError:
                raise
            except Exception as err:  # reported; retried next round (a failed set-up is not kept)
                self._failed(summary, "fairness", err)
        fair = self._fairness.get(model.name)
        if fair is not None:
            fair.run_id = run_id
            fair.reuse_unchanged, fair.inputs_cache = reuse_unchanged, inputs
            jobs.append(fair)
            if perf is not None:  # fairness reads the performance job's label joins of the same windows
                joins: JoinCache = {}
                perf.shared_joins, fair.shared_joins = joins, joins
        self._attempted.setdefault(model.name, set()).update(j.name for j in jobs)
        return jobs

    def _record_health(self, model: ModelConfig, started: datetime, report: RoundReport,
                       summary: ModelSummary) -> None:
        """One JobRun per job of the model set up (or failing) since ``started``: a job with nothing
        due ran fine; a failed one keeps its last success (``mlmon status``, the exporter)."""
        errors: dict[str, str] = {}
        for failure in summary.failures:
            errors.setdefault(failure.job, failure.error)
        names = self._attempted.pop(model.name, set()) | set(errors)
        finished = self.clock()
        runs = [JobRun(model=model.name, family=name, started_at=started, finished_at=finished,
                       duration_seconds=report.job_seconds[name], ok=name not in errors,
                       windows=report.job_windows[name], documents=report.job_documents[name],
                       error=errors.get(name)) for name in sorted(names)]
        self.store.record_job_runs(runs)

    @staticmethod
    def _failed(summary: ModelSummary, job: str, err: Exception, window: Window | None = None) -> None:
        """Report a failed job: one stderr log line naming model and job (structured fields for log shippers)."""
        message = str(err) if isinstance(err, ValueError | RunnerError) else f"{type(err).__name__}: {err}"
        failure = JobFailure(summary.model, job, message, window)
        summary.failures.append(failure)
        log.error("job failed: %s", failure.line(), extra={"model": summary.model, "job": job, "error": message,
                                                           "window_start": window[0].isoformat() if window else None},
                  exc_info=not isinstance(err, ValueError | RunnerError))

    def _alerts(self, docs: list[MetricDocument]) -> list[Alert]:
        """Evaluate the alert rules on freshly written documents; returns the alerts written."""
        if not docs:
            return []
        if self._alert_store is None:
            self._alert_store = self.store.alert_store()
        return alert_round(self._alert_store, docs, alert_configs(self.config), now=self.clock()).written

    def _run(self, model: ModelConfig, jobs: Sequence[Job], due: Sequence[Window], at: datetime,
             summary: ModelSummary, stop: threading.Event | None = None) -> RoundReport:
        """Run one schedule's jobs (a failing one is reported and dropped), then the alert rules on what they wrote."""
        if not jobs or not due:
            return RoundReport()
        failed = {f.job for f in summary.failures}
        jobs = [j for j in jobs if j.name not in failed]
        with collector_paused():
            report = run_jobs(self.store, jobs, due, at, stop,
                              on_error=lambda job, window, err: self._failed(summary, job.name, err, window))
            summary.observe(model, report.docs)
            alerts = self._alerts(report.docs)
        report.alerts = len(alerts)
        report.statuses.update(a.metric.status for a in alerts if a.action != "recovered")
        report.docs = []
        return report

    def event_round(self, model: ModelConfig, due: Sequence[Window], run_id: str, at: datetime,
                    stop: threading.Event | None = None, summary: ModelSummary | None = None) -> RoundReport:
        """Drift and explainability, a batch of windows at a time (one store pass each), each batch
        followed by its alert round (the engine walks the batch's windows in order)."""
        summary = summary or ModelSummary(model.name)
        jobs = self.event_jobs(model, run_id, summary)
        total = RoundReport()
        for chunk in window_chunks(due):
            if stop is not None and stop.is_set():
                break
            r = self._run(model, jobs, chunk, at, summary, stop)
            log.info("windows done", extra={"model": model.name, "start": chunk[0][0].isoformat(),
                                            "end": chunk[-1][1].isoformat(), "windows": r.windows,
                                            "documents": r.documents, "alerts": r.alerts})
            total.add(r)
        return total

    def label_round(self, model: ModelConfig, at: datetime, run_id: str,
                    summary: ModelSummary | None = None) -> RoundReport:
        """Performance (with late-label recomputation) and fairness over the look-back, then alerts on both."""
        summary = summary or ModelSummary(model.name)
        jobs = self.label_jobs(model, run_id, summary, reuse_unchanged=self.reuse_unchanged)
        return self._run(model, jobs, jobs[0].schedule.due(at), at, summary) if jobs else RoundReport()

    def round(self, at: datetime | None = None, stop: threading.Event | None = None) -> RoundReport:
        """One round for every configured model: the windows that are due at ``at`` (default: now).

        Models and their jobs are isolated: a failure is reported (see :meth:`_failed`) and the rest run.
        """
        at = at or self.clock()
        run_id = uuid.uuid4().hex
        total = RoundReport()
        for model in self.config.models:
            started = self.clock()
            summary = total.summary(model.name)
            schedule = EventSchedule(self.store, model)
            due = schedule.due(at)
            events = self.event_round(model, due, run_id, at, stop, summary)
            total.add(events)
            if stop is not None and stop.is_set():
                self._record_health(model, started, events, summary)
                return total
            labels = self.label_round(model, at, run_id, summary)
            # A round counts its event windows; the look-back's recomputations are counted apart.
            total.add(labels, windows=False)
            model_tally = RoundReport()
            model_tally.add_job_tallies(events)
            model_tally.add_job_tallies(labels)
            self._record_health(model, started, model_tally, summary)
            self._explain_round(model, summary, due, schedule, at)
        return total

    def _explain_round(self, model: ModelConfig, summary: ModelSummary, due: Sequence[Window],
                       schedule: EventSchedule, at: datetime) -> None:
        """Notes on a round that evaluated nothing: no window due, or where the data is."""
        if summary.evaluated or summary.failures:
            return
        windows = summary.windows or set(due)
        if not windows:
            checkpoint = self.store.get_checkpoint(schedule.checkpoint)
            next_end = (checkpoint or at) + model.window + model.lateness
            summary.notes += explain_idle(self.store, model, checkpoint, next_end)
        else:
            asked = (min(w[0] for w in windows), max(w[1] for w in windows))
            summary.notes += explain_nothing(self.store, model, asked)

    def backfill(self, start: datetime, end: datetime, progress: bool = True) -> RoundReport:
        """Every aligned window in [start, end) for every model, with a progress bar.

        Drift and explainability as in a round; for a model with a ``performance`` (or ``fairness``)
        section also performance and fairness, however old the window (the rounds only revisit the
        look-back), with maturity judged now. Re-running overwrites (deterministic ids). Checkpoints
        only move forward, so a backfill never makes a round redo or skip a window. Models and jobs are
        isolated as in a round.
        """
        from tqdm import tqdm

        run_id = uuid.uuid4().hex
        at = self.clock()
        plan = [(m, chunk) for m in self.config.models
                for chunk in window_chunks(list(aligned_windows(start, end, m.window)))]
        total = RoundReport()
        started = self.clock()
        tallies = {m.name: RoundReport() for m in self.config.models}
        event_jobs = {m.name: self.event_jobs(m, run_id, total.summary(m.name)) for m in self.config.models}
        label_jobs = {m.name: self.label_jobs(m, run_id, total.summary(m.name)) for m in self.config.models}
        bar = tqdm(total=sum(len(chunk) for _, chunk in plan), desc="backfill", unit="window", disable=not progress)
        for model, chunk in plan:  # a batch of windows per pass: one store query per statistic kind
            summary = total.summary(model.name)
            events = self._run(model, event_jobs[model.name], chunk, at, summary)
            labels = self._run(model, label_jobs[model.name], chunk, at, summary)
            total.documents += events.documents + labels.documents
            total.alerts += events.alerts + labels.alerts
            total.statuses.update(events.statuses + labels.statuses)
            total.windows += len(chunk)
            bar.update(len(chunk))
            tallies[model.name].add_job_tallies(events)
            tallies[model.name].add_job_tallies(labels)
            # A backfill walks the history a batch at a time: what the store cached of one batch goes with
            # it. (A round reads its look-back at most, and the store is closed after it.)
            if isinstance(self.store, CachingStore):
                self.store.release_cache()
        bar.close()
        for model in self.config.models:
            summary = total.summary(model.name)
            self._record_health(model, started, tallies[model.name], summary)
            if not summary.evaluated and not summary.failures:
                summary.notes += explain_nothing(self.store, model, (start, end))
        return total


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM / SIGINT set ``stop``: the runner finishes the window it is on, then exits cleanly."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current window, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
