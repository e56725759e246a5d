"""The ingest spec: contract + policy as one JSON document.

The Logstash ruby filter (``logstash/ruby/mlmon_event.rb``) cannot import
Python, so it reads ``logstash/ruby/mlmon_contract.json``, generated here and
committed; a test fails when it is stale. ``mlmon ingest`` builds its
validator from the same dictionary, so both engines run on identical rules.

Regenerate with ``python -m mlmon.ingest.spec --write``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlmon.core import assets as paths
from mlmon.ingest import policy
from mlmon_logging import contract

SPEC_PATH: Path = paths.LOGSTASH / "ruby" / "mlmon_contract.json"


def _range_text(lo: float, lo_incl: bool, hi: float | None, hi_incl: bool) -> str:
    text = f"{'>=' if lo_incl else '>'} {lo:g}"
    if hi is not None:
        text += f" and {'<=' if hi_incl else '<'} {hi:g}"
    return text


def build_spec() -> dict[str, Any]:
    """Everything a pipeline needs to validate, enrich and route an mlmon event."""
    fields: dict[str, dict[str, Any]] = {}
    for f in contract.FIELDS:
        if f.name == "labels":  # a family, see FAMILIES
            continue
        entry: dict[str, Any] = {"type": f.type, "array": f.array, "kinds": list(f.kinds),
                                 "required_in": list(f.required_in), "allowed": list(f.allowed)}
        if f.name in policy.RANGES:
            lo, lo_incl, hi, hi_incl = policy.RANGES[f.name]
            entry["range"] = {"min": lo, "min_inclusive": lo_incl, "max": hi, "max_inclusive": hi_incl,
                              "text": _range_text(lo, lo_incl, hi, hi_incl)}
        entry["derived"] = f.name in policy.DERIVED_FIELDS
        fields[f.name] = entry
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "datasets": {ds: kind for kind, ds in contract.DATASETS.items()},
        "ecs_event_kind": dict(policy.ECS_EVENT_KIND),
        "data_stream_type": contract.DATA_STREAM_TYPE,
        "dead_letter_dataset": contract.DEAD_LETTER_DATASET,
        "default_namespace": contract.DEFAULT_NAMESPACE,
        "fields": fields,
        # Families keyed by prefix without the trailing dot: a field "a.b.c" is in
        # family "a.b" when its last segment is a valid user name.
        "families": {fam.prefix.rstrip("."): {"type": fam.type, "kinds": list(fam.kinds)}
                     for fam in contract.FAMILIES},
        "name_pattern": contract.NAME_PATTERN,
        "max_family_fields": contract.MAX_FAMILY_FIELDS,
        "task_required": {k: {t: list(v) for t, v in tasks.items()} for k, tasks in policy.TASK_REQUIRED.items()},
        "latency_buckets_ms": list(contract.LATENCY_BUCKETS_MS),
        "latency_bucket_labels": list(contract.LATENCY_BUCKET_LABELS),
        "max_line_bytes": policy.MAX_LINE_BYTES,
        "max_nesting_depth": contract.MAX_NESTING_DEPTH,
        "non_empty_fields": list(policy.NON_EMPTY_FIELDS),
        "future_tolerance_seconds": policy.FUTURE_TOLERANCE_SECONDS,
        "non_finite_strings": list(policy.NON_FINITE_STRINGS),
        "dead_letter_reasons": list(contract.DEAD_LETTER_REASONS),
    }


def render_spec() -> str:
    return json.dumps(build_spec(), indent=2, sort_keys=True) + "\n"


def load_spec() -> dict[str, Any]:
    """The spec exactly as the ruby filter sees it (JSON round trip: same key order, same types)."""
    spec: dict[str, Any] = json.loads(render_spec())
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {SPEC_PATH}")
    args = parser.parse_args(argv)
    if args.write:
        if why := paths.refuse_write(SPEC_PATH):
            print(f"python -m mlmon.ingest.spec: {why}", file=sys.stderr)
            return 1
        SPEC_PATH.write_text(render_spec(), encoding="utf-8")
        print(f"wrote {SPEC_PATH}")
    else:
        sys.stdout.write(render_spec())
    return 0


if __name__ == "__main__":
    sys.exit(main())
