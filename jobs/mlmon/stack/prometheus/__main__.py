"""``python -m mlmon.stack.prometheus [--check] [--config mlmon.yaml --rules-out FILE]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlmon.config.values import ConfigError
from mlmon.core.assets import ROOT, refuse_write
from mlmon.stack.prometheus.files import PROMETHEUS_DIR, expected_files, to_yaml, write_files
from mlmon.stack.prometheus.rules import models_of, rule_groups


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlmon.stack.prometheus", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed files are not up to date")
    parser.add_argument("--config", help="write the rules of this mlmon.yaml (its models, alert rules and "
                                         "windows) to --rules-out instead")
    parser.add_argument("--rules-out", help="the rule file --config writes")
    args = parser.parse_args(argv)
    if bool(args.config) != bool(args.rules_out):
        print("python -m mlmon.stack.prometheus: --config and --rules-out go together", file=sys.stderr)
        return 2
    if args.config:
        from pathlib import Path

        from mlmon.config.model import load

        try:
            models = models_of(load(args.config))
        except ConfigError as err:
            print(f"python -m mlmon.stack.prometheus: {err}", file=sys.stderr)
            return 2
        if not models:
            print(f"python -m mlmon.stack.prometheus: {args.config}: every model has alerts.enabled: false; "
                  "no rules written", file=sys.stderr)
            return 2
        out = Path(args.rules_out)
        if why := refuse_write(out):
            print(f"python -m mlmon.stack.prometheus: {why}", file=sys.stderr)
            return 1
        out.write_text(to_yaml(rule_groups(models)), encoding="utf-8")
        print(f"wrote {out} ({len(models)} models)")
        return 0
    files = expected_files()
    if args.check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path} is out of date: run python -m mlmon.stack.prometheus", file=sys.stderr)
        return 1 if stale else 0
    if why := refuse_write(PROMETHEUS_DIR):
        print(f"python -m mlmon.stack.prometheus: {why}", file=sys.stderr)
        return 1
    changed = write_files(files)
    print("\n".join(f"wrote {p.relative_to(ROOT)}" for p in changed) or "prometheus/ is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
