"""``mlmon config schema|check``: the JSON Schema of mlmon.yaml, and validating a file against the typed model."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="the JSON Schema of mlmon.yaml, or check a file")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    schema = sub.add_parser("schema", help="print the JSON Schema of mlmon.yaml (for editors)")
    schema.set_defaults(func=run_schema)
    check = sub.add_parser("check", help="validate a mlmon.yaml: 'FILE: ok (N models)' or the errors, exit 1")
    check.add_argument("file", metavar="FILE", help="the configuration file")
    check.set_defaults(func=run_check)


def run_schema(args: argparse.Namespace) -> int:
    from mlmon.config.model import render_schema

    sys.stdout.write(render_schema())
    return 0


def run_check(args: argparse.Namespace) -> int:
    from mlmon.config.model import ConfigError, load

    try:
        config = load(args.file)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    n = len(config.models)
    print(f"{args.file}: ok ({n} model{'s' if n != 1 else ''})")
    return 0
