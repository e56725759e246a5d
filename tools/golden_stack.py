"""Golden files through real Logstash into real Elasticsearch (``make test-stack``; needs Docker).

Run inside the compose network by ``scripts/test-stack.sh``::

    python -m tools.golden_stack --es https://elasticsearch:9200 --logstash logstash:5044

Sends every ``logstash/tests/<case>.jsonl`` byte for byte to Logstash's TCP input,
waits until Elasticsearch holds as many mlmon documents as the expected files
list, then compares each stored document (target, ``_id``, ``_source``) with
``<case>.expected.json``, normalising only the fields that differ by nature
(:func:`tools.golden.normalise`: ingest time, file path). Events are stored in the
index of their month (``<target>-yyyy.MM.01``): each must be in the one its own
``@timestamp`` names.

Two more checks of the running stack::

    python -m tools.golden_stack --es ... --logstash ... --resend-after-rollover
        # rolls over every data stream holding mlmon events (there must be none: the events are in
        # time-routed indices that never roll over), sends the golden files again: none stored twice
    python -m tools.golden_stack --es ... --demo --timeout 300
        # the demo-model service's reference profile and live predictions reached Elasticsearch
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import elasticsearch

from mlmon.stores.elasticsearch.client import check_connection, connect

EVENTS = "logs-mlmon.*-*"
_MONTH_INDEX = re.compile(r"^(?P<target>.+)-(?P<month>\d{4}\.\d{2})\.01$")


def target_of(index: str) -> tuple[str, str]:
    """``logs-mlmon.prediction-default-2025.01.01`` -> (``logs-mlmon.prediction-default``, ``2025.01``)."""
    m = _MONTH_INDEX.match(index)
    return (m["target"], m["month"]) if m else (index, "")


def ids_search(ids: list[str]) -> dict[str, Any]:
    """The search body fetching documents by id (typechecked in tests/assets)."""
    return {"query": {"ids": {"values": ids}}, "size": len(ids) * 2, "seq_no_primary_term": False}


def count_body() -> dict[str, Any]:
    return {"query": {"match_all": {}}}


def duplicates_body() -> dict[str, Any]:
    """Event ids stored more than once across every backing index (typechecked in tests/assets)."""
    return {"size": 0, "aggs": {"ids": {"terms": {"field": "event.id", "min_doc_count": 2, "size": 100}}}}


def demo_body(model: str) -> dict[str, Any]:
    return {"query": {"term": {"mlmon.model.name": model}}}


def duplicated_events(es: elasticsearch.Elasticsearch) -> list[str]:
    es.indices.refresh(index=EVENTS)
    buckets = es.search(index=EVENTS, body=duplicates_body())["aggregations"]["ids"]["buckets"]
    return [f"{b['key']} x{b['doc_count']}" for b in buckets]


def roll_over_streams(es: elasticsearch.Elasticsearch) -> list[str]:
    """An immediate rollover of every data stream among the mlmon event names (what ILM or a template
    change does to a data stream); the names. There should be none."""
    names = [s["name"] for s in es.indices.get_data_stream(name=EVENTS)["data_streams"]]
    for name in names:
        es.indices.rollover(alias=name)
    return names


def watch_reason(es: elasticsearch.Elasticsearch) -> list[str]:
    """Execute the dead-letter watch on a made-up payload; problems if its alert document's reason is not rendered."""
    payload = {"hits": {"total": 120}, "aggregations": {"reasons": {"buckets": [
        {"key": "mapper_parsing_exception", "doc_count": 120}]}}}
    record = es.watcher.execute_watch(id="mlmon-dead-letter-spike", alternative_input=payload,
                                      action_modes={"_all": "force_simulate"}, ignore_condition=True,
                                      record_execution=False)["watch_record"]
    actions = {a["id"]: a for a in record["result"]["actions"]}
    document = actions["index_alert"]["transform"]["payload"]
    reason = str(document.get("alert", {}).get("reason"))
    if "{{" in reason or "120 dead letters" not in reason or "mapper_parsing_exception=120" not in reason:
        return [f"watch mlmon-dead-letter-spike: alert reason not rendered: {reason!r}"]
    print(f"watch alert reason: {reason}")
    return []


def wait_for_demo(es: elasticsearch.Elasticsearch, timeout_s: float) -> list[str]:
    """Problems, if the demo model's reference and predictions are not in Elasticsearch within the timeout."""
    from mlmon.demo.run import MODEL

    deadline = time.monotonic() + timeout_s
    while True:
        es.indices.refresh(index=[EVENTS, "mlmon-references*"], ignore_unavailable=True, allow_no_indices=True)
        predictions = int(es.count(index="logs-mlmon.prediction-*", body=demo_body(MODEL),
                                   ignore_unavailable=True, allow_no_indices=True)["count"])
        references = int(es.count(index="mlmon-references*", body=demo_body(MODEL), ignore_unavailable=True,
                                  allow_no_indices=True)["count"])
        if predictions > 0 and references > 0:
            print(f"demo model: {predictions} predictions and {references} reference profile(s) in Elasticsearch")
            return []
        if time.monotonic() > deadline:
            return [f"demo model: after {timeout_s:.0f}s Elasticsearch holds {predictions} predictions and "
                    f"{references} reference profiles of {MODEL}"]
        time.sleep(5)


def push(target: str, data: bytes) -> None:
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(data if data.endswith(b"\n") else data + b"\n")


def wait_for_count(es: elasticsearch.Elasticsearch, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    found = -1
    while time.monotonic() < deadline:
        es.indices.refresh(index=EVENTS, ignore_unavailable=True, allow_no_indices=True)
        found = int(es.count(index=EVENTS, body=count_body())["count"])
        if found >= expected:
            time.sleep(5)  # let stragglers (duplicates that should NOT be stored) arrive too
            es.indices.refresh(index=EVENTS)
            return int(es.count(index=EVENTS, body=count_body())["count"])
        time.sleep(2)
    return found


def compare(es: elasticsearch.Elasticsearch, expected: list[dict[str, Any]], case: str) -> list[str]:
    from tools.golden import normalise

    problems: list[str] = []
    if not expected:
        return problems
    hits = es.search(index=EVENTS, body=ids_search([d["id"] for d in expected]))["hits"]["hits"]
    stored = {(target_of(h["_index"])[0], h["_id"]): h["_source"] for h in hits}
    months = {(target_of(h["_index"])[0], h["_id"]): target_of(h["_index"])[1] for h in hits}
    for doc in expected:
        key = (doc["index"], doc["id"])
        if key not in stored:
            problems.append(f"{case}: {doc['index']}/{doc['id']} not stored")
            continue
        own_month = str(stored[key].get("@timestamp", ""))[:7].replace("-", ".")
        if months[key] != own_month:
            problems.append(f"{case}: {doc['index']}/{doc['id']} is in the index of month {months[key]!r}, "
                            f"its @timestamp says {own_month!r}")
        got = normalise({"index": key[0], "id": key[1], "source": stored[key]})
        if got != doc:
            problems.append(f"{case}: {key[0]}/{key[1]} differs:\n  expected {json.dumps(doc['source'], sort_keys=True)}"
                            f"\n  stored   {json.dumps(got['source'], sort_keys=True)}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    from tools.golden import GOLDEN_DIR, cases, load_expected

    parser = argparse.ArgumentParser(prog="python -m tools.golden_stack")
    parser.add_argument("--es", required=True)
    parser.add_argument("--logstash", required=True, help="host:port of Logstash's tcp input")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--resend-after-rollover", action="store_true",
                        help="roll over any data stream of mlmon events (none expected), send the golden files "
                             "again, require no duplicates")
    parser.add_argument("--demo", action="store_true", help="check the demo-model service's data arrived")
    parser.add_argument("--watch", action="store_true", help="execute a watch, check its alert document")
    args = parser.parse_args(argv)
    es = connect(args.es)
    check_connection(es)
    if args.demo or args.watch:
        demo_problems = wait_for_demo(es, args.timeout) if args.demo else watch_reason(es)
        for p in demo_problems:
            print(p, file=sys.stderr)
        return 1 if demo_problems else 0
    if args.resend_after_rollover:
        streams = roll_over_streams(es)
        if streams:
            print(f"mlmon events in data streams (rolled over now; a re-sent event would be stored twice): "
                  f"{', '.join(streams)}", file=sys.stderr)
            return 1
        print("no data stream holds mlmon events: their time-routed indices never roll over")
    names = cases()
    expected = {case: load_expected(case) for case in names}
    for case in names:
        push(args.logstash, (GOLDEN_DIR / f"{case}.jsonl").read_bytes())
    # A document listed by two cases (same event id) is stored once.
    total = len({(d["index"], d["id"]) for docs in expected.values() for d in docs})
    found = wait_for_count(es, total, args.timeout)
    problems = [p for case in names for p in compare(es, expected[case], case)]
    if found != total:
        problems.append(f"Elasticsearch holds {found} mlmon documents, the golden files expect {total}")
    problems += [f"stored more than once: {d}" for d in duplicated_events(es)]
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(names)} golden cases, {total} documents expected, {found} stored, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
