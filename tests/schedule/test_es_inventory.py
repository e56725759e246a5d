"""The Elasticsearch store's inventory questions (versions in a window, the data's time range, the models)."""

from __future__ import annotations

from datetime import datetime, timezone

from mlmon.stores.elasticsearch import store as es_store
from tests.schedule.conftest import HOUR, T0
from tests.support.estypes import assert_bodies_typecheck


def test_inventory_bodies_typecheck() -> None:
    assert_bodies_typecheck([
        ("search", es_store.terms_body("mlmon.model.version", es_store.inventory_filter("churn", None, T0, T0 + HOUR)),
         "versions in a window"),
        ("search", es_store.terms_body("mlmon.model.name", es_store.inventory_filter(None)), "models"),
        ("search", es_store.data_range_body("churn", "1"), "data range"),
    ])


def test_answers_are_parsed_as_documented() -> None:
    # Shapes from Elastic's docs: terms buckets with sum_other_doc_count; min/max of no documents are null.
    terms = {"aggregations": {"values": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                                         "buckets": [{"key": "2", "doc_count": 5}, {"key": "1", "doc_count": 9}]}}}
    assert es_store.parse_terms(terms, "versions") == ["1", "2"]
    ms = T0.timestamp() * 1000
    span = {"aggregations": {"first": {"value": ms, "value_as_string": "2025-01-01T00:00:00.000Z"},
                             "last": {"value": ms + 3_600_000.0}}}
    assert es_store.parse_data_range(span) == (T0, datetime(2025, 1, 1, 1, tzinfo=timezone.utc))
    assert es_store.parse_data_range({"aggregations": {"first": {"value": None}, "last": {"value": None}}}) is None
