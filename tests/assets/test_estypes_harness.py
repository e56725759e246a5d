"""The type-check harness itself: good bodies pass, broken ones fail with the right label."""

from __future__ import annotations

import pytest

from tests.support.estypes import api_bodies, assert_bodies_typecheck, typecheck_bodies


def test_body_keys_come_from_the_client_spec() -> None:
    bodies = api_bodies()
    put_template = bodies["indices.put_index_template"]
    assert put_template.request_type == "IndicesPutIndexTemplateRequest"
    assert {"index_patterns", "composed_of", "template", "data_stream", "priority"} <= set(put_template.body_keys)
    # Query-string and path parameters are not body keys.
    assert not {"name", "master_timeout", "create"} & set(put_template.body_keys)
    assert bodies["indices.put_settings"].whole_body
    assert not bodies["search"].whole_body


def test_broken_bodies_fail_and_good_ones_pass_in_one_tsc_run() -> None:
    with pytest.raises(AssertionError) as raised:
        assert_bodies_typecheck([
            ("search", {"size": 0, "query": {"bool": {"filter": [{"term": {"event.dataset": "mlmon.prediction"}}]}},
                        "aggs": {"h": {"histogram": {"field": "x", "interval": 1}}}}, "good search"),
            ("search", {"query": {"bool": {"filter": [{"trem": {"a": "b"}}]}}}, "misspelled query"),
            ("indices.put_index_template", {"index_patterns": ["x-*"], "master_timeout": "30s"}, "query param in body"),
            ("cluster.put_component_template",
             {"template": {"mappings": {"properties": {"x": {"type": "keyword", "ignore_abov": 10}}}}},
             "misspelled mapping parameter"),
            ("ilm.put_lifecycle", {"policy": {"phases": {"hot": {"actions": {"rollover": {"max_age": 30}}}}}},
             "wrong value type"),
            ("indices.put_settings", {"index": {"number_of_replicas": 0}}, "good whole-body settings"),
            # A watch's search input takes a full search body (spec correction), still checked key by key.
            ("watcher.put_watch", _watch({"size": 0, "query": {"match_all": {}}, "aggs": {"n": {"value_count": {"field": "x"}}}}),
             "good watch with aggs"),
            ("watcher.put_watch", _watch({"size": 0, "aggz": {}}), "watch with misspelled search key"),
        ])
    errors = str(raised.value).splitlines()[1:]
    errors = [e for e in errors if not e.startswith("    ")]
    assert str(raised.value).startswith("5 Elasticsearch body type error(s)")
    # Each error names its label and quotes the offending line of the body.
    assert '    > "master_timeout": "30s"' in str(raised.value)
    failed = {e.split(" (")[0] for e in errors}
    assert failed == {"misspelled query", "query param in body", "misspelled mapping parameter", "wrong value type",
                      "watch with misspelled search key"}
    assert any("'\"trem\"' does not exist" in e for e in errors)
    assert any("master_timeout" in e for e in errors)


def _watch(search_body: dict) -> dict:
    return {"trigger": {"schedule": {"interval": "5m"}},
            "input": {"search": {"request": {"indices": ["mlmon-metrics*"], "body": search_body}}},
            "condition": {"compare": {"ctx.payload.hits.total": {"gt": 0}}},
            "actions": {"log": {"logging": {"text": "found {{ctx.payload.hits.total}}"}}}}


@pytest.mark.parametrize("items, message", [
    ([("indices.put_indx_template", {}, "x")], "unknown Elasticsearch API"),
    ([("search", [1, 2], "x")], "is a JSON object"),
    ([("search", {}, "same"), ("count", {}, "same")], "labels must be unique"),
])
def test_misuse_is_reported_before_tsc_runs(items: list, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        typecheck_bodies(items)
