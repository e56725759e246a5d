"""Compare the metric documents of two demo stores (a restructure must not change them).

    python -m tools.demo_documents dump out/demo/mlmon.duckdb before.json
    python -m tools.demo_documents compare before.json after.json

Ids must be equal and values equal within 1e-12 relative: DuckDB sums doubles in
parallel, so two runs of the same code can differ in the last bit of a sum.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

#: Fields that differ between runs by design.
RUN_FIELDS = ("job.run_id", "job.computed_at", "job.code_version", "alert.fired_at")


def _rows(con: Any, table: str, key: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    cols = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall()]
    out: dict[str, dict[str, Any]] = {}
    for row in con.execute(f"SELECT * FROM {table}").fetchall():
        d = dict(zip(cols, row, strict=True))
        out[prefix + str(d[key])] = {k: _plain(k, v) for k, v in d.items() if k not in RUN_FIELDS}
    return out


def _plain(column: str, value: Any) -> Any:
    """A stored value as JSON: JSON text (details) by what it says, not by its spelling; other values as text."""
    if column == "metric.details" and isinstance(value, str):
        return json.loads(value)
    return value if isinstance(value, int | float | str | None) else str(value)


def dump(db: str, out: str) -> None:
    """The metric documents, then the alerts (ids prefixed ``alert:``), of a store."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    docs = _rows(con, "metrics", "metric.id")
    alerts = _rows(con, "alerts", "alert.id", "alert:")
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({**docs, **alerts}, fh, sort_keys=True, indent=0)
    print(f"{len(docs)} documents, {len(alerts)} alerts")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def compare(before: str, after: str) -> int:
    a = json.load(open(before, encoding="utf-8"))
    b = json.load(open(after, encoding="utf-8"))
    if set(a) != set(b):
        print(f"ids differ: {len(set(a) - set(b))} only before, {len(set(b) - set(a))} only after")
        return 1
    bits = sum(1 for k in a if a[k] != b[k])
    differing = [k for k in a if any(not _same(a[k][f], b[k].get(f)) for f in a[k])]
    print(f"{len(a)} documents and alerts, same ids; {bits} differ in the last bits of a float, {len(differing)} beyond")
    for k in differing[:10]:
        print(k, {f: (a[k][f], b[k].get(f)) for f in a[k] if not _same(a[k][f], b[k].get(f))})
    return 1 if differing else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "dump":
        dump(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
