"""Offset sums per bin (each value less its bin's left edge): every producer agrees, far from zero too, and they persist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmon.core.reference import ReferenceProfile, build_from_frame, quantile_edges
from mlmon.core.stats import NumericAccumulator, NumericStats
from mlmon.stores.elasticsearch.store import offsets_from_sums

FIELD = "mlmon.features.numeric.x"


def _exact_offsets(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Per bin, sum (x - anchor) in exact rational arithmetic (math.fsum over exactly computed differences)."""
    import math
    e = np.asarray(edges)
    bins = np.searchsorted(e, values, side="right")
    anchors = np.concatenate((e[:1], e))
    return np.array([math.fsum((values[bins == b] - anchors[b]).tolist()) for b in range(len(edges) + 1)])


@pytest.mark.parametrize("offset", [0.0, 1e6, 1.7e9])
def test_every_producer_gives_the_same_offset_sums_far_from_zero_too(offset: float) -> None:
    rng = np.random.default_rng(3)
    ref = offset + rng.normal(0, 1, 20_000)
    cur = offset + rng.normal(0.3, 1.2, 5_000)
    edges = quantile_edges(ref)
    want = _exact_offsets(cur, edges)
    from_values = NumericStats.from_values(cur, edges)
    acc = NumericAccumulator(edges)
    for chunk in np.array_split(cur, 5):
        acc.add(chunk)
    profile = build_from_frame(pd.DataFrame({"x": cur}), "m", "1")
    widths = np.diff(edges).min()
    for got in (from_values.offset_sums, acc.result().offset_sums):
        # Inner bins hold a few values less than a bin wide: exact to far below a bin's width.
        assert np.allclose(got, want, rtol=1e-12, atol=1e-9 * widths)
    sorted_profile = profile.numeric[FIELD]
    assert np.allclose(sorted_profile.offset_sums, _exact_offsets(cur, sorted_profile.edges), rtol=1e-12,
                       atol=1e-9 * np.diff(sorted_profile.edges).min())
    # Raw sums (as Elasticsearch returns them) lose ~eps * offset per value, still far below a bin's width.
    raw = [float(np.sum(cur[np.searchsorted(edges, cur, side="right") == b])) for b in range(len(edges) + 1)]
    es = offsets_from_sums(from_values.counts, raw, edges)
    assert np.allclose(es, want, atol=1e-2 * float(np.median(np.diff(edges))))  # 1% of a bin, at 1.7e9 too


def test_offset_sums_add_up_and_stay_unknown_when_one_side_lacks_them() -> None:
    edges = (0.0, 1.0, 2.0)
    a = NumericStats.from_values(np.array([-1.0, 0.25, 1.5]), edges)
    b = NumericStats.from_values(np.array([0.75, 3.0]), edges)
    assert (a + b).offset_sums == NumericStats.from_values(np.array([-1.0, 0.25, 1.5, 0.75, 3.0]), edges).offset_sums
    assert a.offset_sums == (-1.0, 0.25, 0.5, 0.0)
    unknown = NumericStats(edges=edges, counts=(0, 1, 0, 0), missing=0, minimum=0.5, maximum=0.5, total=0.5,
                           total_sq=0.25)
    assert (a + unknown).offset_sums == ()
    empty = NumericStats(edges=edges, counts=(0, 0, 0, 0), missing=4, minimum=None, maximum=None, total=0.0,
                         total_sq=0.0)
    assert (a + empty).offset_sums == a.offset_sums
    with pytest.raises(ValueError, match="offset sums"):
        NumericStats(edges=edges, counts=(0, 0, 0, 0), missing=0, minimum=None, maximum=None, total=0.0,
                     total_sq=0.0, offset_sums=(0.0,))


def test_profiles_keep_offset_sums_and_older_profiles_load_with_their_ids() -> None:
    rng = np.random.default_rng(9)
    profile = build_from_frame(pd.DataFrame({"x": rng.normal(0, 1, 5_000)}), "m", "1")
    again = ReferenceProfile.from_document(profile.to_document())
    assert again.numeric[FIELD].offset_sums == profile.numeric[FIELD].offset_sums != ()
    # A document written before offset sums existed: it loads, keeps its id, and its sums stay unknown.
    doc = profile.to_document()
    del doc["profile"]["numeric"][FIELD]["offset_sums"]
    old = ReferenceProfile.from_document(doc)
    assert old.numeric[FIELD].offset_sums == ()
    assert "offset_sums" not in old.to_document()["profile"]["numeric"][FIELD]
    assert ReferenceProfile.from_document(old.to_document()).id == old.id != profile.id
