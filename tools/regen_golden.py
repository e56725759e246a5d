"""Rewrite ``logstash/tests/*.expected.json`` from ``mlmon ingest``'s routing.

Only for a deliberate change of the pipeline's behaviour: review the diff line by
line, then confirm the Logstash ruby filter gives the same (tests/logstash).
Run: ``python -m tools.regen_golden [CASE...]``.
"""

from __future__ import annotations

import sys

from tools import golden
from mlmon.ingest.core import now_ms, validator_for


def main(argv: list[str]) -> int:
    for case in argv or golden.cases():
        data = (golden.GOLDEN_DIR / f"{case}.jsonl").read_bytes()
        docs = golden.route(golden.split_lines(data), validator_for(), now_ms())
        (golden.GOLDEN_DIR / f"{case}.expected.json").write_text(golden.render_expected(docs), encoding="utf-8")
        print(f"{case}: {len(docs)} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
