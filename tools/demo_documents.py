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
RUN_FIELDS = ("job.run_id", "job.computed_at", "job.code_version")


def dump(db: str, out: str) -> None:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    cols = [c[0] for c in con.execute("DESCRIBE metrics").fetchall()]
    docs: dict[str, dict[str, Any]] = {}
    for row in con.execute("SELECT * FROM metrics").fetchall():
        d = dict(zip(cols, row, strict=True))
        docs[str(d["metric.id"])] = {k: v if isinstance(v, int | float | str | None) else str(v)
                                     for k, v in d.items() if k not in RUN_FIELDS}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(docs, fh, sort_keys=True, indent=0)
    print(f"{len(docs)} documents")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return bool(a == b)


def compare(before: str, after: str) -> int:
    a = json.load(open(before, encoding="utf-8"))
    b = json.load(open(after, encoding="utf-8"))
    if set(a) != set(b):
        print(f"ids differ: {len(set(a) - set(b))} only before, {len(set(b) - set(a))} only after")
        return 1
    bits = sum(1 for k in a if a[k] != b[k])
    differing = [k for k in a if any(not _same(a[k][f], b[k].get(f)) for f in a[k])]
    print(f"{len(a)} documents, same ids; {bits} differ in the last bits of a float, {len(differing)} beyond")
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
