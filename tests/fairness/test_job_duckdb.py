"""Fairness end to end on the embedded store: the label join, fairlearn on the same joined data, statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pytest
from fairlearn import metrics as flm
from sklearn.metrics import accuracy_score, precision_score

from mlmon.config import model as cfg
from mlmon.core.documents import MetricDocument
from mlmon.jobs.fairness import FairnessJobError, compared_groups, fairness_job
from mlmon.core.perf_stats import GroupCounts
from mlmon.stores.duckdb.store import DuckDBStore
from mlmon.core.labels import LabelQuery
from mlmon.stores.protocols import labelled_store
from tests.explainability.scenario import HOUR, MODEL, T0, VERSION, Scenario


def _window(hour: int) -> tuple[datetime, datetime]:
    return T0 + hour * HOUR, T0 + (hour + 1) * HOUR


def _run(store: DuckDBStore, hour: int, **fairness: Any) -> dict[tuple[str, str, str], MetricDocument]:
    fairness.setdefault("attributes", ["region"])
    model = cfg.parse({"models": {MODEL: {"version": VERSION, "fairness": fairness}}}).models[0]
    job = fairness_job(store, model, "run-1")
    assert job is not None
    docs = job.run(*_window(hour))
    store.write_metrics(docs)
    return {(d.metric, d.segment_field, d.segment_value): d for d in docs}


def _rows(scene: Scenario, hour: int) -> pd.DataFrame:
    return scene.predictions[scene.predictions["hour"] == hour]


def _groups(store: DuckDBStore, hour: int, **kwargs: Any) -> dict[str, GroupCounts]:
    windows = labelled_store(store).labelled_window(LabelQuery(MODEL, *_window(hour), "classification",
                                                               version=VERSION, segment="region"))
    return compared_groups(windows, "1", **kwargs)


def test_group_counts_join_the_latest_feedback(store: DuckDBStore, scene: Scenario) -> None:
    groups = _groups(store, 1)
    rows = _rows(scene, 1)
    expected = {g: GroupCounts.from_arrays(r["predicted"].to_numpy() == 1, r["actual"].to_numpy() == 1,
                                           r["labelled"].to_numpy()) for g, r in rows.groupby("region")}
    assert groups == expected  # the corrected labels (logged last) won over the first, wrong ones


def test_values_equal_fairlearn_on_the_joined_data(store: DuckDBStore, scene: Scenario) -> None:
    docs = _run(store, 1)
    rows = _rows(scene, 1)
    lab = rows[rows["labelled"]]
    y, p, g = lab["actual"].to_numpy(), lab["predicted"].to_numpy(), lab["region"].to_numpy()
    # Selection rate needs no label: over every prediction of the window.
    everyone = {"y_true": rows["predicted"].to_numpy(), "y_pred": rows["predicted"].to_numpy(),
                "sensitive_features": rows["region"].to_numpy()}
    expected_gaps = {
        "demographic_parity_difference": flm.demographic_parity_difference(**everyone),
        "disparate_impact_ratio": flm.demographic_parity_ratio(**everyone),
        "equal_opportunity_difference": flm.equal_opportunity_difference(y, p, sensitive_features=g),
        "equalized_odds_difference": flm.equalized_odds_difference(y, p, sensitive_features=g),
    }
    for metric, value in expected_gaps.items():
        assert docs[(metric, "region", "")].value == pytest.approx(value, abs=1e-12), metric
    frame = flm.MetricFrame(metrics={"true_positive_rate": flm.true_positive_rate,
                                     "false_positive_rate": flm.false_positive_rate,
                                     "accuracy": accuracy_score, "precision": precision_score},
                            y_true=y, y_pred=p, sensitive_features=g)
    for group, row in frame.by_group.iterrows():
        for metric, value in row.items():
            assert docs[(str(metric), "region", str(group))].value == pytest.approx(value, abs=1e-12)
        sub = rows[rows["region"] == group]
        assert docs[("selection_rate", "region", str(group))].value == pytest.approx(sub["predicted"].mean())
        assert docs[("label_coverage", "region", str(group))].value == pytest.approx(sub["labelled"].mean())


def test_the_drifted_segment_opens_fairness_gaps(store: DuckDBStore) -> None:
    clean, drifted = _run(store, 0), _run(store, 1)
    gaps = ("demographic_parity_difference", "disparate_impact_ratio", "equal_opportunity_difference",
            "equalized_odds_difference")
    for metric in gaps:
        assert clean[(metric, "region", "")].status == "ok", metric
        assert drifted[(metric, "region", "")].status == "alert", metric
    dir_doc = drifted[("disparate_impact_ratio", "region", "")]
    assert dir_doc.details["four_fifths_rule"] is False and dir_doc.details["max_group"] == "rural"
    assert dir_doc.threshold is not None and dir_doc.threshold.direction == "below"
    per_group = [d for k, d in drifted.items() if k[2]]
    assert per_group and all(d.status == "no_threshold" and d.family == "fairness" for d in per_group)


def test_small_groups_are_insufficient_data(store: DuckDBStore) -> None:
    docs = _run(store, 1, min_group_size=1000)  # urban has ~1200 predictions, rural ~800
    assert docs[("selection_rate", "region", "rural")].status == "insufficient_data"
    assert docs[("selection_rate", "region", "urban")].value is not None
    gap = docs[("demographic_parity_difference", "region", "")]
    assert gap.status == "insufficient_data" and gap.value is None and "rural" in gap.details["groups_left_out"]


def test_configured_groups_and_left_out_predictions_are_reported(store: DuckDBStore, scene: Scenario) -> None:
    docs = _run(store, 1, attributes={"region": ["urban", "coastal"]})
    assert docs[("selection_rate", "region", "coastal")].status == "insufficient_data"
    gap = docs[("demographic_parity_difference", "region", "")]
    assert gap.status == "insufficient_data"
    rural = _rows(scene, 1)["region"].eq("rural").sum()
    assert gap.details["predictions_left_out"] == rural


def test_max_groups_keeps_the_largest(store: DuckDBStore, scene: Scenario) -> None:
    assert list(_groups(store, 1, max_groups=1)) == ["urban"]
    docs = _run(store, 1, max_groups=2, attributes={"region": None})
    assert docs[("demographic_parity_difference", "region", "")].details["predictions_left_out"] == 0


def test_an_attribute_never_logged_leaves_everything_out(store: DuckDBStore) -> None:
    docs = _run(store, 1, attributes=["age_band"])
    gap = docs[("demographic_parity_difference", "age_band", "")]
    assert gap.status == "insufficient_data" and gap.details["predictions_left_out"] == 2000


def test_sample_rate_weights_the_counts(store: DuckDBStore) -> None:
    store.con.execute('UPDATE predictions SET "mlmon.sample_rate" = 0.25')
    groups = _groups(store, 1)
    assert sum(g.n_predictions for g in groups.values()) == pytest.approx(8000)


def test_a_store_without_a_label_join_is_refused() -> None:
    model = cfg.parse({"models": {MODEL: {"fairness": {"attributes": ["region"]}}}}).models[0]
    with pytest.raises(FairnessJobError, match="no label join"):
        fairness_job(object(), model, "run-1")  # type: ignore[arg-type]


def test_the_documents_of_a_window_share_one_computed_at(store: DuckDBStore) -> None:
    docs = _run(store, 1, attributes={"region": None})
    assert len(docs) > 3 and len({d.computed_at for d in docs.values()}) == 1
