"""Golden files of the ingest pipeline: ``logstash/tests/<case>.jsonl`` -> ``<case>.expected.json``.

The expected file lists the documents that end up stored, in input order, each
with its target data stream (``index``), its ``_id`` and its ``_source``; a
document whose ``_id`` is already stored is not listed again (``op_type =>
create`` keeps the first). Both engines are held to them: ``mlmon ingest``
in ``make test`` and real Logstash + Elasticsearch in ``make test-stack``.

Only what differs by nature is normalised: the ingest clock (``event.ingested``,
and a dead letter's ``@timestamp``, which is its rejection time) and the file
path Logstash's file input records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlmon.ingest.timestamps import Instant
from mlmon.ingest.validate import Validator, nest

#: The golden files live in the repository only (they do not ship in the wheel).
GOLDEN_DIR: Path = Path(__file__).resolve().parents[1] / "logstash" / "tests"
INGEST_TIME = "<ingest-time>"
DEAD_LETTER_PREFIX = "logs-mlmon.deadletter-"


def cases(directory: Path = GOLDEN_DIR) -> list[str]:
    return sorted(p.name.removesuffix(".jsonl") for p in directory.glob("*.jsonl"))


def split_lines(data: bytes) -> list[bytes]:
    """Lines as Logstash's line codec cuts them: on "\\n", a final newline ends the last line."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def route(lines: Iterable[bytes], validator: Validator, now: Instant) -> list[dict[str, Any]]:
    """The stored documents for ``lines``: first copy of each (index, _id), blank lines skipped."""
    docs: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for raw in lines:
        if not raw.strip():
            continue
        result = validator.process(raw, now)
        key = (result.index, result.doc_id)
        if key in seen:
            continue
        seen.add(key)
        fields = result.fields
        docs.append({"index": result.index, "id": result.doc_id,
                     "source": nest(fields)})
    return docs


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with the fields that differ by nature replaced or removed."""
    doc = json.loads(json.dumps(doc))
    source = doc["source"]
    event = source.get("event", {})
    if "ingested" in event:
        event["ingested"] = INGEST_TIME
    if doc["index"].startswith(DEAD_LETTER_PREFIX):
        source["@timestamp"] = INGEST_TIME
        log = source.get("log", {})
        log.get("file", {}).pop("path", None)
        if log.get("file") == {}:
            del log["file"]
        if log == {}:
            source.pop("log", None)
    return doc


def load_expected(case: str, directory: Path = GOLDEN_DIR) -> list[dict[str, Any]]:
    return json.loads((directory / f"{case}.expected.json").read_text(encoding="utf-8"))


def render_expected(docs: list[dict[str, Any]]) -> str:
    return json.dumps([normalise(d) for d in docs], indent=2, ensure_ascii=False, sort_keys=True) + "\n"
