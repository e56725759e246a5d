"""When a drift value is ``ok``, ``warning`` or ``alert``. Pure: no I/O.

The default rule is built not to cry wolf on production volumes:

* **Effect sizes, not p-values.** At a million rows every difference is
  "significant"; what matters is how large it is. Defaults are effect-size
  thresholds: Wasserstein distance in reference standard deviations, the
  largest change of a category's share (L-infinity), PSI's customary 0.1/0.25.
* **Significance as a gate.** On small windows an effect size is noisy, so a
  warning or alert also needs the field's test (KS, chi-square, binomial for
  shares) to be significant after a correction across all the tests of the
  window (Holm by default: the chance that a clean window raises anything
  stays below ``alpha`` however many features there are).
* **A minimum window size**, below which the status is ``insufficient_data``.
* **Optional calibration on the reference**: thresholds from resampling
  windows of the current size out of the reference profile itself (what
  "no drift" looks like for this feature at this window size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from scipy import stats as sps

from mlmon.core.documents import Status, Threshold
from mlmon.core.stats import CategoryStats, NumericStats, bin_anchors, offset_sums_of
from mlmon.metrics import registry
from mlmon.metrics.rules import NO_RULE, Rule

__all__ = ["CORRECTIONS", "DEFAULT_ALPHA", "DEFAULT_MIN_ROWS", "DEFAULT_RULES", "NO_RULE", "Correction", "Policy",
           "Rule", "adjust", "calibrate", "decide", "default_policy", "resample_categories", "resample_numeric",
           "share_pvalue"]

Correction = Literal["holm", "bh", "none"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh", "none")
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_ROWS = 500


#: Default rules (metric name -> Rule), from the drift metric registry: each metric's entry
#: there carries its default rule. Metrics without one are reported with status "no_threshold".
DEFAULT_RULES: Mapping[str, Rule] = registry.DEFAULT_RULES


@dataclass(frozen=True)
class Policy:
    """Everything that decides statuses for one model (from the ``drift`` config section)."""

    rules: Mapping[str, Rule]
    per_feature: Mapping[str, Mapping[str, Rule]]
    min_rows: int = DEFAULT_MIN_ROWS
    alpha: float = DEFAULT_ALPHA
    correction: Correction = "holm"
    calibrate: bool = False
    calibration_samples: int = 200

    def rule(self, metric: str, feature: str) -> Rule:
        return self.per_feature.get(feature, {}).get(metric) or self.rules.get(metric) or NO_RULE


def default_policy() -> Policy:
    return Policy(rules=dict(DEFAULT_RULES), per_feature={})


def adjust(p_values: Sequence[float], method: Correction = "holm") -> list[float]:
    """P-values adjusted for multiple testing across the fields of a window.

    ``holm`` controls the family-wise error (any false alarm in the window);
    hand-written because scipy only ships FDR control (``bh`` uses scipy's).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0 or method == "none":
        return p.tolist()
    if method == "bh":
        return sps.false_discovery_control(p, method="bh").tolist()
    order = np.argsort(p)
    m = p.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out.tolist()


def decide(value: float | None, threshold: Threshold, *, gated: bool, p_adjusted: float | None,
           alpha: float, enough_data: bool) -> tuple[Status, str]:
    """Status of one value, and why (for the document's details)."""
    if not enough_data:
        return "insufficient_data", "window smaller than min_rows"
    if value is None or not np.isfinite(value):
        return "no_threshold", "no value"
    status = threshold.status(value)
    if status in ("warning", "alert") and gated and p_adjusted is not None and p_adjusted >= alpha:
        return "ok", f"over threshold but not significant (adjusted p {p_adjusted:.3g} >= {alpha})"
    return status, ""


def share_pvalue(count: int, n: int, reference_share: float) -> float:
    """One-sided binomial test: is the share of ``count`` in ``n`` above the reference's share?"""
    if n == 0:
        return 1.0
    p0 = min(max(reference_share, 0.0), 1.0)
    if p0 >= 1.0:
        return 1.0
    return float(sps.binomtest(int(count), int(n), p0, alternative="greater").pvalue)


# --- calibration on the reference -------------------------------------------------

def resample_numeric(reference: NumericStats, n: int, rng: np.random.Generator, *,
                     discrete: bool = False) -> NumericStats:
    """A window of ``n`` rows drawn from the reference profile (bins, missing), with its offset sums.

    A ``discrete`` profile's point bins hold one value, on their left edge, and its gaps
    none: the window's values are those exact values. Otherwise each value is drawn
    uniformly inside its bin, as the reference's values are taken to lie, so a resampled
    window is measured (offset sums included) as a real window of the same traffic would
    be. Values of the open outer bins sit on the outer edges.
    """
    probs = np.append(reference.counts_array(), reference.missing) / reference.n
    drawn = rng.multinomial(n, probs)
    counts = drawn[:-1]
    edges = np.asarray(reference.edges, dtype=np.float64)
    anchors = bin_anchors(reference.edges)
    widths = np.concatenate(([0.0], np.diff(edges), [0.0]))
    bins = np.repeat(np.arange(counts.size), counts)
    offsets = np.zeros(bins.size) if discrete else rng.random(bins.size) * widths.take(bins)
    values = anchors.take(bins) + offsets
    return NumericStats(edges=reference.edges, counts=tuple(int(c) for c in counts), missing=int(drawn[-1]),
                        minimum=reference.minimum, maximum=reference.maximum, total=float(values.sum()),
                        total_sq=float(np.dot(values, values)), below_sum=float(counts[0] * edges[0]),
                        above_sum=float(counts[-1] * edges[-1]),
                        offset_sums=tuple(offset_sums_of(values, bins, anchors).tolist()))


def resample_categories(reference: CategoryStats, n: int, rng: np.random.Generator) -> CategoryStats:
    names = list(reference.counts)
    probs = np.array([reference.counts[k] for k in names] + [reference.other, reference.missing], dtype=np.float64)
    drawn = rng.multinomial(n, probs / probs.sum())
    return CategoryStats(counts=dict(zip(names, (int(c) for c in drawn[:-2]))), other=int(drawn[-2]),
                         missing=int(drawn[-1]))


def calibrate(null_values: Sequence[float], tests: int, alpha: float = DEFAULT_ALPHA,
              warning_alpha: float = 0.05, *, signed: bool = False) -> Rule:
    """Thresholds from a metric's values on drift-free windows resampled from the reference.

    Warning / alert sit at the normal-approximation quantiles 1 - warning_alpha/tests and
    1 - alpha/tests of those values (Bonferroni over the window's tests): a few hundred
    samples cannot pin an extreme empirical quantile, their mean and sd can. A ``signed``
    metric (mean_shift) drifts either way: both tails count, so the levels are for its
    size, at the two-sided quantiles (1 - alpha/(2 tests)) beyond the null mean's size,
    and the rule is ``two_sided``.
    """
    values = np.asarray(null_values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return NO_RULE
    mu, sd = float(values.mean()), float(values.std(ddof=1))
    z = NormalDist().inv_cdf
    m = max(tests, 1)
    if signed:
        m *= 2  # each tail gets half of the error rate
        mu = abs(mu)
    return Rule(warning=mu + z(1 - warning_alpha / m) * sd, alert=mu + z(1 - alpha / m) * sd, source="calibrated",
                two_sided=signed)
