"""The label-join questions a store answers for performance monitoring (``LabelledStore``).

Ground truth arrives as feedback events, minutes to weeks after the
prediction, joined by ``mlmon.prediction.id``. For a window of *predictions*
(bucketed by prediction time, never by label time) a store joins the latest
feedback of each prediction and answers in ``mlmon.core.perf_stats`` objects, per
segment value when asked: what leaves the store depends on classes, bins and
segment values, not on rows.

Rules every implementation follows (tests/performance check both stores on
the same events):

- **Latest feedback wins**: among several feedback events of one prediction,
  the one with the latest ``@timestamp`` (ties: the greatest ``event.id``);
  the extra ones are counted in ``duplicate_feedback``.
- **Weights**: every prediction counts ``1 / mlmon.sample_rate`` (1 when the
  field is absent), in every statistic, coverage and delay histogram included.
- **Unknown predictions**: feedback whose prediction is not (yet) stored is
  never joined nor lost; ``orphan_feedback`` counts it per feedback window.
  Feedback that arrived before its prediction joins on the next run, since the
  join always starts from the predictions.
- **Predicted classes of every prediction**: ``LabelledWindow.predicted`` counts
  the window's predictions per predicted label, labelled or not (selection
  rates need no labels: the fairness job builds ``GroupCounts`` from it).
- **Binning**: ``mlmon.core.perf_stats``' convention (numpy.histogram's) over
  uniform edges for scores and errors, and over ``DELAY_EDGES_S`` for label delays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from mlmon.core.perf_stats import CbpeStats, ClassificationStats, GroupCounts, Histogram, RegressionSums, uniform_edges

Task = Literal["classification", "regression"]


def delay_edges(first_s: float = 1.0, last_s: float = 90 * 86_400.0, bins: int = 240) -> tuple[float, ...]:
    """Label-delay bin edges in seconds: [0, first) then geometric up to ``last`` (~5 % wide bins).

    Geometric bins keep the relative error of a delay quantile bounded (~5 %)
    from seconds to months, with a fixed number of numbers per window.
    """
    geometric = np.geomspace(first_s, last_s, bins)
    return (0.0, *(float(e) for e in geometric))


#: Edges of the label-delay histogram (seconds). Delays past the last edge count as overflow;
#: negative delays (feedback stamped before its prediction: clock skew) as underflow.
DELAY_EDGES_S: tuple[float, ...] = delay_edges()
#: Explanations carry no segment: a per-segment attribution window takes its explanations' predictions
#: from [start - EXPLANATION_LOOKBACK, end) (explanations are logged with or soon after their prediction),
#: so neither store scans a model's whole history for one window.
EXPLANATION_LOOKBACK = timedelta(days=1)
#: Quantiles of the label delay reported per window.
DELAY_LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9, 0.99)


def is_uniform(edges: tuple[float, ...]) -> bool:
    """True when ``edges`` are equal-width (as ``uniform_edges`` makes them), to rounding."""
    widths = np.diff(np.asarray(edges, dtype=float))
    return len(edges) >= 2 and bool(np.all(widths > 0)) and bool(np.allclose(widths, widths[0], rtol=1e-9, atol=0))


@dataclass(frozen=True)
class LabelQuery:
    """What a performance window asks the store.

    ``classes`` lists the score columns of a multiclass model
    (``mlmon.prediction.scores.<class>``); empty means binary (one
    ``mlmon.prediction.score`` = probability of ``positive_label``) or no scores.
    ``segment`` names a segment (``mlmon.segment.<name>``): the answer is then
    per value of it (``segment_values`` restricts which); None = all traffic only.
    """

    model: str
    start: datetime
    end: datetime
    task: Task
    version: str | None = None
    positive_label: str = "1"
    classes: tuple[str, ...] = ()
    score_edges: tuple[float, ...] = field(default_factory=uniform_edges)
    #: Regression: edges of the error histogram (prediction - actual); None = no histogram.
    error_edges: tuple[float, ...] | None = None
    #: Regression: sums of actuals are taken around this value (see RegressionSums).
    shift: float = 0.0
    cbpe: bool = False
    segment: str | None = None
    segment_values: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware (UTC)")
        if not self.start < self.end:
            raise ValueError(f"empty window: start {self.start} is not before end {self.end}")
        if not is_uniform(self.score_edges):
            raise ValueError("score_edges must be equal-width (use mlmon.core.perf_stats.uniform_edges)")
        if self.error_edges is not None and not is_uniform(self.error_edges):
            raise ValueError("error_edges must be equal-width")
        if len(self.classes) == 2:
            raise ValueError("two classes are binary: log one mlmon.prediction.score and set positive_label")
        if not math.isfinite(self.shift):
            raise ValueError(f"shift must be finite, got {self.shift}")

    @property
    def multiclass(self) -> bool:
        return len(self.classes) >= 3

    @property
    def score_classes(self) -> list[str]:
        """The class of each logged score: the positive class's (binary), or every class's (multiclass)."""
        return list(self.classes) if self.multiclass else [self.positive_label]


@dataclass(frozen=True)
class LabelledWindow:
    """The joined statistics of one window (and segment value)."""

    #: Predictions of the window: rows and their weight (sum of 1 / sample_rate).
    rows: int
    n_predictions: float
    #: Labelled predictions (their latest feedback joined): rows and weight.
    labelled_rows: int
    n_labelled: float
    #: Feedback events beyond the first per prediction (the latest one won).
    duplicate_feedback: int
    #: Delay from prediction to its (latest) feedback, seconds, weighted; over DELAY_EDGES_S.
    delay: Histogram
    classification: ClassificationStats | None = None
    regression: RegressionSums | None = None
    #: CBPE inputs over every prediction of the window (labelled or not), by class
    #: (binary: only the positive class).
    cbpe: Mapping[str, CbpeStats] = field(default_factory=dict)
    #: Classification: weighted predictions per predicted label over EVERY prediction of the window
    #: (labelled or not; predictions without a label are not counted).
    predicted: Mapping[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> float | None:
        return self.n_labelled / self.n_predictions if self.n_predictions > 0 else None

    def delay_quantiles(self, levels: tuple[float, ...] = DELAY_LEVELS) -> dict[str, float | None]:
        return {f"p{round(q * 100):d}": v for q, v in zip(levels, histogram_quantiles(self.delay, levels))}


def group_counts(window: LabelledWindow, positive_label: str) -> GroupCounts:
    """One fairness group from the label join: selection over every prediction, confusion cells over the labelled.

    Binary view of a (possibly multiclass) window: ``positive_label`` against the rest.
    """
    if window.classification is None:
        raise ValueError("fairness counts need a classification window (task='classification')")
    confusion = window.classification.confusion
    tp = fp = fn = tn = 0.0
    for i, actual in enumerate(confusion.classes):
        for j, predicted in enumerate(confusion.classes):
            n = confusion.counts[i][j]
            if predicted == positive_label:
                tp, fp = (tp + n, fp) if actual == positive_label else (tp, fp + n)
            else:
                fn, tn = (fn + n, tn) if actual == positive_label else (fn, tn + n)
    return GroupCounts(window.n_predictions, window.predicted.get(positive_label, 0.0), tp, fp, fn, tn)


def counts_only(window: LabelledWindow) -> LabelledWindow:
    """``window`` without its score bins and CBPE bins: what :func:`group_counts` reads (predictions, predicted
    labels, the confusion), a few numbers instead of thousands, for a label round to keep a join's answer."""
    stats = window.classification
    if stats is None:
        raise ValueError("counts_only needs a classification window (task='classification')")
    return replace(window, classification=ClassificationStats(stats.confusion, stats.n_predictions), cbpe={})


def histogram_quantile(hist: Histogram, q: float) -> float | None:
    """The ``q`` quantile of a weighted histogram, interpolated linearly inside its bin.

    Underflow is placed at the first edge and overflow at the last (they are
    reported as counts next to the quantiles); None when the histogram is empty.
    """
    return histogram_quantiles(hist, (q,))[0]


def histogram_quantiles(hist: Histogram, levels: tuple[float, ...]) -> list[float | None]:
    """:func:`histogram_quantile` of each level, from one cumulative sum of the histogram."""
    for q in levels:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile level must be in [0, 1], got {q}")
    counts = np.concatenate(([hist.underflow], hist.array, [hist.overflow]))
    total = float(counts.sum())
    if total <= 0:
        return [None for _ in levels]
    cum = np.cumsum(counts)
    return [_quantile(hist.edges, counts, cum, q * total) for q in levels]


def _quantile(edges: tuple[float, ...], counts: np.ndarray, cum: np.ndarray, target: float) -> float:
    i = int(np.searchsorted(cum, target, side="left"))
    i = min(i, len(counts) - 1)
    if i == 0:
        return float(edges[0])
    if i == len(counts) - 1:
        return float(edges[-1])
    lo, hi = edges[i - 1], edges[i]
    before = cum[i - 1]
    inside = counts[i]
    frac = (target - before) / inside if inside > 0 else 0.0
    return float(lo + min(max(frac, 0.0), 1.0) * (hi - lo))


@dataclass(frozen=True)
class OrphanFeedback:
    """Feedback received in a window whose prediction is not in the store (yet)."""

    feedback: int          # feedback events of the window (rows)
    orphans: int           # of which with no stored prediction
    example_ids: tuple[str, ...] = ()  # a few orphan prediction ids, for investigation


#: Answer of ``labelled_window``: segment value -> statistics ("" = all traffic when no segment was asked).
SegmentedWindows = Mapping[str, LabelledWindow]
