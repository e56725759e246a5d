"""One fairness window of one model: per-group counts -> fairness rates and gaps -> documents.

For every configured sensitive attribute (a segment, ``mlmon.segment.<name>``)
the store answers with ``GroupCounts`` per group - predictions and predicted
positives of the window, plus the confusion cells of those whose feedback has
arrived (joined by prediction id, latest feedback wins).
:func:`mlmon.metrics.fairness.fairness_metrics` turns them into per-group
rates and between-group gaps (fairlearn's definitions).

Documents: family ``fairness``, ``segment_field`` = the attribute,
``segment_value`` = the group for per-group rates (selection rate, TPR, FPR,
accuracy, precision, label coverage) or ``""`` for the gaps (demographic
parity difference, disparate impact ratio with the four-fifths rule, equal
opportunity difference, equalized odds difference). Gaps get statuses from
the configured thresholds; a rate or gap without enough observations
(``min_group_size``) is ``insufficient_data``. Rates that need labels move as
feedback arrives: re-running a window overwrites its documents (same ids).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mlmon import __version__
from mlmon.config import ModelConfig
from mlmon.documents import MetricDocument, Status
from mlmon.explain_config import FairnessConfig, fairness_config
from mlmon.explainability_job import _clean, explain_backend
from mlmon.metrics.fairness import fairness_metrics
from mlmon.metrics.performance import MetricValue
from mlmon.perf_stats import GroupCounts
from mlmon.stores.base import Store

log = logging.getLogger("mlmon.fairness")
GAPS = ("demographic_parity_difference", "disparate_impact_ratio", "equal_opportunity_difference",
        "equalized_odds_difference")


class FairnessJobError(ValueError):
    """The store cannot answer the fairness questions, or the config does not fit; the message says what to do."""


class GroupCountSource(Protocol):
    """What the fairness job asks of a store: per-group counts of one attribute, with the label join."""

    def group_counts(self, model: str, start: datetime, end: datetime, *, attribute: str, positive_label: str,
                     version: str | None = None, groups: Sequence[str] = (),
                     max_groups: int = 50) -> tuple[dict[str, GroupCounts], GroupCounts]: ...


@dataclass
class FairnessJob:
    source: GroupCountSource
    model: ModelConfig
    config: FairnessConfig
    run_id: str
    default_version: str = ""
    code_version: str = __version__

    @property
    def version(self) -> str:
        return self.model.version or self.default_version

    def run(self, start: datetime, end: datetime) -> list[MetricDocument]:
        """Documents of the window for every configured attribute (not yet written)."""
        docs: list[MetricDocument] = []
        for attribute, groups in self.config.attributes.items():
            counts, left_out = self.source.group_counts(
                self.model.name, start, end, attribute=attribute, positive_label=self.config.positive_label,
                version=self.model.version, groups=groups, max_groups=self.config.max_groups)
            docs += self.documents(attribute, counts, left_out, start, end)
        return docs

    # --- pure part: counts -> documents ------------------------------------------------------------------

    def documents(self, attribute: str, groups: dict[str, GroupCounts], left_out: GroupCounts, start: datetime,
                  end: datetime) -> list[MetricDocument]:
        cfg = self.config
        values = fairness_metrics(groups, cfg.min_group_size)
        if groups and all(c.n_predicted_positive == 0 and c.tp + c.fn == 0 for c in groups.values()):
            log.warning("model %s, attribute %s: no prediction or label equals positive_label %r in the window; "
                        "check fairness.positive_label", self.model.name, attribute, cfg.positive_label)
        context = {"positive_label": cfg.positive_label, "min_group_size": cfg.min_group_size,
                   "groups_compared": sorted(groups), "predictions_left_out": left_out.n_predictions}
        return [self._document(attribute, v, context, start, end) for v in values]

    def _document(self, attribute: str, v: MetricValue, context: dict[str, Any], start: datetime,
                  end: datetime) -> MetricDocument:
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
        return MetricDocument(
            model=self.model.name, model_version=self.version, family="fairness", metric=v.metric,
            window_start=start, window_end=end, value=v.value, status=status, n_current=int(round(v.n)),
            run_id=self.run_id, code_version=self.code_version,
            method=f"label-join:latest-feedback;positive={self.config.positive_label}",
            segment_field=attribute, segment_value=v.group, threshold=threshold, details=_clean(details))


def fairness_job(store: Store, model: ModelConfig, run_id: str, *, default_version: str = "",
                 file: str = "<config>") -> FairnessJob | None:
    """The model's fairness job, or None when its config has no ``fairness`` section."""
    cfg = fairness_config(model, file)
    if cfg is None:
        return None
    source = explain_backend(store)
    if not hasattr(source, "group_counts"):
        raise FairnessJobError(
            f"model {model.name}: fairness needs predictions joined with their feedback; this store "
            f"({type(store).__name__}) has no label join yet (see mlmon.stores.es_labels, issue 5)")
    return FairnessJob(source, model, cfg, run_id, default_version=default_version)
