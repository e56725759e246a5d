"""What a round or a backfill evaluated per model, and - when that is nothing or little - why.

The scheduler fills one :class:`ModelSummary` per model from the documents it
writes (each job's per-window count document says how much traffic the window
had) and from failures; :func:`explain_nothing` asks the store where the data
actually is when a model's windows were empty. The commands print
:meth:`ModelSummary.lines`, so ``mlmon run`` and ``mlmon backfill`` never end
silently on empty or thin windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mlmon.config.model import ModelConfig
from mlmon.config.performance import PerformanceConfig
from mlmon.core.documents import MetricDocument, iso
from mlmon.core.windows import floor_time
from mlmon.jobs.base import Window
from mlmon.stores.protocols import Store

#: Thin windows listed by name in a summary line; the rest are counted.
LISTED = 5


@dataclass(frozen=True)
class JobFailure:
    """One job of one model failed; the others ran on."""

    model: str
    job: str
    error: str
    #: The first window it failed on (None: the job could not be set up).
    window: Window | None = None

    def line(self) -> str:
        where = f" (window {_span(self.window)}; later windows of this run skipped it)" if self.window else ""
        return f"model {self.model}, job {self.job}: {self.error}{where}"


@dataclass(frozen=True)
class ThinWindow:
    """A window evaluated with fewer observations than its job's minimum: its statuses are insufficient_data."""

    job: str
    window: Window
    version: str
    count: int
    minimum: int
    what: str  # "rows" / "labelled predictions" / "explanations"
    setting: str  # the config key that sets the minimum


@dataclass
class ModelSummary:
    model: str
    #: Windows computed, and those with any traffic (of any job).
    windows: set[Window] = field(default_factory=set)
    with_data: set[Window] = field(default_factory=set)
    documents: int = 0
    thin: list[ThinWindow] = field(default_factory=list)
    failures: list[JobFailure] = field(default_factory=list)
    #: Why less was evaluated than asked: skipped jobs, where the data is, an idle checkpoint.
    notes: list[str] = field(default_factory=list)

    def observe(self, model: ModelConfig, docs: Sequence[MetricDocument]) -> None:
        """Count a batch of written documents and find its empty and thin windows."""
        self.documents += len(docs)
        perf = model.sections.get("performance")
        for d in docs:
            window = (d.window_start, d.window_end)
            self.windows.add(window)
            if d.segment_field:
                continue
            if d.family == "volume" and d.metric == "rows":
                self._count(d, "drift", window, d.n_current, model.drift.policy.min_rows, "rows", "drift.min_rows")
            elif d.family == "label_coverage" and d.metric == "label_coverage" and isinstance(perf, PerformanceConfig):
                labelled = int(d.details.get("labelled_rows") or 0)
                if d.n_current > 0:
                    self.with_data.add(window)
                    self._count(d, "performance", window, labelled, perf.min_labelled, "labelled predictions",
                                "performance.min_labelled")
            elif d.family == "explainability" and d.metric == "explanations":
                minimum = int(d.details.get("min_explanations") or 0)
                self._count(d, "explainability", window, int(d.value or 0), minimum, "explanations",
                            "explainability.min_explanations")

    def _count(self, d: MetricDocument, job: str, window: Window, count: int, minimum: int, what: str,
               setting: str) -> None:
        if count > 0:
            self.with_data.add(window)
            if count < minimum:
                self.thin.append(ThinWindow(job, window, d.model_version, count, minimum, what, setting))

    @property
    def evaluated(self) -> int:
        return len(self.with_data)

    def lines(self) -> list[str]:
        """The summary as printed: what was evaluated, then why it was nothing or little."""
        head = (f"model {self.model}: {len(self.windows)} windows computed, {self.evaluated} with data, "
                f"{self.documents} documents")
        if self.windows:
            head += f" ({_span((min(w[0] for w in self.windows), max(w[1] for w in self.windows)))})"
        out = [head]
        out += [f"  failed: {f.line()}" for f in self.failures]
        by_job: dict[tuple[str, str, str], list[ThinWindow]] = {}
        for t in self.thin:
            by_job.setdefault((t.job, t.what, t.setting), []).append(t)
        for (job, what, setting), thin in by_job.items():
            listed = ", ".join(f"{iso(t.window[0])} v{t.version}: {t.count}" for t in sorted(
                thin, key=lambda t: t.window)[:LISTED])
            more = f", and {len(thin) - LISTED} more" if len(thin) > LISTED else ""
            out.append(f"  {len(thin)} {job} windows below {setting}={thin[0].minimum} (insufficient_data; "
                       f"{what}: {listed}{more})")
        out += [f"  {n}" for n in self.notes]
        return out


def explain_nothing(store: Store, model: ModelConfig, asked: Window | None) -> list[str]:
    """Why a model's windows had no data: unknown model or version, or where its events are."""
    known = store.models()
    if model.name not in known:
        return [f"no events of model {model.name!r} in the store; models with events: "
                f"{', '.join(known) or 'none'}"]
    if model.version is not None and model.version not in store.versions(model.name):
        return [f"no events of model {model.name} version {model.version!r}; versions with events: "
                f"{', '.join(store.versions(model.name)) or 'none'}"]
    span = store.data_range(model.name, model.version)
    if span is None:  # unreachable after the checks above, but a store may be written meanwhile
        return [f"no events of model {model.name} in the store"]
    where = f"in {_span(asked)}" if asked else "in the windows computed"
    return [f"no data {where}; the model's events span {iso(span[0])} .. {iso(span[1])}: "
            f"{_backfill(model, span)} evaluates them"]


def explain_idle(store: Store, model: ModelConfig, checkpoint: datetime | None, next_end: datetime) -> list[str]:
    """Why no event window was due: the checkpoint is at or past the last complete window, maybe past the data."""
    span = store.data_range(model.name, model.version)
    if checkpoint is not None and span is not None and checkpoint > span[1]:
        return [f"checkpoint {iso(checkpoint)} is after the last event ({iso(span[1])}): nothing new to evaluate; "
                f"{_backfill(model, span)} recomputes older windows"]
    return [f"no event window due: windows up to {iso(checkpoint) if checkpoint else '?'} are done; the next "
            f"is due once it ends and the lateness passes ({iso(next_end)})"]


def _backfill(model: ModelConfig, span: tuple[datetime, datetime]) -> str:
    """The backfill command covering the windows of the events (``--to`` is exclusive)."""
    first, last = floor_time(span[0], model.window), floor_time(span[1], model.window) + model.window
    return f"`mlmon backfill --from {iso(first)} --to {iso(last)}`"


def _span(window: Window) -> str:
    return f"{iso(window[0])} .. {iso(window[1])}"
