"""Global feature importance from per-prediction attributions, and how it drifts from the reference.

Input: ``AttributionSums`` per feature (count, sum |a|, sum a, sum a²), i.e.
one sum / value_count aggregation per attribution field. Output:

- per feature: ``importance`` = mean |attribution| (SHAP's global importance,
  SageMaker Clarify's ``mean_abs``), ``importance_share`` = its share of the
  total, ``importance_rank`` (1 = most important; ties by feature name), and
  ``mean_attribution`` (signed: which way the feature pushes on average).
- against a reference, per feature ``attribution_drift`` = current share -
  reference share (signed; thresholds apply to its absolute value). Shares,
  not raw importances: a model whose output scale moves (base value, units
  of the target) scales every attribution at once, which is not a change in
  which features drive it. ``details`` carry the raw importance ratio and a
  Welch z-score of mean |a| (its standard error from sum a² = sum |a|²),
  because explanation events are usually sampled and a small share change on
  200 explanations can be noise.
- overall, ``ranking_ndcg``: SageMaker Model Monitor's feature attribution
  drift score. Features ranked by reference importance ``F = [f1..fm]``,
  ``a(f)`` = current importance; ``DCG = sum_i a(f_i) / log2(i + 1)``,
  ``iDCG`` = the same with features ranked by current importance; nDCG =
  DCG / iDCG (1 = same order; SageMaker flags < 0.9). Equals
  ``sklearn.metrics.ndcg_score([current], [reference])``, ties in the
  reference ranking averaged as sklearn does. And
  ``importance_shift`` = total variation distance between the two share
  vectors (0.5 * sum |share change|), a bounded single number for the whole
  explanation drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mlmon.metrics.results import Detail, MetricSet, MetricValue
from mlmon.core.perf_stats import AttributionSums


def _importance(sums: Mapping[str, AttributionSums]) -> dict[str, float]:
    return {f: s.sum_abs / s.n for f, s in sums.items() if s.n > 0}


def _shares(importance: Mapping[str, float]) -> dict[str, float] | None:
    total = sum(importance.values())
    return {f: v / total for f, v in importance.items()} if total > 0 else None


def _ranks(importance: Mapping[str, float]) -> dict[str, int]:
    ordered = sorted(importance, key=lambda f: (-importance[f], f))
    return {f: i + 1 for i, f in enumerate(ordered)}


def importance_metrics(current: Mapping[str, AttributionSums]) -> list[MetricValue]:
    """Per-feature importance, share, rank and signed mean attribution of one window."""
    importance = _importance(current)
    shares = _shares(importance)
    ranks = _ranks(importance)
    out: list[MetricValue] = []
    for feature, s in sorted(current.items()):
        if s.n <= 0:
            out += [MetricValue(m, None, 0.0, feature=feature, missing="insufficient_data",
                                note=f"no attributions for {feature!r} in the window")
                    for m in ("importance", "importance_share", "importance_rank", "mean_attribution")]
            continue
        out.append(MetricValue("importance", importance[feature], s.n, feature=feature))
        out.append(MetricValue("importance_share", shares[feature], s.n, feature=feature) if shares else
                   MetricValue("importance_share", None, s.n, feature=feature, missing="undefined",
                               note="every attribution is zero"))
        out.append(MetricValue("importance_rank", float(ranks[feature]), s.n, feature=feature,
                               details={"features": len(ranks)}))
        out.append(MetricValue("mean_attribution", s.sum / s.n, s.n, feature=feature))
    return out


def _welch_z(cur: AttributionSums, ref: AttributionSums) -> float | None:
    """z of the difference in mean |a| (sample variances from sum a²); None below 2 observations or no spread."""
    if cur.n < 2 or ref.n < 2:
        return None

    def mean_var(s: AttributionSums) -> tuple[float, float]:
        mean = s.sum_abs / s.n
        return mean, max(s.sum_sq - s.n * mean * mean, 0.0) / (s.n - 1)

    (mc, vc), (mr, vr) = mean_var(cur), mean_var(ref)
    se = math.sqrt(vc / cur.n + vr / ref.n)
    return (mc - mr) / se if se > 0 else None


def ndcg(reference: Mapping[str, float], current: Mapping[str, float], k: int | None = None) -> float | None:
    """SageMaker's attribution-drift nDCG of the current importances in the reference order (see module doc).

    Features in only one of the two count as importance 0 in the other.
    None when every current importance is 0 (nothing to rank).
    """
    features = sorted(set(reference) | set(current))
    ref = np.array([reference.get(f, 0.0) for f in features])
    gain = np.array([current.get(f, 0.0) for f in features])
    if len(features) == 0 or gain.max() <= 0:
        return None
    top = len(features) if k is None else min(k, len(features))
    discount = 1.0 / np.log2(np.arange(2, len(features) + 2))
    discount[top:] = 0.0
    # Ties in the reference ranking: every tied feature gets the group's mean gain (sklearn's default).
    order = np.argsort(-ref, kind="stable")
    dcg, position = 0.0, 0
    for value in np.unique(-ref[order]):
        tied = order[-ref[order] == value]
        dcg += gain[tied].mean() * discount[position:position + len(tied)].sum()
        position += len(tied)
    ideal = float((np.sort(gain)[::-1] * discount).sum())
    return float(dcg / ideal)


def attribution_drift(current: Mapping[str, AttributionSums], reference: Mapping[str, AttributionSums],
                      k: int | None = None) -> list[MetricValue]:
    """Per-feature share change, overall ``ranking_ndcg`` and ``importance_shift`` vs the reference."""
    cur_imp, ref_imp = _importance(current), _importance(reference)
    cur_share, ref_share = _shares(cur_imp), _shares(ref_imp)
    n_cur = max((s.n for s in current.values()), default=0.0)
    if cur_share is None or ref_share is None:
        side = "current window" if cur_share is None else "reference"
        return [MetricValue(m, None, n_cur, missing="insufficient_data",
                            note=f"the {side} has no non-zero attributions")
                for m in ("ranking_ndcg", "importance_shift")]
    cur_rank, ref_rank = _ranks(cur_imp), _ranks(ref_imp)
    out: list[MetricValue] = []
    empty = AttributionSums.empty()
    for feature in sorted(set(cur_share) | set(ref_share)):
        c, r = current.get(feature, empty), reference.get(feature, empty)
        details: dict[str, Detail] = {
            "share": cur_share.get(feature, 0.0), "reference_share": ref_share.get(feature, 0.0),
            "rank": cur_rank.get(feature), "reference_rank": ref_rank.get(feature),
            "importance_ratio": cur_imp[feature] / ref_imp[feature]
            if feature in cur_imp and feature in ref_imp and ref_imp[feature] > 0 else None,
            "z": _welch_z(c, r)}
        out.append(MetricValue("attribution_drift", cur_share.get(feature, 0.0) - ref_share.get(feature, 0.0),
                               c.n, feature=feature, details=details))
    score = ndcg(ref_imp, cur_imp, k)
    out.append(MetricValue("ranking_ndcg", score, n_cur, details={"k": k, "features": len(out)})
               if score is not None else
               MetricValue("ranking_ndcg", None, n_cur, missing="undefined", note="no current importance to rank"))
    shift = 0.5 * sum(abs(cur_share.get(f, 0.0) - ref_share.get(f, 0.0)) for f in set(cur_share) | set(ref_share))
    out.append(MetricValue("importance_shift", shift, n_cur))
    return out


def attribution_metrics(current: Mapping[str, AttributionSums],
                        reference: Mapping[str, AttributionSums] | None = None, k: int | None = None) -> MetricSet:
    """Importance per feature of the window, plus drift against ``reference`` when given."""
    out = importance_metrics(current)
    if reference is not None:
        out += attribution_drift(current, reference, k)
    return MetricSet(tuple(out))
