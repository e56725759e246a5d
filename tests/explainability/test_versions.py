"""Without a configured version, each version's explanations get documents of their own (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from mlmon.config import model as cfg
from mlmon.jobs.explainability import explainability_job, reference_from_frame, save_reference
from mlmon.stores.duckdb.store import DuckDBStore
from tests.explainability.scenario import FEATURES, HOUR, MODEL, T0, VERSION, Scenario


def test_each_version_is_described_by_its_own_explanations(store: DuckDBStore, scene: Scenario) -> None:
    # A third of hour 1's predictions (and their explanations) come from version 3, which has no attribution reference.
    hour_1 = [T0 + HOUR, T0 + 2 * HOUR]
    store.con.execute("""UPDATE predictions SET "mlmon.model.version" = '3'
                         WHERE "@timestamp" >= ? AND "@timestamp" < ? AND hash("event.id") % 3 = 0""", hour_1)
    store.con.execute("""UPDATE explanations SET "mlmon.model.version" = '3' WHERE "mlmon.prediction.id" IN
                         (SELECT "mlmon.prediction.id" FROM predictions WHERE "mlmon.model.version" = '3')""")
    rows = store.con.execute(f"""SELECT "mlmon.model.version", {', '.join(f'"mlmon.attributions.{f}"' for f in FEATURES)}
                                 FROM explanations WHERE "@timestamp" >= ? AND "@timestamp" < ?""",
                             hour_1).fetchall()
    save_reference(store.explain_queries(), reference_from_frame(scene.reference_attributions, MODEL, VERSION))
    model = cfg.parse({"models": {MODEL: {"explainability": {"min_explanations": 50}}}}).models[0]
    job = explainability_job(store, model, "run-1", default_version=VERSION)
    assert job is not None
    docs = job.run(*hour_1)
    assert {d.model_version for d in docs} == {"2", "3"}
    for version in ("2", "3"):
        mine = np.array([r[1:] for r in rows if r[0] == version], dtype=float)
        importance = np.abs(mine).mean(axis=0)
        for i, feature in enumerate(FEATURES):
            [doc] = [d for d in docs if (d.model_version, d.metric, d.feature, d.segment_field) ==
                     (version, "importance", feature, "")]
            assert doc.n_current == len(mine)
            assert doc.value == pytest.approx(importance[i], rel=1e-9)
    notes = {d.model_version: d.details.get("reference_note", "") for d in docs}
    assert notes["2"] == "" and "no attribution reference for version 3" in notes["3"]
