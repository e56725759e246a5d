"""Golden files through real Logstash into real Elasticsearch (``make test-stack``; needs Docker).

Run inside the compose network by ``scripts/test-stack.sh``::

    python -m tools.golden_stack --es https://elasticsearch:9200 --logstash logstash:5044

Sends every ``logstash/tests/<case>.jsonl`` byte for byte to Logstash's TCP input,
waits until Elasticsearch holds as many mlmon documents as the expected files
list, then compares each stored document (data stream, ``_id``, ``_source``) with
``<case>.expected.json``, normalising only the fields that differ by nature
(:func:`tools.golden.normalise`: ingest time, file path).
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
_BACKING = re.compile(r"^\.ds-(?P<stream>.+)-\d{4}\.\d{2}\.\d{2}-\d{6}$")


def data_stream_of(backing_index: str) -> str:
    m = _BACKING.match(backing_index)
    return m["stream"] if m else backing_index


def ids_search(ids: list[str]) -> dict[str, Any]:
    """The search body fetching documents by id (typechecked in tests/assets)."""
    return {"query": {"ids": {"values": ids}}, "size": len(ids) * 2, "seq_no_primary_term": False}


def count_body() -> dict[str, Any]:
    return {"query": {"match_all": {}}}


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
    stored = {(data_stream_of(h["_index"]), h["_id"]): h["_source"] for h in hits}
    for doc in expected:
        key = (doc["index"], doc["id"])
        if key not in stored:
            problems.append(f"{case}: {doc['index']}/{doc['id']} not stored")
            continue
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
    args = parser.parse_args(argv)
    es = connect(args.es)
    check_connection(es)
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
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(names)} golden cases, {total} documents expected, {found} stored, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
