"""``python -m mlmon.stack.kibana [--check]``: (re)write or verify kibana/mlmon.ndjson."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlmon.core.assets import refuse_write
from mlmon.stack.kibana import build, checks, mappings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlmon.stack.kibana", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed file is not up to date")
    args = parser.parse_args(argv)
    objects = [o.to_export() for o in build.saved_objects()]
    problems = checks.check_all(objects, mappings.load())
    if problems:
        print("refusing to write invalid saved objects:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    if args.check:
        current = build.OUTPUT.read_text(encoding="utf-8") if build.OUTPUT.exists() else ""
        if current != build.render():
            print(f"{build.OUTPUT} is out of date: run python -m mlmon.stack.kibana", file=sys.stderr)
            return 1
        print(f"{build.OUTPUT} is up to date ({len(objects)} objects)")
        return 0
    if why := refuse_write(build.OUTPUT):
        print(f"python -m mlmon.stack.kibana: {why}", file=sys.stderr)
        return 1
    changed = build.write()
    print(f"{'wrote' if changed else 'unchanged'} {build.OUTPUT} ({len(objects)} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
