"""Fairness gaps from per-group counts, checked against fairlearn and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn import metrics as flm
from sklearn.metrics import accuracy_score, precision_score

from mlmon.metrics.fairness import fairness_metrics
from mlmon.core.perf_stats import GroupCounts


@pytest.fixture
def population(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group, actual, predicted) with a model that selects group "c" more often."""
    n = 6000
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    actual = rng.random(n) < np.where(group == "a", 0.4, 0.3)
    predicted = np.where(actual, rng.random(n) < np.where(group == "b", 0.6, 0.8),
                         rng.random(n) < np.where(group == "c", 0.3, 0.1))
    return group, actual, predicted


def counts_of(group: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
              labelled: np.ndarray | None = None) -> dict[str, GroupCounts]:
    lab = np.ones(len(group), dtype=bool) if labelled is None else labelled
    return {g: GroupCounts.from_arrays(predicted[group == g], actual[group == g], lab[group == g])
            for g in np.unique(group)}


def test_gaps_match_fairlearn(population: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    group, actual, predicted = population
    ms = fairness_metrics(counts_of(group, actual, predicted))
    kw = {"sensitive_features": group}
    assert ms.value("demographic_parity_difference") == pytest.approx(
        flm.demographic_parity_difference(actual, predicted, **kw), abs=1e-12)
    assert ms.value("disparate_impact_ratio") == pytest.approx(
        flm.demographic_parity_ratio(actual, predicted, **kw), abs=1e-12)
    assert ms.value("equal_opportunity_difference") == pytest.approx(
        flm.equal_opportunity_difference(actual, predicted, **kw), abs=1e-12)
    assert ms.value("equalized_odds_difference") == pytest.approx(
        flm.equalized_odds_difference(actual, predicted, **kw), abs=1e-12)


def test_per_group_rates_match_fairlearn_metric_frame(population: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    group, actual, predicted = population
    ms = fairness_metrics(counts_of(group, actual, predicted))
    frame = flm.MetricFrame(metrics={"selection_rate": flm.selection_rate,
                                     "true_positive_rate": flm.true_positive_rate,
                                     "false_positive_rate": flm.false_positive_rate,
                                     "accuracy": accuracy_score, "precision": precision_score},
                            y_true=actual, y_pred=predicted, sensitive_features=group)
    for g, row in frame.by_group.iterrows():
        for metric, expected in row.items():
            assert ms.value(str(metric), group=str(g)) == pytest.approx(expected, abs=1e-12), (g, metric)


def test_hand_computed_four_fifths_rule() -> None:
    groups = {
        # 100 predictions, 50 selected; labelled: tp 40, fp 10, fn 10, tn 40
        "men": GroupCounts(100, 50, 40, 10, 10, 40),
        # 100 predictions, 30 selected; labelled: tp 24, fp 6, fn 26, tn 44
        "women": GroupCounts(100, 30, 24, 6, 26, 44),
    }
    ms = fairness_metrics(groups, min_group_size=10)
    assert ms.value("demographic_parity_difference") == pytest.approx(0.5 - 0.3)
    di = ms.get("disparate_impact_ratio")
    assert di.value == pytest.approx(0.3 / 0.5) and di.details["four_fifths_rule"] is False
    assert di.details["min_group"] == "women" and di.details["max_group"] == "men"
    assert ms.value("equal_opportunity_difference") == pytest.approx(40 / 50 - 24 / 50)
    fpr_gap = abs(10 / 50 - 6 / 50)
    assert ms.value("equalized_odds_difference") == pytest.approx(max(40 / 50 - 24 / 50, fpr_gap))
    assert ms.value("precision", group="women") == pytest.approx(24 / 30)
    assert ms.value("accuracy", group="men") == pytest.approx(80 / 100)


def test_small_group_is_left_out_of_gaps_and_flagged() -> None:
    groups = {"a": GroupCounts(500, 250, 100, 150, 20, 230), "b": GroupCounts(400, 100, 60, 40, 30, 270),
              "tiny": GroupCounts(5, 5, 2, 3, 0, 0)}
    ms = fairness_metrics(groups, min_group_size=30)
    tiny = ms.get("selection_rate", group="tiny")
    assert tiny.value is None and tiny.missing == "insufficient_data" and "min_group_size" in tiny.note
    gap = ms.get("demographic_parity_difference")
    assert gap.value == pytest.approx(0.5 - 0.25)  # "tiny" (rate 1.0) would have made it 0.75
    assert gap.details["groups_left_out"] == ["tiny"]


def test_rates_are_gated_on_their_own_denominator() -> None:
    # 1000 predictions but only 12 labelled actual positives: selection rate counts, TPR does not.
    groups = {"a": GroupCounts(1000, 300, 10, 100, 2, 400), "b": GroupCounts(1000, 200, 80, 50, 20, 300)}
    ms = fairness_metrics(groups, min_group_size=30)
    assert ms.value("selection_rate", group="a") == pytest.approx(0.3)
    assert ms.get("true_positive_rate", group="a").missing == "insufficient_data"
    eo = ms.get("equal_opportunity_difference")
    assert eo.value is None and eo.missing == "insufficient_data"
    assert ms.get("equalized_odds_difference").missing == "insufficient_data"
    assert ms.value("demographic_parity_difference") == pytest.approx(0.1)


def test_selection_rate_uses_unlabelled_predictions_and_coverage_is_per_group(
        population: tuple[np.ndarray, np.ndarray, np.ndarray], rng: np.random.Generator) -> None:
    group, actual, predicted = population
    labelled = rng.random(len(group)) < np.where(group == "a", 0.6, 0.2)
    ms = fairness_metrics(counts_of(group, actual, predicted, labelled))
    for g in ("a", "b", "c"):
        in_group = group == g
        assert ms.value("selection_rate", group=g) == pytest.approx(predicted[in_group].mean())
        assert ms.value("label_coverage", group=g) == pytest.approx(labelled[in_group].mean())
        both = in_group & labelled
        assert ms.value("true_positive_rate", group=g) == pytest.approx(
            flm.true_positive_rate(actual[both], predicted[both]))


def test_no_group_selected_makes_the_ratio_undefined_and_one_group_insufficient() -> None:
    nobody = fairness_metrics({"a": GroupCounts(100, 0, 0, 0, 10, 90), "b": GroupCounts(100, 0, 0, 0, 5, 95)})
    assert nobody.get("disparate_impact_ratio").missing == "undefined"
    assert nobody.value("demographic_parity_difference") == 0.0
    alone = fairness_metrics({"a": GroupCounts(100, 10, 5, 5, 5, 85)})
    assert alone.get("demographic_parity_difference").missing == "insufficient_data"
    assert fairness_metrics({}).get("equalized_odds_difference").missing == "insufficient_data"
    with pytest.raises(ValueError, match="min_group_size"):
        fairness_metrics({}, min_group_size=-1)
