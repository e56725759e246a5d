"""The drift metric registry: every drift metric, in one place. Pure: no I/O.

One entry per metric says its name, which field kinds it applies to and on
which binning it is computed for each kind, its default rule, and the pure
function computing it. Everything else reads this table:

- :func:`mlmon.metrics.drift.numeric_drift` / ``categorical_drift`` compute the
  registered metrics of the field's kind (in registration order);
- :data:`DEFAULT_RULES` (re-exported by :mod:`mlmon.metrics.thresholds`) is the
  entries' rules;
- :data:`DRIFT_METRIC_NAMES` is every metric name the ``drift`` config may set
  thresholds for (drift and data-quality metrics);
- the drift job asks :func:`binning` how a metric was computed (its
  ``metric.method``).

Binnings (:data:`Binning`):

``"fine"``
    the reference profile's ~1000 quantile bins (:mod:`mlmon.core.reference`),
    where KS and Wasserstein stay within 1e-3 of scipy's exact values;
``"coarse"``
    the fine bins merged into ~20 groups of equal reference mass
    (:func:`~mlmon.metrics.distances.coarsen`): PSI, Jensen-Shannon and
    Hellinger on 1000 bins would report a 10k-row window's sampling noise as drift;
``"categories"``
    the reference's categories plus one ``__other__`` column
    (:func:`~mlmon.metrics.distances.category_table`).

Adding a drift metric is one function and one entry. The function takes a
:class:`Comparison` (the field's counts on the entry's binning, plus the raw
statistics) and returns a float, or a :class:`Measured` for a p-value or
details; a non-finite value is reported as ``None`` / ``"undefined"``::

    def total_variation(c: Comparison) -> float:
        \"\"\"Half the L1 distance between the two samples' proportions.\"\"\"
        return 0.5 * float(np.abs(proportions(c.ref_counts) - proportions(c.cur_counts)).sum())

    DriftMetric("total_variation", total_variation,
                binnings={"numeric": COARSE, "categorical": CATEGORIES}, rule=Rule(0.10, 0.20))

with the entry added to :data:`BUILTIN` below (or passed to :func:`register`
at run time; a test can register one and :func:`unregister` it afterwards).
From then on every numeric and categorical field gets a ``total_variation``
value (gated by the field's test like the others), the drift job writes its
documents with the method of its binning, its rule is in ``DEFAULT_RULES``
and the config accepts ``total_variation`` in ``drift.thresholds``.

The drift job measures a field over all windows of a batch at once
(:class:`Comparisons`: one row of counts per window). A metric whose entry has
no ``compute_batch`` is called window by window there; giving it one (a
function of a :class:`Comparisons` returning one result per window) is only
for speed, and it must give each window the result ``compute`` gives it alone.
The built-in metrics are written that way round: each is a batch function, and
its per-window function is that one on a batch of one (:func:`_one_window`).

Data-quality metrics (:class:`QualityMetric`: missing, out-of-range and unseen
shares) are listed here for their names and default rules only: the drift job
computes them itself, each with its own binomial test
(:func:`mlmon.metrics.thresholds.share_pvalue`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal, TypeVar, get_args

import numpy as np

from mlmon.core.stats import NumericStats
from mlmon.metrics.distances import (NumericSamples, chi_square_rows, hellinger_rows, jensen_shannon_rows, ks_pvalues,
                                     ks_statistics, proportions, psi_rows, wasserstein_batch)
from mlmon.metrics.results import Detail
from mlmon.metrics.rules import Rule

Kind = Literal["numeric", "categorical"]
Binning = Literal["fine", "coarse", "categories"]
KINDS: tuple[Kind, ...] = get_args(Kind)
FINE: Binning = "fine"
COARSE: Binning = "coarse"
CATEGORIES: Binning = "categories"
#: The binnings a metric can ask for, per field kind.
BINNINGS: Mapping[Kind, tuple[Binning, ...]] = {"numeric": (FINE, COARSE), "categorical": (CATEGORIES,)}


@dataclass(frozen=True)
class Comparison:
    """One field's reference and current samples, as a drift metric sees them.

    ``ref_counts`` / ``cur_counts`` are aligned counts on the binning the
    metric's entry asked for; both samples have values (``n_reference`` and
    ``n_current`` > 0: a field with an empty sample is ``insufficient_data``
    without calling any metric).
    """

    kind: Kind
    binning: Binning
    ref_counts: np.ndarray
    cur_counts: np.ndarray
    n_reference: int                          # present (non-missing) values compared
    n_current: int
    labels: tuple[str, ...] = ()              # "categories": the bins' names, the last one ``__other__``
    discrete: bool = False                    # numeric: every distinct reference value is an edge
    #: numeric: the full (reference, current) statistics on the fine edges (moments, tail sums).
    numeric: tuple[NumericStats, NumericStats] | None = None

    def numeric_stats(self) -> tuple[NumericStats, NumericStats]:
        if self.numeric is None:
            raise ValueError(f"a {self.kind} comparison has no numeric statistics")
        return self.numeric


@dataclass(frozen=True)
class Comparisons:
    """Many windows of one field against its reference, on one binning: what a batch metric function sees.

    ``cur_counts`` has one row per window (aligned with ``n_current`` and, for a
    numeric field, ``currents``); :meth:`window` is one of them as a :class:`Comparison`.
    """

    kind: Kind
    binning: Binning
    ref_counts: np.ndarray                    # (bins,)
    cur_counts: np.ndarray                    # (windows, bins)
    n_reference: int
    n_current: tuple[int, ...]
    labels: tuple[str, ...] = ()
    discrete: bool = False
    #: numeric: the reference's and each window's statistics on the fine edges.
    reference: NumericStats | None = None
    currents: NumericSamples | None = None

    def __post_init__(self) -> None:
        # Row-major rows: numpy sums a row as one window's sums (pairwise) only when it is contiguous.
        object.__setattr__(self, "cur_counts", np.ascontiguousarray(self.cur_counts))

    @classmethod
    def of(cls, c: Comparison) -> Comparisons:
        """One window as a batch (how the built-in per-window functions call their batch functions)."""
        ref, cur = c.numeric if c.numeric is not None else (None, None)
        return cls(c.kind, c.binning, c.ref_counts, c.cur_counts[None, :], c.n_reference, (c.n_current,), c.labels,
                   c.discrete, ref, NumericSamples.of((cur,)) if cur is not None else None)

    def __len__(self) -> int:
        return len(self.n_current)

    def numeric_samples(self) -> tuple[NumericStats, NumericSamples]:
        if self.reference is None or self.currents is None:
            raise ValueError(f"a {self.kind} comparison has no numeric statistics")
        return self.reference, self.currents

    def window(self, i: int) -> Comparison:
        numeric = None if self.reference is None or self.currents is None else (self.reference, self.currents.stats[i])
        return Comparison(self.kind, self.binning, self.ref_counts, self.cur_counts[i], self.n_reference,
                          self.n_current[i], self.labels, self.discrete, numeric)


@dataclass(frozen=True)
class Measured:
    """A metric function's value when it has more to say than a float."""

    value: float
    #: The p-value of the test whose statistic this is (used when the entry is its kind's ``test``).
    p_value: float | None = None
    #: Details shared by all of the field's values (and documents), e.g. ``wasserstein_raw``.
    details: Mapping[str, Detail] = field(default_factory=dict)
    #: Why, when the value is not finite (reported as None / "undefined").
    note: str = ""


MetricFunction = Callable[[Comparison], float | Measured]
#: A metric over many windows at once: one result per window, in order.
BatchMetricFunction = Callable[[Comparisons], Sequence[float | Measured]]


@dataclass(frozen=True)
class DriftMetric:
    """A metric comparing a field's current sample to its reference sample."""

    name: str
    compute: MetricFunction
    #: Field kinds it applies to -> the binning it is computed on for that kind.
    binnings: Mapping[Kind, Binning]
    #: Default thresholds; None: reported with status "no_threshold" unless configured.
    rule: Rule | None = None
    #: Its p-value (``Measured.p_value``) is the field's test: carried by every value of the field
    #: and the significance gate of their statuses. At most one per kind.
    test: bool = False
    #: Its value has a sign and drifts either way (mean_shift): calibrated thresholds are two-sided.
    signed: bool = False
    #: The same metric over many windows at once (optional: else ``compute`` runs window by window).
    compute_batch: BatchMetricFunction | None = None

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(self.binnings)

    def measure(self, batch: Comparisons) -> Sequence[float | Measured]:
        """The metric of each window of ``batch``, in one call when the entry has a batch function."""
        if self.compute_batch is not None:
            return self.compute_batch(batch)
        return [self.compute(batch.window(i)) for i in range(len(batch))]


@dataclass(frozen=True)
class QualityMetric:
    """A data-quality share the drift job computes itself (with its own binomial test)."""

    name: str
    kinds: tuple[Kind, ...]
    rule: Rule | None = None


Entry = DriftMetric | QualityMetric
_T = TypeVar("_T")


# --- the built-in metrics ---------------------------------------------------------------
# Each is a function of many windows; the per-window function is that one on a batch of one, so the
# drift job's batches and a single window cannot disagree.

WASSERSTEIN_NOTE = "constant reference (zero standard deviation): the distance in its sds is infinite"


def wasserstein_windows(b: Comparisons) -> list[Measured]:
    """W1 in reference standard deviations (one threshold fits every feature); raw W1 in the details."""
    ref, cur = b.numeric_samples()
    raw, bounds = wasserstein_batch(ref, cur, discrete=b.discrete)
    ref_std = ref.std or 0.0
    out = []
    for w, bound in zip(raw.tolist(), bounds.tolist()):
        value = w / ref_std if ref_std > 0 else (0.0 if w == 0 else math.inf)
        # The largest error binning can make here (0 where the CDFs cannot cross inside a bin).
        out.append(Measured(value, details={"wasserstein_raw": w, "wasserstein_error_bound": bound},
                            note=WASSERSTEIN_NOTE))
    return out


def ks_windows(b: Comparisons) -> list[Measured]:
    """Kolmogorov-Smirnov D on the fine bins, with scipy's asymptotic p-value (the numeric field's test)."""
    d = ks_statistics(b.ref_counts, b.cur_counts)
    p = ks_pvalues(d, b.n_reference, b.n_current)
    return [Measured(float(di), p_value=float(pi)) for di, pi in zip(d, p)]


def mean_shift_windows(b: Comparisons) -> list[float]:
    """Difference of the means in reference standard deviations (0 for a constant reference)."""
    ref, cur = b.numeric_samples()
    ref_std = ref.std or 0.0
    mean_r = ref.mean
    assert mean_r is not None
    out = []
    for stats in cur.stats:
        mean_c = stats.mean
        assert mean_c is not None
        out.append((mean_c - mean_r) / ref_std if ref_std > 0 else 0.0)
    return out


def chi_square_windows(b: Comparisons) -> list[Measured]:
    """Chi-square homogeneity test on the categories (the categorical field's test)."""
    stat, p, dof = chi_square_rows(b.ref_counts, b.cur_counts)
    return [Measured(s, p_value=pv, details={"dof": d, "categories": len(b.labels) - 1})
            for s, pv, d in zip(stat.tolist(), p.tolist(), dof.tolist())]


def l_infinity_windows(b: Comparisons) -> list[Measured]:
    """Largest change of a category's share; which category in the details."""
    diff = np.abs(proportions(b.ref_counts) - proportions(b.cur_counts))
    return [Measured(float(row.max()), details={"largest_change": b.labels[int(np.argmax(row))]}) for row in diff]


def psi_windows(b: Comparisons) -> list[float]:
    return [float(v) for v in psi_rows(b.ref_counts, b.cur_counts)]


def jensen_shannon_windows(b: Comparisons) -> list[float]:
    return [float(v) for v in jensen_shannon_rows(b.ref_counts, b.cur_counts)]


def hellinger_windows(b: Comparisons) -> list[float]:
    return [float(v) for v in hellinger_rows(b.ref_counts, b.cur_counts)]


def _one_window(batch: BatchMetricFunction) -> MetricFunction:
    """The per-window function of a batch function: the batch of one."""
    def compute(c: Comparison) -> float | Measured:
        return batch(Comparisons.of(c))[0]
    compute.__name__ = compute.__qualname__ = batch.__name__.removesuffix("_windows")
    compute.__doc__ = batch.__doc__
    return compute


wasserstein = _one_window(wasserstein_windows)
ks = _one_window(ks_windows)
mean_shift = _one_window(mean_shift_windows)
chi_square_statistic = _one_window(chi_square_windows)
l_infinity = _one_window(l_infinity_windows)


def _builtin(name: str, batch: BatchMetricFunction, binnings: Mapping[Kind, Binning], rule: Rule | None = None,
             *, test: bool = False, signed: bool = False) -> DriftMetric:
    return DriftMetric(name, _one_window(batch), binnings, rule, test=test, signed=signed, compute_batch=batch)


#: The built-in metrics, in the order their values (and documents) come out per field.
BUILTIN: tuple[Entry, ...] = (
    # Numeric drift: a 0.1 sd move of the distribution is a warning, 0.15 sd an alert.
    _builtin("wasserstein", wasserstein_windows, {"numeric": FINE}, Rule(0.10, 0.15)),
    _builtin("ks", ks_windows, {"numeric": FINE}, test=True),
    _builtin("chi_square", chi_square_windows, {"categorical": CATEGORIES}, test=True),
    _builtin("psi", psi_windows, {"numeric": COARSE, "categorical": CATEGORIES}, Rule(0.10, 0.25)),
    _builtin("jensen_shannon", jensen_shannon_windows, {"numeric": COARSE, "categorical": CATEGORIES}),
    _builtin("hellinger", hellinger_windows, {"numeric": COARSE}),
    # Categorical drift: a category's share moved by 5 / 7.5 percentage points.
    _builtin("l_infinity", l_infinity_windows, {"categorical": CATEGORIES}, Rule(0.05, 0.075)),
    _builtin("mean_shift", mean_shift_windows, {"numeric": FINE}, signed=True),
    # Data quality, absolute shares or increases over the reference's share.
    QualityMetric("missing_share", ("numeric", "categorical"), Rule(0.02, 0.05, relative=True)),
    QualityMetric("out_of_range_share", ("numeric",), Rule(0.01, 0.05)),
    QualityMetric("unseen_share", ("categorical",), Rule(0.01, 0.05)),
)


# --- the registry ------------------------------------------------------------------------

_REGISTRY: dict[str, Entry] = {}


def register(entry: Entry, *, replace: bool = False) -> Entry:
    """Add a metric (at the end of the order). ``replace``: overwrite an entry of the same name in place."""
    if entry.name in _REGISTRY and not replace:
        raise ValueError(f"drift metric {entry.name!r} is already registered")
    kinds = entry.kinds
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"drift metric {entry.name!r}: kinds must be among {KINDS}, got {kinds}")
    if isinstance(entry, DriftMetric):
        for kind, binning in entry.binnings.items():
            if binning not in BINNINGS[kind]:
                raise ValueError(f"drift metric {entry.name!r}: a {kind} field is binned {BINNINGS[kind]}, "
                                 f"not {binning!r}")
            other = field_test(kind)
            if entry.test and other is not None and other.name != entry.name:
                raise ValueError(f"drift metric {entry.name!r}: {kind} fields already have a test ({other.name})")
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    del _REGISTRY[name]


def get(name: str) -> Entry:
    return _REGISTRY[name]


def drift_metrics(kind: Kind) -> tuple[DriftMetric, ...]:
    """The metrics computed for a field of ``kind``, in order."""
    return tuple(e for e in _REGISTRY.values() if isinstance(e, DriftMetric) and kind in e.binnings)


def drift_metric_names(kind: Kind) -> tuple[str, ...]:
    return tuple(m.name for m in drift_metrics(kind))


def field_test(kind: Kind) -> DriftMetric | None:
    """The metric whose p-value is the test of a field of ``kind`` (KS, chi-square), if any."""
    return next((m for m in drift_metrics(kind) if m.test), None)


def binning(name: str, kind: Kind) -> Binning:
    """The binning ``name`` is computed on for a field of ``kind`` (KeyError if it is not computed for it)."""
    entry = _REGISTRY[name]
    if not isinstance(entry, DriftMetric) or kind not in entry.binnings:
        raise KeyError(f"{name!r} is not a drift metric of {kind} fields")
    return entry.binnings[kind]


def metric_names() -> tuple[str, ...]:
    """Every registered metric name (drift and data quality), in order."""
    return tuple(_REGISTRY)


def default_rules() -> dict[str, Rule]:
    """Metric name -> default rule, for the metrics that have one (a snapshot)."""
    return {name: e.rule for name, e in _REGISTRY.items() if e.rule is not None}


class _Names(AbstractSet[str]):
    """A read-only, always current view of the registered metric names."""

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __iter__(self) -> Iterator[str]:
        return iter(metric_names())

    def __len__(self) -> int:
        return len(_REGISTRY)

    @classmethod
    def _from_iterable(cls, it: Iterable[_T]) -> frozenset[_T]:  # results of &, |, - are plain frozensets
        return frozenset(it)

    def __repr__(self) -> str:
        return f"DRIFT_METRIC_NAMES{metric_names()}"


class _Rules(Mapping[str, Rule]):
    """A read-only, always current view of the registered default rules."""

    def __getitem__(self, name: str) -> Rule:
        entry = _REGISTRY.get(name)
        if entry is None or entry.rule is None:
            raise KeyError(name)
        return entry.rule

    def __iter__(self) -> Iterator[str]:
        return iter(default_rules())

    def __len__(self) -> int:
        return len(default_rules())

    def __repr__(self) -> str:
        return f"DEFAULT_RULES({default_rules()})"


#: Every metric name the ``drift`` config section may set thresholds for (a live, read-only set).
DRIFT_METRIC_NAMES: AbstractSet[str] = _Names()
#: Metric name -> default rule (a live, read-only mapping; ``thresholds.DEFAULT_RULES`` is this one).
DEFAULT_RULES: Mapping[str, Rule] = _Rules()

for _entry in BUILTIN:
    register(_entry)
