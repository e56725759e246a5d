"""``python -m mlmon.stack.grafana [--check]``: (re)write or verify grafana/ (provisioning and dashboards)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlmon.core.assets import refuse_write
from mlmon.stack.grafana import build


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlmon.stack.grafana", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed files are not up to date")
    args = parser.parse_args(argv)
    problems = build.problems()
    if problems:
        print("refusing to write invalid dashboards:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    if args.check:
        stale = build.stale()
        if stale:
            print(f"{build.OUTPUT} is out of date ({', '.join(stale)}): run python -m mlmon.stack.grafana",
                  file=sys.stderr)
            return 1
        print(f"{build.OUTPUT} is up to date ({len(build.render())} files)")
        return 0
    if why := refuse_write(build.OUTPUT):
        print(f"python -m mlmon.stack.grafana: {why}", file=sys.stderr)
        return 1
    touched = build.write()
    print(f"{build.OUTPUT}: " + (f"wrote {', '.join(touched)}" if touched else "unchanged"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
