"""Job health: what each job of each model did in its last run, and when it last succeeded.

The runner records one :class:`JobRun` per model and job family at the end of each round or
backfill, including the runs that failed or evaluated nothing, so "the metrics stopped
moving" can be told apart from "the job is failing" (``mlmon status``, the Prometheus
exporter's ``mlmon_job_last_success_timestamp_seconds``). Stores keep one
:class:`JobHealth` per (model, family), folded with :meth:`JobHealth.after`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mlmon.core.documents import iso

#: The job families, in the order a round runs them.
FAMILIES = ("drift", "explainability", "performance", "fairness")


@dataclass(frozen=True)
class JobRun:
    """One run of one job of one model (a round or a backfill)."""

    model: str
    family: str
    started_at: datetime
    finished_at: datetime
    #: Seconds spent in the job itself (its windows), not in the other jobs of the round.
    duration_seconds: float
    ok: bool
    windows: int = 0
    documents: int = 0
    error: str | None = None


@dataclass(frozen=True)
class JobHealth:
    """The last run of a (model, family) and the last one that succeeded."""

    model: str
    family: str
    last_run_at: datetime
    last_success_at: datetime | None
    last_duration_seconds: float
    last_ok: bool
    last_error: str | None = None
    last_windows: int = 0
    last_documents: int = 0

    @property
    def key(self) -> str:
        return health_key(self.model, self.family)

    def after(self, run: JobRun) -> JobHealth:
        """This health once ``run`` is done (a failed run keeps the last success)."""
        if (run.model, run.family) != (self.model, self.family):
            raise ValueError(f"run of {run.model}/{run.family} folded into health of {self.model}/{self.family}")
        return replace(first_health(run), last_success_at=run.finished_at if run.ok else self.last_success_at)

    def to_fields(self) -> dict[str, Any]:
        """Flat, JSON-ready fields (stored as the ``job.*`` object of the health document)."""
        return {"model": self.model, "family": self.family, "last_run_at": iso(self.last_run_at),
                "last_success_at": iso(self.last_success_at) if self.last_success_at else None,
                "last_duration_seconds": self.last_duration_seconds, "last_ok": self.last_ok,
                "last_error": self.last_error, "last_windows": self.last_windows,
                "last_documents": self.last_documents}

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> JobHealth:
        success = fields.get("last_success_at")
        return cls(model=fields["model"], family=fields["family"], last_run_at=_parse(fields["last_run_at"]),
                   last_success_at=_parse(success) if success else None,
                   last_duration_seconds=float(fields["last_duration_seconds"]), last_ok=bool(fields["last_ok"]),
                   last_error=fields.get("last_error"), last_windows=int(fields.get("last_windows") or 0),
                   last_documents=int(fields.get("last_documents") or 0))


def first_health(run: JobRun) -> JobHealth:
    return JobHealth(model=run.model, family=run.family, last_run_at=run.finished_at,
                     last_success_at=run.finished_at if run.ok else None,
                     last_duration_seconds=run.duration_seconds, last_ok=run.ok, last_error=run.error,
                     last_windows=run.windows, last_documents=run.documents)


def fold(previous: JobHealth | None, run: JobRun) -> JobHealth:
    return previous.after(run) if previous is not None else first_health(run)


def health_key(model: str, family: str) -> str:
    return f"job-health:{model}:{family}"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
