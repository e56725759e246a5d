"""One fairness window of one model: the label join per group -> fairness rates and gaps -> documents.

For every configured sensitive attribute (a segment, ``mlmon.segment.<name>``)
the store's label join (:mod:`mlmon.core.labels`, the performance
job's: latest feedback wins, weights ``1 / sample_rate``, DuckDB and
Elasticsearch alike) answers per group; :func:`group_counts` reads each
group's ``GroupCounts`` from it - predictions and predicted positives of the
window, labelled or not, plus the confusion cells of those whose feedback has
arrived. :func:`mlmon.metrics.fairness.fairness_metrics` turns them into
per-group rates and between-group gaps (fairlearn's definitions).

Documents: family ``fairness``, ``segment_field`` = the attribute,
``segment_value`` = the group for per-group rates (selection rate, TPR, FPR,
accuracy, precision, label coverage) or ``""`` for the gaps (demographic
parity difference, disparate impact ratio with the four-fifths rule, equal
opportunity difference, equalized odds difference). Gaps get statuses from
the configured thresholds; a rate or gap without enough observations
(``min_group_size``) is ``insufficient_data``. Rates that need labels move as
feedback arrives: re-running a window overwrites its documents (same ids).

Cost per batch of windows: none in a label round whose performance job joined
the same windows (the runner hands fairness its joins' group counts,
``shared_joins``); else all traffic (for the predictions left out of every
comparison) and every attribute from one join on the embedded store, one join
each on Elasticsearch (the label join's bounded pages, see
:mod:`mlmon.stores.elasticsearch.labels`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mlmon import __version__
from mlmon.config.model import ModelConfig
from mlmon.core.documents import MetricDocument, Status
from mlmon.config.explainability import DEFAULT_FAIRNESS_LOOKBACK, FairnessConfig
from mlmon.config.model import fairness_config
from mlmon.jobs.base import (DocumentContext, InputsCache, JoinCache, LabelSchedule, VersionLookup, Window,
                             WindowOutput, digest, for_version, per_version_batches, plan_windows, reuse_or_compute,
                             segmented_windows, window_chunks)
from mlmon.metrics.fairness import fairness_metrics
from mlmon.metrics.performance import MetricValue
from mlmon.core.perf_stats import GroupCounts, uniform_edges
from mlmon.stores.protocols import Store
from mlmon.core.labels import LabelledWindow, LabelQuery, SegmentedWindows, group_counts
from mlmon.core.queries import WindowBatch
from mlmon.stores.protocols import LabelledStore, labelled_store

log = logging.getLogger("mlmon.fairness")
#: Fairness reads counts and confusion cells only, never score bins: one bin keeps the join from binning
#: every score into the performance job's 1000 bins only to throw them away.
GROUP_COUNTS_SCORE_EDGES = uniform_edges(1)
GAPS = ("demographic_parity_difference", "disparate_impact_ratio", "equal_opportunity_difference",
        "equalized_odds_difference")


class FairnessJobError(ValueError):
    """The store cannot answer the fairness questions, or the config does not fit; the message says what to do."""


def compared_groups(windows: Mapping[str, LabelledWindow], positive_label: str, groups: Sequence[str] = (),
                    max_groups: int = 50) -> dict[str, GroupCounts]:
    """The groups compared: the configured ones (present or not), else the ``max_groups`` largest.

    Ties in size go to the smaller group name, so re-runs compare the same groups.
    """
    counts = {g: group_counts(w, positive_label) for g, w in windows.items()}
    if groups:
        return {g: counts.get(g, GroupCounts.empty()) for g in groups}
    largest = sorted(counts, key=lambda g: (-counts[g].n_predictions, g))[:max_groups]
    return {g: counts[g] for g in sorted(largest)}


def left_out(overall: GroupCounts, compared: Mapping[str, GroupCounts]) -> GroupCounts:
    """Every prediction of the window in no compared group (attribute missing, or a group not compared)."""
    cells = [overall.n_predictions, overall.n_predicted_positive, overall.tp, overall.fp, overall.fn, overall.tn]
    for c in compared.values():
        for i, v in enumerate((c.n_predictions, c.n_predicted_positive, c.tp, c.fp, c.fn, c.tn)):
            cells[i] -= v
    # Differences of float sums: clamp the rounding residue of "nothing left out" to exactly 0.
    slack = 1e-9 * max(overall.n_predictions, 1.0)
    return GroupCounts(*(0.0 if v < slack else v for v in cells))


@dataclass
class FairnessJob:
    labels: LabelledStore
    model: ModelConfig
    config: FairnessConfig
    run_id: str
    default_version: str = ""
    code_version: str = __version__
    #: The label schedule: the performance job's, or (no performance section) its own over ``config.lookback``.
    label_schedule: LabelSchedule | None = None
    #: Which versions a window's traffic holds (no version configured: documents per version).
    versions: VersionLookup | None = None
    #: Skip windows whose inputs did not change since their stored documents (rounds; a backfill recomputes).
    reuse_unchanged: bool = False
    #: Window inputs shared with the other jobs of the same label round (set by the runner).
    inputs_cache: InputsCache | None = None
    #: The performance job's label joins of this round, read instead of joining again (set by the runner).
    shared_joins: JoinCache | None = None

    @property
    def name(self) -> str:
        return "fairness"

    @property
    def schedule(self) -> LabelSchedule:
        if self.label_schedule is None:
            raise FairnessJobError(f"model {self.model.name}: this fairness job was built without a schedule "
                                   "(use fairness_job(store, ...))")
        return self.label_schedule

    @property
    def version(self) -> str:
        return self.model.version or self.default_version

    @property
    def fingerprint_key(self) -> str:
        return f"fairness:{self.model.name}:{self.model.version or '*'}"

    def run_windows(self, windows: Sequence[Window], at: datetime) -> Iterator[WindowOutput]:
        """Each window's documents; with ``reuse_unchanged``, a window whose inputs are those of its stored
        documents is not computed again (fairness documents do not depend on ``at``)."""
        key = self.fingerprint_key
        salt = digest("fairness", self.model, self.config, self.default_version, self.code_version)
        for chunk in window_chunks(windows):
            plans = plan_windows(self.labels, key, self.model, WindowBatch.of(chunk), [salt] * len(chunk),
                                 self.reuse_unchanged, self.inputs_cache)
            for (start, end), docs, plan in zip(chunk, reuse_or_compute(plans, chunk, self.run_batch), plans):
                yield WindowOutput(start, end, docs or [], unchanged=plan.unchanged,
                                   fingerprint=(key, plan.fingerprint) if plan.fingerprint else None)

    def run(self, start: datetime, end: datetime) -> list[MetricDocument]:
        """Documents of the window for every configured attribute (not yet written); per version of its
        traffic when none is configured."""
        return self.run_batch([(start, end)])[0]

    def run_batch(self, windows: Sequence[Window]) -> list[list[MetricDocument]]:
        """Documents of each window (sorted, aligned): one label join per attribute (and one of all traffic)."""
        def version_batch(version: str | None, batch: WindowBatch) -> list[list[MetricDocument]]:
            view = self if version is None else replace(self, model=for_version(self.model, version))
            return view._batch(batch)

        split = per_version_batches(self.versions, self.model, windows, version_batch)
        return split if split is not None else self._batch(WindowBatch.of(windows))

    def _batch(self, batch: WindowBatch) -> list[list[MetricDocument]]:
        cfg = self.config
        joined = self._joined(batch)
        overall = [group_counts(w[""], cfg.positive_label) for w in joined[None]]
        out: list[list[MetricDocument]] = [[] for _ in batch.windows]
        # One context per window: its documents, of every attribute, share one computed_at.
        contexts = [DocumentContext(self.model.name, self.version, start, end, self.run_id, self.code_version)
                    for start, end in batch.windows]
        for attribute, groups in cfg.attributes.items():
            for docs, ctx, whole, windows in zip(out, contexts, overall, joined[attribute]):
                compared = compared_groups(windows, cfg.positive_label, groups, cfg.max_groups)
                docs += self.documents(attribute, compared, left_out(whole, compared), ctx)
        return out

    def _joined(self, batch: WindowBatch) -> dict[str | None, list[SegmentedWindows]]:
        """The label join of all traffic (key None) and of each attribute over ``batch``: the performance job's
        of this round when it joined the same windows (``shared_joins``), else one join of its own."""
        asked = {attribute: tuple(groups) or None for attribute, groups in self.config.attributes.items()}
        found: dict[str | None, list[SegmentedWindows]] = {}
        if self.shared_joins is not None:
            for segment, values in [(None, None), *asked.items()]:
                shared = self.shared_joins.pop((self.model.name, self.model.version, batch, segment, values), None)
                if shared is not None:
                    found[segment] = shared
        missing = {attribute: values for attribute, values in asked.items() if attribute not in found}
        if None not in found or missing:
            query = LabelQuery(self.model.name, batch.start, batch.end, "classification", version=self.model.version,
                               positive_label=self.config.positive_label, score_edges=GROUP_COUNTS_SCORE_EDGES)
            found = {**segmented_windows(self.labels, query, batch, missing), **found}
        return found

    # --- pure part: counts -> documents ------------------------------------------------------------------

    def documents(self, attribute: str, groups: dict[str, GroupCounts], left_out: GroupCounts,
                  ctx: DocumentContext) -> list[MetricDocument]:
        cfg = self.config
        values = fairness_metrics(groups, cfg.min_group_size)
        if groups and all(c.n_predicted_positive == 0 and c.tp + c.fn == 0 for c in groups.values()):
            log.warning("model %s, attribute %s: no prediction or label equals positive_label %r in the window; "
                        "check fairness.positive_label", self.model.name, attribute, cfg.positive_label)
        context = {"positive_label": cfg.positive_label, "min_group_size": cfg.min_group_size,
                   "groups_compared": sorted(groups), "predictions_left_out": left_out.n_predictions}
        return [self._document(attribute, v, context, ctx) for v in values]

    def _document(self, attribute: str, v: MetricValue, context: dict[str, Any],
                  ctx: DocumentContext) -> MetricDocument:
        details: dict[str, Any] = dict(v.details)
        threshold = self.config.thresholds[v.metric].threshold() if v.metric in GAPS else None
        status: Status
        if v.value is None:
            status = "insufficient_data" if v.missing == "insufficient_data" else "no_threshold"
            details["status_reason"] = v.note
        elif threshold is None:
            status = "no_threshold"
        else:
            status = threshold.status(v.value)
        if v.metric in GAPS:
            details.update(context)
            details["groups_left_out"] = ", ".join(map(str, details.get("groups_left_out") or []))
        return ctx.document("fairness", v.metric, v.value, status, n_current=int(round(v.n)),
                            method=f"label-join:latest-feedback;positive={self.config.positive_label}",
                            threshold=threshold, details=details, segment=(attribute, v.group))


def fairness_job(store: Store, model: ModelConfig, run_id: str, *, default_version: str = "",
                 file: str = "<config>") -> FairnessJob | None:
    """The model's fairness job, or None when its config has no ``fairness`` section."""
    cfg = fairness_config(model, file)
    if cfg is None:
        return None
    try:
        labels = labelled_store(store)
    except TypeError as err:
        raise FairnessJobError(f"model {model.name}: fairness needs predictions joined with their feedback: {err}") \
            from err
    perf = model.sections.get("performance")
    if perf is None:
        schedule = LabelSchedule(store, model, cfg.lookback or DEFAULT_FAIRNESS_LOOKBACK)
    else:
        if cfg.lookback is not None and cfg.lookback != perf.lookback:
            log.warning("model %s: fairness.lookback (%s) is not used: with a performance section fairness follows "
                        "its windows (performance.lookback %s)", model.name, cfg.lookback, perf.lookback)
        schedule = LabelSchedule(store, model, perf.lookback)
    return FairnessJob(labels, model, cfg, run_id, default_version=default_version, label_schedule=schedule,
                       versions=store)
